"""THE loop. One step: play ``games_per_step`` games per rank with every turn of a tick in
one batched generation, score the finished games, estimate advantages, train the active
phase's turns, let the scheduler pick the next phase, write everything down.

Read ``train`` from top to bottom; the helpers below it are each one idea.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vzframe import __version__, checkpoint, dist
from vzframe.advantages import RoleBaselines, group_normalize
from vzframe.config import METADATA_KEY, ConfigError, RunConfig, validate
from vzframe.display import RunDisplay
from vzframe.plugins import PluginError, build_registry, call_each, call_plugin, check_metrics, check_rewards, make_plugin_manager
from vzframe.types import Episode, ImageItem, Observation, Sample


# --------------------------------------------------------------------------------------
# Resolving a config into live objects
# --------------------------------------------------------------------------------------
@dataclass
class Setup:
    """Everything a run needs besides the model, resolved and validated before any work."""

    config: RunConfig
    pm: Any
    game_name: str
    game_cls: type
    game_config: Any
    scheduler_name: str
    scheduler: Any
    image_source: Any
    reward_fns: dict[str, list[Any]]  # phase -> reward functions
    versions: dict[str, str]


def resolve(config: RunConfig) -> Setup:
    """Load the named plugins, pick the game, scheduler and image source, validate their
    config sections. Fails with a message that says what to do, before anything heavy."""
    pm = make_plugin_manager(config.plugins)
    registry = build_registry(pm)
    game_name, game_cls = _only_one(registry.games, "game", "games.spy", registry)
    scheduler_name, scheduler_cls = _only_one(registry.schedulers, "scheduler", "schedulers.hysteresis", registry)
    if config.images not in registry.image_sources:
        raise ConfigError(
            f"Unknown image source {config.images!r}. Available: {', '.join(sorted(registry.image_sources))}. "
            "Load the plugin that provides it, or see `vzframe plugins`."
        )
    source_cls = registry.image_sources[config.images]

    game_config = validate(game_cls.Config, config.game, "game.")
    scheduler = scheduler_cls(validate(scheduler_cls.Config, config.scheduler, "scheduler."), phases=tuple(game_cls.phases))
    image_source = source_cls(validate(source_cls.Config, config.image_source, "image_source."), seed=config.seed)
    reward_fns = {}
    for phase, spec in game_cls.phases.items():
        missing = [n for n in spec.rewards if n not in registry.reward_fns]
        if missing:
            raise PluginError(f"Game {game_name!r} phase {phase!r} needs reward functions {missing}, which no loaded plugin registers.")
        reward_fns[phase] = [registry.reward_fns[n] for n in spec.rewards]

    resolved = config.model_copy(
        update={
            "game": game_config.model_dump(mode="json"),
            "scheduler": scheduler.config.model_dump(mode="json") if hasattr(scheduler, "config") else config.scheduler,
            "image_source": image_source.config.model_dump(mode="json") if hasattr(image_source, "config") else config.image_source,
        }
    )
    versions = dict(pm._vz_versions)
    return Setup(resolved, pm, game_name, game_cls, game_config, scheduler_name, scheduler, image_source, reward_fns, versions)


def _only_one(table: dict[str, Any], kind: str, example: str, registry) -> tuple[str, Any]:
    if len(table) == 1:
        return next(iter(table.items()))
    if not table:
        raise ConfigError(f"No {kind} loaded. Name a {kind} plugin, e.g. `vzframe run games.spy schedulers.hysteresis`; see `vzframe plugins`.")
    owners = ", ".join(f"{n} (from {registry.owners[(kind + 's', n)]})" for n in table)
    raise ConfigError(f"Several {kind}s loaded: {owners}. Name exactly one {kind} plugin, e.g. {example}.")


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------
def train(config: RunConfig, *, display: bool = True, resume: bool = False) -> Path:
    """Run ``config.steps`` steps, or with ``resume`` continue the run in ``output_dir`` from
    its newest complete checkpoint. Returns the output directory."""
    dist.setup_environment()
    setup = resolve(config)
    config = setup.config
    out = prepare_output_dir(setup, resume=resume)

    # Model, processor, trainer and rollout engine (heavy imports happen only here).
    import torch
    from transformers import AutoProcessor

    from vzframe.models import default_model
    from vzframe.rollout import make_engine
    from vzframe.train.trainer import Trainer

    model_path = config.model or str(default_model())
    processor = _load_processor(AutoProcessor, model_path)
    trainer = Trainer(model_path, processor, config.train, total_steps=config.steps, temperature=config.rollout.temperature)
    engine = make_engine(config.rollout.engine, trainer.model, processor, config.rollout, seed=config.seed, model_path=model_path)
    baselines = RoleBaselines(config.train.baseline_alpha)
    images = ImageCursor(setup.image_source, rank=dist.rank(), world=dist.world_size())
    start = restore(out, trainer, setup.scheduler, baselines, images) if resume else 0
    if config.checkpoint_every:
        checkpoint.check_disk_space(out, trainer.checkpoint_bytes())
    call_each(setup.pm, "on_run_start", config=config, output_dir=out, start_step=start)

    progress = RunDisplay(config.steps, start=start, enabled=display and dist.rank() == 0)
    with progress:
        for step in range(start, config.steps):
            t_step = time.perf_counter()
            phase = setup.scheduler.phase
            torch.manual_seed(_derive_seed(config.seed, step, dist.rank(), -1))

            # 1. Rollout: G live games, one batched generation per tick.
            games = [
                call_plugin(f"{game_label(setup.game_cls)} in __init__", setup.game_cls, setup.game_config, seed=_derive_seed(config.seed, step, dist.rank(), i), images=images.draw)
                for i in range(config.games_per_step)
            ]
            t0 = time.perf_counter()
            episodes, generated, gen_tokens, t_generate = play(games, engine)
            t_rollout = time.perf_counter() - t0
            if config.save_images:
                save_images(out, (obs for obs, _ in generated.values()))

            # 2. Rewards for every stage, 3. advantages (role baselines, group normalisation).
            episodes = score(episodes, setup)
            episodes, role_means = estimate_advantages(episodes, setup.game_cls.phases, baselines)

            # 4. Train the active phase's turns.
            stage = setup.game_cls.phases[phase].stage
            samples = [
                Sample(obs, ids, turn.advantage, e, turn.index)
                for e, ep in enumerate(episodes)
                for turn in ep.turns
                if turn.stage == stage
                for obs, ids in [generated[(e, turn.index)]]
            ]
            t0 = time.perf_counter()
            engine.sleep()
            train_stats = trainer.step(samples)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            engine.wake_up()
            engine.sync_weights(trainer.model)
            t_sync = time.perf_counter() - t0

            # 5. Metrics (averaged over ranks), the scheduler's decision, hooks, files.
            metrics = step_metrics(setup, episodes, role_means, baselines)
            new_phase = setup.scheduler.update(step, metrics)
            tokens = dist.all_reduce_sum({"t": gen_tokens})["t"]
            metrics = {
                "step": step,
                "phase": phase,
                **metrics,
                **setup.scheduler.metrics(),
                **train_stats,
                "gen_tokens": int(tokens),
                "tokens_per_s": tokens / max(t_rollout, 1e-9),
                "time_rollout": t_rollout,
                "time_generate": t_generate,
                "time_train": t_train,
                "time_sync": t_sync,
                "time_step": time.perf_counter() - t_step,
            }
            if new_phase != phase:
                call_each(setup.pm, "on_phase_change", step=step, old=phase, new=new_phase)
            for ep in episodes:
                call_each(setup.pm, "on_episode_end", step=step, episode=ep)
            write_step(out, step, phase, metrics, episodes)
            call_each(setup.pm, "on_step_end", step=step, metrics=metrics)
            progress.update(metrics)

            # 6. Checkpoint every `checkpoint_every` steps and at the end.
            done = step + 1
            if config.checkpoint_every and (done % config.checkpoint_every == 0 or done == config.steps):
                state = {"scheduler": setup.scheduler.state_dict(), "baselines": baselines.state_dict(), "images": images.position}
                checkpoint.save(out, done, trainer, state, processor, keep_last=config.keep_last)
    return out


# --------------------------------------------------------------------------------------
# Helpers, in the order the loop uses them
# --------------------------------------------------------------------------------------
def prepare_output_dir(setup: Setup, *, resume: bool = False) -> Path:
    """Create the output directory and write config.yaml; refuse to overwrite a run."""
    config = setup.config
    out = config.output_dir or Path("runs") / f"{setup.game_name}-{setup.scheduler_name}-{datetime.now():%Y%m%d-%H%M%S}"
    out = Path(out).expanduser().resolve()
    if (out / "metrics.jsonl").exists() and not resume:
        raise ConfigError(
            f"{out} already holds a run (metrics.jsonl). Continue it with `vzframe resume {out}`, "
            "or choose another output_dir=... ."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.rank{dist.rank()}"  # one per rank: ranks probe at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"Cannot write to output_dir {str(out)!r}: {exc.strerror}. Choose a writable output_dir=... .") from None
    config.output_dir = out
    if dist.rank() == 0:
        meta = {"version": __version__, "game": setup.game_name, "scheduler": setup.scheduler_name, "plugins": setup.versions}
        body = {METADATA_KEY: meta, **config.model_dump(mode="json")}
        (out / "config.yaml").write_text(
            f"# vzframe {__version__}: the fully resolved config of this run.\n"
            f"# Run it again with: vzframe run --config {out / 'config.yaml'} output_dir=NEW_DIR\n"
            + yaml.safe_dump(body, sort_keys=False)
        )
    return out


def restore(out: Path, trainer: Any, scheduler: Any, baselines: RoleBaselines, images: ImageCursor) -> int:
    """Load the newest complete checkpoint into the live objects; drop log lines written
    after it. Returns the step to continue from (0 when there is no checkpoint yet)."""
    ckpt = checkpoint.latest(out)
    start = ckpt.step if ckpt else 0
    if ckpt:
        trainer.load(ckpt.path)
        scheduler.load_state_dict(ckpt.state["scheduler"])
        baselines.load_state_dict(ckpt.state["baselines"])
        images.position = ckpt.state["images"]
        checkpoint.restore_rng(ckpt.path)
    elif dist.rank() == 0:
        warnings.warn(f"No complete checkpoint in {out / 'checkpoints'}; starting again from step 0.", stacklevel=2)
    dist.barrier()
    if dist.rank() == 0:
        for path in [out / "metrics.jsonl", *out.glob("episodes*.jsonl")]:
            checkpoint.truncate_jsonl(path, start)
    dist.barrier()
    return start


def _load_processor(auto_processor: Any, model_path: str) -> Any:
    if not Path(model_path).is_dir():
        raise ConfigError(
            f"model={model_path!r} is not a directory. Give a local Hugging Face image-text-to-text model "
            "directory, or leave model empty for the embedded toy-world model."
        )
    return auto_processor.from_pretrained(model_path)


def _derive_seed(seed: int, step: int, rank: int, index: int) -> int:
    """Independent, reproducible seeds for every (run, step, rank, game)."""
    return int(np.random.SeedSequence([seed, step, rank, index + 1]).generate_state(1)[0])


class ImageCursor:
    """Hands out the image source's pictures in order; ranks take interleaved indices so
    each rank plays different images."""

    def __init__(self, source: Any, *, rank: int, world: int, position: int = 0) -> None:
        self.source, self.rank, self.world, self.position = source, rank, world, position

    def draw(self) -> ImageItem:
        item = self.source.get(self.position * self.world + self.rank)
        self.position += 1
        return item


def game_label(cls: type) -> str:
    """How errors name a game: its name and its class, e.g. "Game 'spy' (games.spy.game.SpyGame)"."""
    return f"Game {getattr(cls, 'name', '?')!r} ({cls.__module__}.{cls.__qualname__})"


def play(games: Sequence[Any], engine: Any) -> tuple[list[Episode], dict, int, float]:
    """Play all games to the end. Each tick every player who must move in every game is
    observed first (simultaneous moves see the same state), then all are generated in one
    call. Returns the episodes, ``(game, turn) -> (observation, token ids)``, the number of
    generated tokens and the seconds spent inside the engine."""
    generated: dict[tuple[int, int], tuple[Observation, tuple[int, ...]]] = {}
    tokens, generate_seconds = 0, 0.0

    def call(g: int, what: str, fn: Any, *args: Any) -> Any:
        """Game code is plugin code: an error names the game, its class and the method."""
        return call_plugin(f"{game_label(type(games[g]))} in {what}", fn, *args)

    while moves := [(g, player) for g, game in enumerate(games) for player in call(g, "to_act()", game.to_act)]:
        observations = [call(g, f"observe(player={player})", games[g].observe, player) for g, player in moves]
        t0 = time.perf_counter()
        completions = engine.generate(observations)
        generate_seconds += time.perf_counter() - t0
        for (g, player), obs, gen in zip(moves, observations, completions):
            turn = call(g, f"step(player={player})", games[g].step, player, gen.text)
            generated[(g, turn.index)] = (obs, gen.token_ids)
            tokens += len(gen.token_ids)
    return [call(g, "episode()", game.episode) for g, game in enumerate(games)], generated, tokens, generate_seconds


def image_filename(image_id: str) -> str:
    """File name under ``OUTPUT_DIR/images/`` of the picture with this id (ids are free text)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)[:80]
    return f"{safe}-{hashlib.sha1(image_id.encode()).hexdigest()[:8]}.png"


