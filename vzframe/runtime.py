"""THE loop. One step: play ``games_per_step`` games per rank with every turn of a tick in
one batched generation, score the finished games, estimate advantages, train the active
phase's turns, let the scheduler pick the next phase, write everything down.

Read ``train`` from top to bottom; the helpers below it are each one idea.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
from pydantic import BaseModel

from vzframe import checkpoint, dist, rundir
from vzframe.advantages import RoleBaselines, estimate_advantages, score
from vzframe.config import ConfigError, RunConfig, validate
from vzframe.display import RunDisplay
from vzframe.gamespec import metrics_of, reward_fns_of
from vzframe.models import ModelSpec, choose, model_dir
from vzframe.plugins import (
    PluginError,
    Registry,
    build_registry,
    call_each,
    game_label,
    make_plugin_manager,
    plugin_versions,
)
from vzframe.protocols import Game, ImageSource, PhaseScheduler, RewardFn, missing_members
from vzframe.rollout import AsyncEngine
from vzframe.rollout.play import ImageCursor, derive_seed, new_games, play, play_async
from vzframe.types import Episode, Sample

if TYPE_CHECKING:
    from vzframe.train.trainer import Trainer

T = TypeVar("T")


# --------------------------------------------------------------------------------------
# Resolving a config into live objects
# --------------------------------------------------------------------------------------
@dataclass
class Setup:
    """Everything a run needs besides the model, resolved and validated before any work."""

    config: RunConfig  # with the model, images and every plugin section filled in
    pm: pluggy.PluginManager
    game_name: str
    game_cls: type[Game]
    game_config: BaseModel
    scheduler_name: str
    scheduler: PhaseScheduler
    image_source: ImageSource
    reward_fns: dict[str, list[RewardFn]]  # phase -> reward functions
    models: dict[str, ModelSpec]  # every registered model, for resolve_model
    versions: dict[str, str]  # plugin -> version


def resolve(config: RunConfig) -> Setup:
    """Load the named plugins, pick the game, scheduler, model and image source, validate their
    config sections. Fails with a message that says what to do, before anything heavy."""
    pm = make_plugin_manager(config.plugins)
    registry = build_registry(pm)
    game_cls: type[Game]  # checked against the protocols below (missing_members)
    scheduler_cls: type[PhaseScheduler]
    game_name, game_cls = only_one(registry.games, "game", "games.spy", registry)
    scheduler_name, scheduler_cls = only_one(registry.schedulers, "scheduler", "schedulers.hysteresis", registry)
    choice = choose(config.model, config.images, game_name, game_cls, registry.models, registry.image_sources)
    if choice.note and dist.rank() == 0:
        print(f"note: {choice.note}", file=sys.stderr)
    source_cls: type[ImageSource] = registry.image_sources[choice.images]
    if missing := missing_members(game_cls, Game):  # before any of it is read
        raise PluginError(f"{game_label(game_cls)} lacks {', '.join(missing)} of the Game protocol (docs/plugins.md).")
    for what, cls in ((f"Scheduler {scheduler_name!r}", scheduler_cls), (f"Image source {choice.images!r}", source_cls)):
        if not (isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, BaseModel)):
            raise PluginError(f"{what} ({cls.__module__}.{cls.__qualname__}) lacks Config, the pydantic model of its settings (docs/plugins.md).")

    game_config = validate(game_cls.Config, config.game, "game.")
    scheduler_config = validate(scheduler_cls.Config, config.scheduler, "scheduler.")
    scheduler = construct(f"Scheduler {scheduler_name!r}", scheduler_cls, scheduler_config, phases=tuple(game_cls.phases))
    check_contract(game_name, game_cls, scheduler_name, scheduler)
    source_config = validate(source_cls.Config, config.image_source, "image_source.")
    image_source = construct(f"Image source {choice.images!r}", source_cls, source_config, seed=config.seed)
    by_name = reward_fns_of(game_cls, registry.reward_fns)
    reward_fns = {}
    for phase, spec in game_cls.phases.items():
        missing = [n for n in spec.rewards if n not in by_name]
        if missing:
            raise PluginError(
                f"Game {game_name!r} phase {phase!r} needs reward functions {missing}, which neither the game's "
                "reward_fns nor a loaded plugin gives."
            )
        reward_fns[phase] = [by_name[n] for n in spec.rewards]

    resolved = config.model_copy(
        update={
            "model": choice.model,
            "images": choice.images,
            "game": game_config.model_dump(mode="json"),
            "scheduler": scheduler_config.model_dump(mode="json"),
            "image_source": source_config.model_dump(mode="json"),
        }
    )
    for what, obj, protocol in [
        (f"Scheduler {scheduler_name!r}", scheduler, PhaseScheduler),
        (f"Image source {choice.images!r}", image_source, ImageSource),
        *[(f"Reward function {fn.name!r}", fn, RewardFn) for fns in reward_fns.values() for fn in fns],
    ]:
        if missing := missing_members(obj, protocol):
            raise PluginError(f"{what} lacks {', '.join(missing)} of the {protocol.__name__} protocol (docs/plugins.md).")
    versions = plugin_versions(pm)
    return Setup(resolved, pm, game_name, game_cls, game_config, scheduler_name, scheduler, image_source, reward_fns, registry.models, versions)


def construct(what: str, cls: type, config: Any, **kwargs: Any) -> Any:
    """Build a scheduler or image source. A ``ValueError`` from its ``__init__`` is how a
    plugin rejects its config (docs/plugins.md): it becomes a config error, anything else a
    plugin error; both are one clear line."""
    try:
        return cls(config, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"{what} rejected its config: {exc}") from None
    except Exception as exc:
        raise PluginError(f"{what} ({cls.__module__}.{cls.__qualname__}) raised {type(exc).__name__} in __init__: {exc}") from exc


def check_contract(game_name: str, game_cls: type, scheduler_name: str, scheduler: Any) -> None:
    """The metrics the scheduler ``requires`` must be among those the game declares in
    ``metrics``: a mismatch fails now, like a config typo, not after a whole step. Read from
    the built scheduler (or its class), so a ``requires`` its ``__init__`` sets from the
    config counts."""
    required = tuple(getattr(scheduler, "requires", ()))
    declared = getattr(game_cls, "metrics", {})
    missing = [m for m in required if m not in declared]
    if missing:
        raise ConfigError(
            f"Scheduler {scheduler_name!r} needs the metrics {list(required)}, but game {game_name!r} declares "
            f"{sorted(declared) or 'none'} (missing {missing}). Choose a scheduler this game supports, or have "
            "the game declare them in `metrics` and report them from collect_metrics (docs/plugins.md)."
        )


def only_one(table: dict[str, T], kind: str, example: str, registry: Registry) -> tuple[str, T]:
    """The one ``(name, class)`` of ``table`` (the loaded games or schedulers), else a
    ``ConfigError`` that names what was loaded, by whom, and what to pass instead."""
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
    out = output_dir(setup)
    with rundir.claim(out, resume=resume):  # locked for the life of the run
        if not resume:  # a resumed run's config is rewritten once its checkpoint is restored
            write_config(setup, out)
        return _train(setup, out, display=display, resume=resume)


def _train(setup: Setup, out: Path, *, display: bool, resume: bool) -> Path:
    config = setup.config

    # Model, processor, trainer and rollout engine (heavy imports happen only here).
    import torch
    from transformers import AutoProcessor

    from vzframe.rollout import make_engine
    from vzframe.train.trainer import Trainer

    model_path = resolve_model(setup)
    processor = _load_processor(AutoProcessor, model_path)
    trainer = Trainer(
        model_path, processor, config.train, total_steps=config.steps, temperature=config.rollout.temperature, seed=config.seed
    )
    engine = make_engine(config.rollout.engine, trainer.model, processor, config.rollout, seed=config.seed, model_path=model_path)
    baselines = RoleBaselines(config.train.baseline_alpha)
    images = ImageCursor(setup.image_source, rank=dist.rank(), world=dist.world_size())
    start = 0
    if resume:
        start = restore(out, trainer, setup.scheduler, baselines, images)
        write_config(setup, out)
        if start >= config.steps:
            if dist.rank() == 0:
                print(f"Nothing to train: {out} already has all {config.steps} steps. Extend it with "
                      f"`vzframe resume {out} steps=N` (N > {config.steps}).")  # fmt: skip
            return out
    if config.checkpoint_every:
        checkpoint.check_disk_space(out, trainer.checkpoint_bytes())
    probes = None
    if config.probe_every:  # held-out probe items, drawn once (vzframe/probes/during.py)
        from vzframe.probes.during import DuringRun

        probes = DuringRun(config, setup.pm, setup.image_source, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    call_each(setup.pm, "on_run_start", config=config, output_dir=out, start_step=start)

    progress = RunDisplay(
        config.steps, start=start, enabled=display and dist.rank() == 0,
        metrics=setup.game_cls.metrics, scheduler_stats=list(setup.scheduler.metrics()),
    )  # fmt: skip
    with progress:
        for step in range(start, config.steps):
            t_step = time.perf_counter()
            phase = setup.scheduler.phase
            torch.manual_seed(derive_seed(config.seed, step, dist.rank(), -1))

            # 1. Rollout: G live games, one batched generation per tick (or, with vLLM and
            #    rollout.async_play, each game at its own pace).
            seeds = [derive_seed(config.seed, step, dist.rank(), i) for i in range(config.games_per_step)]
            games = new_games(setup.game_cls, setup.game_config, seeds, images)
            t0 = time.perf_counter()
            if config.rollout.async_play and isinstance(engine, AsyncEngine):
                rollout = play_async(games, engine)
            else:
                rollout = play(games, engine)
            t_rollout = time.perf_counter() - t0
            if config.save_images:
                rundir.save_images(out, rollout.observations())

            # 2. Rewards for every stage, 3. advantages (role baselines, group normalisation).
            phases = setup.game_cls.phases
            episodes = score(rollout.episodes, phases, setup.reward_fns, setup.game_config)
            episodes, role_means = estimate_advantages(episodes, phases, baselines)

            # 4. Train the active phase's turns (marked ``trained`` in the episodes).
            episodes = [mark_trained(ep, phases[phase].stage) for ep in episodes]
            samples = [
                Sample(obs, gen.token_ids, turn.advantage, e, turn.index, prompt=gen.prompt)
                for e, (ep, played) in enumerate(zip(episodes, rollout.games))
                for turn in ep.turns
                if turn.trained and turn.advantage is not None  # trained implies scored: for the type checker
                for obs, gen in [played.generations[turn.index]]
            ]
            t0 = time.perf_counter()
            engine.sleep()
            train_stats = trainer.step(samples)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            engine.wake_up()
            engine.sync_weights(trainer.model)
            t_sync = time.perf_counter() - t0

            # 5. Metrics (averaged over ranks), the scheduler's decision, hooks, files; every
            #    `probe_every` steps the probes' accuracies join them (probe/NAME).
            done = step + 1
            game_metrics = step_metrics(setup, episodes, role_means, baselines)
            new_phase = setup.scheduler.update(step, dict(game_metrics))  # a copy: it cannot alter what is logged
            tokens = dist.all_reduce_sum({"t": rollout.tokens})["t"]
            metrics: dict[str, float | str] = {
                "step": step,
                "phase": phase,
                **game_metrics,
                **setup.scheduler.metrics(),
                **train_stats,
                "gen_tokens": int(tokens),
                "tokens_per_s": tokens / max(t_rollout, 1e-9),
                "time_rollout": t_rollout,
                "time_generate": rollout.generate_seconds,
                "time_train": t_train,
                "time_sync": t_sync,
                "time_step": time.perf_counter() - t_step,
            }
            if probes is not None and (done % config.probe_every == 0 or done == config.steps):
                t0 = time.perf_counter()
                metrics.update(probes.measure(engine, trainer.model, processor))
                metrics["time_probe"] = time.perf_counter() - t0
            if new_phase != phase:
                call_each(setup.pm, "on_phase_change", step=step, old=phase, new=new_phase)
            for ep in episodes:
                call_each(setup.pm, "on_episode_end", step=step, episode=ep)
            rundir.write_step(out, step, phase, metrics, episodes)
            call_each(setup.pm, "on_step_end", step=step, metrics=metrics)
            progress.update(metrics)

            # 6. Checkpoint every `checkpoint_every` steps and at the end.
            if config.checkpoint_every and (done % config.checkpoint_every == 0 or done == config.steps):
                state = {"scheduler": setup.scheduler.state_dict(), "baselines": baselines.state_dict(), "images": images.position}
                checkpoint.save(out, done, trainer, state, processor, keep_last=config.keep_last)
    return out


# --------------------------------------------------------------------------------------
# Helpers, in the order the loop uses them
# --------------------------------------------------------------------------------------
def output_dir(setup: Setup) -> Path:
    """The run's folder: ``output_dir``, or a new ``runs/GAME-SCHEDULER-TIME``."""
    config = setup.config
    out = config.output_dir or Path("runs") / f"{setup.game_name}-{setup.scheduler_name}-{datetime.now():%Y%m%d-%H%M%S}"
    config.output_dir = Path(out).expanduser().resolve()
    return config.output_dir


