"""Held-out evaluation of a run: ``vzframe eval RUN_DIR``.

The trained model (a run's newest checkpoint) plays fixed, seeded games against frozen
opponents from the base model it started from. Matchups, all on the same games:

- ``base``: every seat is the base model (the reference point);
- ``trained ROLE`` for each role of the game that plays (in the game's ``roles`` order): the
  trained model plays that role, the base model every other seat (for the spy game:
  ``trained spy``, ``trained citizen``).

Each matchup reports every metric the game's ``collect_metrics`` returns, with a standard error
(jackknife over games: it holds for any metric, a rate over votes or a rate over games). The
printed table shows the game's headline metrics (its ``metrics`` declaration) in every matchup
beside the base model's, with the change from it and the change's paired standard error
(``paired_se``: every matchup plays the same games with the same sampling seeds, so the
change is measured game by game); ``headline`` in the JSON holds each (headline metric,
trained role) pair. For the spy game, citizen accuracy is ``acc`` with trained citizens and spy survival is
``1 - spy_caught`` with a trained spy. Pictures come from the run's image source re-seeded with
``seed``, so they are not the pictures the run trained on.

The base matchup does not depend on the trained model. Runs that share a base model, a game,
pictures and sampling settings (the seeds of an ablation, its schedulers) can share it:
``base_cache=DIR`` (``vzframe eval RUN --base-cache DIR``) keeps its games in ``DIR``, under a
key of everything they depend on (``base_matchup_key``), and later evaluations read them
instead of playing them again.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vzframe.config import ConfigError
from vzframe.rollout import Generation, seeds_per_request
from vzframe.types import Observation


class RoleRouter:
    """A rollout engine that sends each observation to the engine of its player's role
    (``engines[role]``, else ``default``), one batched call per engine. Each request keeps
    the sampling seed ``play`` gave it, so a seat samples the same way whichever model plays
    the other seats (common random numbers across matchups)."""

    def __init__(self, engines: dict[str, Any], default: Any) -> None:
        self.engines, self.default = engines, default
        self.per_request_seeds = all(seeds_per_request(e) for e in (*engines.values(), default))

    def generate(self, observations: Sequence[Observation], seeds: Sequence[int] | None = None) -> list[Generation]:
        routed: dict[int, tuple[Any, list[int]]] = {}
        for i, obs in enumerate(observations):
            engine = self.engines.get(obs.role, self.default)
            routed.setdefault(id(engine), (engine, []))[1].append(i)
        out: list[Generation | None] = [None] * len(observations)
        for engine, indices in routed.values():
            batch = [observations[i] for i in indices]
            generated = engine.generate(batch) if seeds is None else engine.generate(batch, seeds=[seeds[i] for i in indices])
            for i, gen in zip(indices, generated):
                out[i] = gen
        return out  # type: ignore[return-value]


def evaluate(
    run_dir: str | Path, *, games: int = 64, seed: int = 1000, step: int | None = None, base_cache: str | Path | None = None
) -> dict[str, Any]:
    """Play the matchups (module docstring) on ``games`` games seeded from ``seed``; write
    ``RUN_DIR/eval-step-N.json`` (returned) and every game to ``eval-step-N.episodes.jsonl``.
    With ``base_cache``, the base matchup's games are read from that directory when an earlier
    evaluation left them there, and left there otherwise."""
    from vzframe import checkpoint
    from vzframe.config import load_config
    from vzframe.rollout.hf import HFEngine
    from vzframe.runtime import resolve, resolve_model
    from vzframe.train.trainer import load_model, quiet_libraries

    run = Path(run_dir).expanduser().resolve()
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} holds no run (no config.yaml). Give the output_dir of a `vzframe run`.")
    ckpt = checkpoint.latest(run, step=step)
    if ckpt is None:
        raise ConfigError(f"{run} has no complete checkpoint to evaluate; train with checkpoint_every > 0.")
    config = load_config(run / "config.yaml", [])
    setup = resolve(config)
    quiet_libraries()
    from transformers import AutoProcessor

    base_path = resolve_model(setup)
    processor = AutoProcessor.from_pretrained(base_path)
    base = HFEngine(load_model(base_path, bf16=False).eval(), processor, config.rollout)
    trained = HFEngine(load_model(str(ckpt.path / "model"), bf16=False).eval(), processor, config.rollout)

    measure = functools.partial(game_metrics, setup.game_cls, setup.pm)

    def play_games(engines: dict[str, Any]) -> list[Any]:
        return play_matchup(setup, engines, base, games=games, seed=seed)

    def scored(episodes: list[Any]) -> tuple[dict[str, float], dict[str, float], list[Any]]:
        return measure(episodes), jackknife_se(measure, episodes), episodes

    results: dict[str, dict[str, float]] = {}
    stderr: dict[str, dict[str, float]] = {}
    played: dict[str, list[Any]] = {}
    change_se: dict[str, dict[str, float]] = {}
    if base_cache is None:
        base_games = play_games({})
    else:
        key = base_matchup_key(setup, base_path, games=games, seed=seed)
        base_games = cached_games(Path(base_cache), key, lambda: play_games({}))
    results["base"], stderr["base"], played["base"] = scored(base_games)
    acting = {t.role for e in played["base"] for t in e.turns}
    roles = [r.name for r in setup.game_cls.roles if r.name in acting] + sorted(acting - {r.name for r in setup.game_cls.roles})
    for role in roles:
        name = f"trained {role}"
        results[name], stderr[name], played[name] = scored(play_games({role: trained}))
        change_se[name] = paired_se(measure, played["base"], played[name])
    declared = {name: {"label": m.label, "headline": m.headline} for name, m in setup.game_cls.metrics.items()}
    report = {
        "run": str(run),
        "step": ckpt.step,
        "game": setup.game_name,
        "base_model": base_path,
        "trained_model": str(ckpt.path / "model"),
        "games": games,
        "seed": seed,
        "roles": roles,
        "metrics": declared,
        "matchups": results,
        "stderr": stderr,
        "change_se": change_se,
        "headline": headline(results, stderr, declared, roles, change_se),
    }
    (run / f"eval-step-{ckpt.step}.json").write_text(json.dumps(report, indent=1))
    with open(run / f"eval-step-{ckpt.step}.episodes.jsonl", "w") as f:
        for name, episodes in played.items():
            for e in episodes:
                f.write(json.dumps({"matchup": name, **e.to_dict()}) + "\n")
    return report


def play_matchup(setup: Any, engines: dict[str, Any], default: Any, *, games: int, seed: int) -> list[Any]:
    """``games`` games of a resolved run ``setup``, seeded from ``seed``, on pictures of its
    image source re-seeded with ``seed``: each role played by ``engines[role]``, else by
    ``default``. The same games, pictures and sampling seeds for any engines, so matchups
    compare on common random numbers."""
    import torch

    from vzframe.rollout.play import held_out_games, play

    source = type(setup.image_source)(setup.image_source.config, seed=seed)
    torch.manual_seed(seed)
    live = held_out_games(setup.game_cls, setup.game_config, source, games, seed)
    return play(live, RoleRouter(engines, default)).episodes


def base_matchup_key(setup: Any, base_path: str, *, games: int, seed: int) -> dict[str, Any]:
    """Everything the base matchup's games depend on: the base model (its directory and every
    file's size and modification time), the game and its config, the image source and its
    config, the versions of the plugins that define them, the rollout settings, the games and
    their seed, and the numerics (torch's version and thread count). Not the scheduler, the
    reward functions or the training settings: the base matchup neither trains nor rewards. A
    plugin whose code changed without a new version keeps its key: clear the cache then."""
    import torch

    import vzframe

    def plain(value: Any) -> Any:
        return value.model_dump(mode="json") if hasattr(value, "model_dump") else value

    def defines(module: Any, cls: type) -> bool:
        return cls.__module__ == module.__name__ or cls.__module__.startswith(module.__name__ + ".")

    source = type(setup.image_source)
    versions = {name: setup.versions.get(name) for name, module in setup.pm.list_name_plugin()
                if defines(module, setup.game_cls) or defines(module, source)}  # fmt: skip
    model = Path(base_path)
    files = sorted((str(p.relative_to(model)), p.stat().st_size, p.stat().st_mtime_ns) for p in model.rglob("*") if p.is_file())
    return {
        "model": str(model), "model_files": files,
        "game": setup.game_name, "game_class": f"{setup.game_cls.__module__}.{setup.game_cls.__qualname__}",
        "game_config": plain(setup.game_config),
        "images": f"{source.__module__}.{source.__qualname__}", "images_config": plain(setup.image_source.config),
        "rollout": plain(setup.config.rollout), "versions": dict(sorted(versions.items())),
        "games": games, "seed": seed,
        "vzframe": vzframe.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }  # fmt: skip


def cached_games(cache: Path, key: dict[str, Any], play_them: Callable[[], list[Any]]) -> list[Any]:
    """The episodes stored in ``cache`` under ``key``, else ``play_them()``, stored there. An
    evaluation that finds another one playing the same key waits for it (a file lock) instead of
    playing the games twice. Episodes are read as JSON, never executed."""
    from vzframe.types import Episode

    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    cache.mkdir(parents=True, exist_ok=True)
    entry = cache / f"base-{digest}.episodes.jsonl"
    with open(cache / f"base-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if entry.exists():
            try:
                episodes = [Episode.from_dict(json.loads(line)) for line in entry.read_text().splitlines()]
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise ConfigError(f"{entry} is not a list of episodes ({e}); delete it and evaluate again.") from e
            if len(episodes) != key["games"]:
                raise ConfigError(f"{entry} holds {len(episodes)} games, not {key['games']}; delete it and evaluate again.")
            return episodes
        episodes = play_them()
        (cache / f"base-{digest}.json").write_text(json.dumps(key, indent=1, default=str))
        partial = entry.with_suffix(".partial")
        partial.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in episodes))
        os.replace(partial, entry)  # whole or absent: a killed evaluation leaves no half entry
        return episodes


def game_metrics(game_cls: type, pm: Any, episodes: Sequence[Any]) -> dict[str, float]:
    """What the game's ``collect_metrics`` (and the loaded plugins' hooks) report on ``episodes``."""
    from vzframe.gamespec import metrics_of

    return metrics_of(game_cls, pm, episodes)


def jackknife_se(measure: Callable[[Sequence[Any]], dict[str, float]], episodes: Sequence[Any]) -> dict[str, float]:
    """The standard error of each metric ``measure`` computes from ``episodes``, by leaving out
    one game at a time (the delete-1 jackknife), so a rate over votes and a rate over games are
    treated alike. For a mean of one number per game it is the usual ``sd / sqrt(n)``:

    >>> se = jackknife_se(lambda eps: {"m": sum(eps) / len(eps)}, [1, 0, 1, 1])
    >>> round(se["m"], 4)  # sd of [1, 0, 1, 1] is 0.5, over sqrt(4)
    0.25
    """
    n = len(episodes)
    if n < 2:
        return {}
    leave_one_out: dict[str, list[float]] = {}
    for i in range(n):
        for key, value in measure([e for j, e in enumerate(episodes) if j != i]).items():
            leave_one_out.setdefault(key, []).append(value)
    out = {}
    for key, values in leave_one_out.items():
        values = [v for v in values if math.isfinite(v)]
        if len(values) >= 2:
            mean = sum(values) / len(values)
            out[key] = math.sqrt((len(values) - 1) / len(values) * sum((v - mean) ** 2 for v in values))
    return out


def paired_se(measure: Callable[[Sequence[Any]], dict[str, float]], base: Sequence[Any], trained: Sequence[Any]) -> dict[str, float]:
    """The standard error of each metric's change from ``base`` to ``trained``, two plays of
    the same games in the same order: the jackknife leaves one game out of both at once, so
    what the games share (their pictures, the seats' sampling seeds) cancels out of the change.

    >>> se = paired_se(lambda eps: {"m": sum(eps) / len(eps)}, [1, 0, 1, 1], [1, 1, 1, 1])
    >>> round(se["m"], 4)  # the per-game changes [0, 1, 0, 0]: sd 0.5, over sqrt(4)
    0.25
    """
    pairs = list(zip(base, trained, strict=True))

    def change(some: Sequence[Any]) -> dict[str, float]:
        before, after = measure([b for b, _ in some]), measure([t for _, t in some])
        return {k: after[k] - before[k] for k in before if k in after}  # in measure's order: the same JSON every time

    return jackknife_se(change, pairs)


def headline(
    results: dict[str, dict[str, float]],
    stderr: dict[str, dict[str, float]],
    declared: dict[str, dict[str, Any]],
    roles: Sequence[str],
    change_se: dict[str, dict[str, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each headline metric with each role trained, beside the base model: ``"vote accuracy,
    trained citizen": {metric, role, base, trained, base_se, trained_se, change_se}``
    (``change_se``: the paired standard error of trained - base, from ``paired_se``)."""
    out = {}
    base, base_se = results.get("base", {}), stderr.get("base", {})
    for name, d in declared.items():
        if not d["headline"] or name not in base:
            continue
        for role in roles:
            matchup = f"trained {role}"
            if name in results.get(matchup, {}):
                out[f"{d['label']}, {matchup}"] = {
                    "metric": name, "role": role, "base": base[name], "trained": results[matchup][name],
                    "base_se": base_se.get(name, math.nan), "trained_se": stderr[matchup].get(name, math.nan),
                    "change_se": (change_se or {}).get(matchup, {}).get(name, math.nan),
                }  # fmt: skip
    return out


def print_report(report: dict[str, Any]) -> None:
    """The headline metrics of every matchup, each with its standard error and, for a trained
    role, its change from the base model."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    names = list(report["matchups"])
    declared = report.get("metrics") or {k: {"label": k, "headline": True} for m in report["matchups"].values() for k in m}
    shown = [k for k, d in declared.items() if d["headline"]] or list(declared)
    title = f"{report['run']} step {report['step']}: {report['games']} held-out games (seed {report['seed']})"
    table = Table(title=title)
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    base = report["matchups"].get("base", {})
    for key in shown:
        cells = []
        for name in names:
            value = report["matchups"][name].get(key, math.nan)
            se = report.get("stderr", {}).get(name, {}).get(key, math.nan)
            paired = report.get("change_se", {}).get(name, {}).get(key)
            change = ""
            if name != "base" and key in base:
                change = f" ({value - base[key]:+.3f}" + (f" ± {paired:.3f})" if paired is not None else ")")
            cells.append(f"{value:.3f} ± {se:.3f}{change}")
        table.add_row(str(declared[key]["label"]), *cells)
    console.print(table, highlight=False)
    console.print(
        "trained ROLE: the trained model plays that role, the base model every other seat. ± one standard error "
        "(jackknife over games); (+x ± s) the change from base with its paired standard error (the same games, "
        "left out of both at once). The JSON file holds every metric.",
        highlight=False,
        soft_wrap=True,
    )