def save_images(out: Path, observations: Any) -> None:
    """Write each picture a player saw once, so reports can show what every player saw."""
    folder = out / "images"
    folder.mkdir(exist_ok=True)
    unique = {item.id: item for obs in observations for item in obs.images}
    for item in unique.values():
        path = folder / image_filename(item.id)
        if not path.exists():
            tmp = path.with_suffix(f".tmp{dist.rank()}")
            item.image.save(tmp, format="PNG")
            os.replace(tmp, path)


def score(episodes: list[Episode], setup: Setup) -> list[Episode]:
    """Fill in every turn's reward: the sum of its phase's reward functions."""
    scored = []
    for ep in episodes:
        rewards: dict[int, float] = {}
        for phase, spec in setup.game_cls.phases.items():
            stage_turns = {t.index for t in ep.turns_of(spec.stage)}
            for fn in setup.reward_fns[phase]:
                try:
                    out = fn(ep, setup.game_config)
                except Exception as exc:
                    raise PluginError(f"Reward function {fn.name!r} raised on a {ep.game} episode: {type(exc).__name__}: {exc}") from exc
                for index, value in check_rewards(fn.name, out, stage_turns).items():
                    rewards[index] = rewards.get(index, 0.0) + value
        turns = tuple(dataclasses.replace(t, reward=rewards.get(t.index)) for t in ep.turns)
        scored.append(dataclasses.replace(ep, turns=turns))
    return scored