def write_config(setup: Setup, out: Path) -> None:
    """``out``/config.yaml, with what readers of the run folder (report, compare, eval) need to
    show it without loading its plugins: names, versions, the game's roles and declared metrics."""
    metrics = setup.game_cls.metrics
    meta = {
        "game": setup.game_name,
        "scheduler": setup.scheduler_name,
        "plugins": setup.versions,
        "model": setup.config.model,
        "roles": [role.name for role in setup.game_cls.roles],
        "metrics": {name: {"label": m.label, "headline": m.headline} for name, m in metrics.items()},
        "scheduler_metrics": list(setup.scheduler.metrics()),
    }
    rundir.write_config(out, setup.config, meta)


def restore(out: Path, trainer: Trainer, scheduler: PhaseScheduler, baselines: RoleBaselines, images: ImageCursor) -> int:
    """Load the newest intact checkpoint into the live objects (a damaged newer one is named
    and skipped), then move the log lines written after it to ``OUTPUT_DIR/cut/``. Returns
    the step to continue from (0 when the run has no checkpoint yet)."""

    def load(ckpt: checkpoint.Checkpoint) -> None:
        trainer.load(ckpt.path)
        try:
            scheduler.load_state_dict(ckpt.state["scheduler"])
            baselines.load_state_dict(ckpt.state["baselines"])
            images.position = int(ckpt.state["images"])
        except (KeyError, TypeError, ValueError) as exc:
            raise checkpoint.DamagedCheckpoint(f"state.json does not fit this run ({type(exc).__name__}: {exc})") from None
        checkpoint.restore_rng(ckpt.path)

    ckpt = checkpoint.latest(out, load=load)  # raises, changing nothing, if none is intact
    start = ckpt.step if ckpt else 0
    note = ckpt.fallback_note() if ckpt else f"No checkpoint in {out / 'checkpoints'} yet; starting again from step 0."
    moved = rundir.cut_logs(out, start)
    if dist.rank() == 0:
        if note:
            print(f"warning: {note}", file=sys.stderr)
        if moved:
            print(f"Resuming at step {start}: {moved} log lines written after it were moved to {out / rundir.CUT}.", file=sys.stderr)
    return start