def estimate_advantages(episodes: list[Episode], phases: dict, baselines: RoleBaselines) -> tuple[list[Episode], dict[str, float]]:
    """Group-normalise ``group`` stages within each game; subtract the role baseline in
    ``role`` stages, then fold this step's rank-averaged role means into the baselines.
    Returns the episodes with advantages and those role means."""
    group_stages = {s.stage for s in phases.values() if s.advantage == "group"}
    role_stages = {s.stage for s in phases.values() if s.advantage == "role"}
    sums: dict[str, float] = defaultdict(float)
    for ep in episodes:
        for role in set(ep.roles):
            sums[f"{role}/sum"] += 0.0
            sums[f"{role}/n"] += 0.0
        for t in ep.turns:
            if t.stage in role_stages and t.reward is not None:
                sums[f"{t.role}/sum"] += t.reward
                sums[f"{t.role}/n"] += 1
    totals = dist.all_reduce_sum(sums)
    role_means = {k[:-4]: totals[k] / totals[k[:-4] + "/n"] for k in totals if k.endswith("/sum") and totals[k[:-4] + "/n"]}

    out = []
    for ep in episodes:
        advantages: dict[int, float] = {}
        for stage in group_stages:
            scored = [t for t in ep.turns_of(stage) if t.reward is not None]
            advantages.update(zip((t.index for t in scored), group_normalize([t.reward for t in scored])))
        for t in ep.turns:
            if t.stage in role_stages and t.reward is not None:
                advantages[t.index] = baselines.advantage(t.role, t.reward)
        out.append(dataclasses.replace(ep, turns=tuple(dataclasses.replace(t, advantage=advantages.get(t.index)) for t in ep.turns)))
    baselines.update(role_means)
    return out, role_means