def resolve_model(setup: Setup) -> str:
    """The local directory of the model a run trains: ``model`` as ``resolve`` chose it (a
    directory, or a registered name whose plugin gives one, built on first use)."""
    model = setup.config.model
    assert model is not None, "resolve() names the model"
    return str(model_dir(model, setup.models))


def _load_processor(auto_processor: Any, model_path: str) -> Any:
    if not Path(model_path).is_dir():
        raise ConfigError(
            f"model={model_path!r} is not a directory. Give a local Hugging Face image-text-to-text model "
            "directory, or leave model empty for the embedded toy-world model."
        )
    return auto_processor.from_pretrained(model_path)


def mark_trained(episode: Episode, stage: str) -> Episode:
    """The episode with ``trained`` set on the turns the step trains on: the turns of ``stage``
    that a reward function scored (a turn it left unscored has no advantage, so no gradient).

    >>> from vzframe.types import Action, Turn
    >>> turn = lambda i, stage, adv: Turn(i, 1, "r", stage, "", (), "", Action("clue", "x"), advantage=adv)
    >>> ep = Episode("g", 0, ("r",), (turn(0, "clue", 0.5), turn(1, "clue", None), turn(2, "decision", 1.0)))
    >>> [t.trained for t in mark_trained(ep, "clue").turns]
    [True, False, False]
    """
    turns = tuple(dataclasses.replace(t, trained=t.stage == stage and t.advantage is not None) for t in episode.turns)
    return dataclasses.replace(episode, turns=turns)


def step_metrics(setup: Setup, episodes: list[Episode], role_means: dict[str, float], baselines: RoleBaselines) -> dict[str, float]:
    """Game metrics from ``collect_metrics`` (averaged over ranks), rewards and baselines per role."""
    merged = metrics_of(setup.game_cls, setup.pm, episodes)
    missing = [m for m in setup.game_cls.metrics if m not in merged]
    if missing:
        raise PluginError(f"{game_label(setup.game_cls)} declares metrics {missing} that its collect_metrics did not return.")
    world = dist.world_size()
    metrics = {k: v / world for k, v in dist.all_reduce_sum(merged).items()}
    for role in sorted(set(role_means) | set(baselines.values)):  # roles scored against a baseline
        metrics[f"reward_{role}"] = role_means.get(role, 0.0)
        metrics[f"baseline_{role}"] = baselines.get(role)
    return metrics