def step_metrics(setup: Setup, episodes: list[Episode], role_means: dict[str, float], baselines: RoleBaselines) -> dict[str, float]:
    """Game metrics from ``collect_metrics`` (averaged over ranks), rewards and baselines per role."""
    merged: dict[str, float] = {}
    for plugin, result in call_each(setup.pm, "collect_metrics", episodes=episodes):
        merged.update(check_metrics(plugin, result))
    world = dist.world_size()
    metrics = {k: v / world for k, v in dist.all_reduce_sum(merged).items()}
    for role in sorted(set(role_means) | set(baselines.values)):  # roles scored against a baseline
        metrics[f"reward_{role}"] = role_means.get(role, 0.0)
        metrics[f"baseline_{role}"] = baselines.get(role)
    return metrics


def write_step(out: Path, step: int, phase: str, metrics: dict[str, Any], episodes: list[Episode]) -> None:
    """Append this step's metrics (rank 0) and episodes (each rank its own file)."""
    rank = dist.rank()
    name = "episodes.jsonl" if rank == 0 else f"episodes.rank{rank}.jsonl"
    with open(out / name, "a") as f:
        for ep in episodes:
            f.write(json.dumps({"step": step, "phase": phase, "rank": rank, **ep.to_dict()}) + "\n")
    if rank == 0:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
