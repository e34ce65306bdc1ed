"""Held-out evaluation of a run: ``vzframe eval RUN_DIR``.

The trained model (a run's newest checkpoint) plays fixed, seeded games against frozen
opponents from the base model it started from. Matchups, all on the same games:

- ``base``: every seat is the base model (the reference point);
- ``trained ROLE`` for each role of the game: the trained model plays that role, the base
  model every other seat (for the spy game: ``trained citizen``, ``trained spy``).

Each matchup reports the game's own metrics (``collect_metrics``: for the spy game ``acc``,
``na``, ``invalid``, ``spy_caught``, ``clue_valid``). The headline figures of the spy game
are *citizen accuracy* (``acc`` with trained citizens) and *spy survival* (``1 -
spy_caught`` with a trained spy), each beside the base model's. Pictures come from the run's
image source re-seeded with ``seed``, so they are not the pictures the run trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vzframe.config import ConfigError
from vzframe.rollout import Generation
from vzframe.types import Observation


class RoleRouter:
    """A rollout engine that sends each observation to the engine of its player's role
    (``engines[role]``, else ``default``), one batched call per engine."""

    def __init__(self, engines: dict[str, Any], default: Any) -> None:
        self.engines, self.default = engines, default

    def generate(self, observations: Sequence[Observation]) -> list[Generation]:
        routed: dict[int, tuple[Any, list[int]]] = {}
        for i, obs in enumerate(observations):
            engine = self.engines.get(obs.role, self.default)
            routed.setdefault(id(engine), (engine, []))[1].append(i)
        out: list[Generation | None] = [None] * len(observations)
        for engine, indices in routed.values():
            for i, gen in zip(indices, engine.generate([observations[i] for i in indices])):
                out[i] = gen
        return out  # type: ignore[return-value]


def evaluate(run_dir: str | Path, *, games: int = 64, seed: int = 1000, step: int | None = None) -> dict[str, Any]:
    """Play the matchups (module docstring) on ``games`` games seeded from ``seed``; write
    ``RUN_DIR/eval-step-N.json`` (returned) and every game to ``eval-step-N.episodes.jsonl``."""
    import torch

    from vzframe import checkpoint
    from vzframe.config import load_config
    from vzframe.plugins import call_each, check_metrics
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.play import ImageCursor, derive_seed, play
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
    source = type(setup.image_source)(setup.image_source.config, seed=seed)

    def matchup(engines: dict[str, Any]) -> tuple[dict[str, float], list[Any]]:
        torch.manual_seed(seed)
        cursor = ImageCursor(source, rank=0, world=1)
        live = [setup.game_cls(setup.game_config, seed=derive_seed(seed, 0, 0, i), images=cursor.draw) for i in range(games)]
        episodes = play(live, RoleRouter(engines, base)).episodes
        merged: dict[str, float] = {}
        for plugin, result in call_each(setup.pm, "collect_metrics", episodes=episodes):
            merged.update(check_metrics(plugin, result))
        return merged, episodes

    results: dict[str, dict[str, float]] = {}
    played: dict[str, list[Any]] = {}
    results["base"], played["base"] = matchup({})
    roles = sorted({t.role for e in played["base"] for t in e.turns})
    votes = sum(1 for e in played["base"] for t in e.turns if t.stage == "decision")
    for role in roles:
        results[f"trained {role}"], played[f"trained {role}"] = matchup({role: trained})
    report = {
        "run": str(run),
        "step": ckpt.step,
        "base_model": base_path,
        "games": games,
        "seed": seed,
        "matchups": results,
        "headline": headline(results, games, votes),
    }
    (run / f"eval-step-{ckpt.step}.json").write_text(json.dumps(report, indent=1))
    with open(run / f"eval-step-{ckpt.step}.episodes.jsonl", "w") as f:
        for name, episodes in played.items():
            for e in episodes:
                f.write(json.dumps({"matchup": name, **e.to_dict()}) + "\n")
    return report


def headline(results: dict[str, dict[str, float]], games: int, votes: int) -> dict[str, dict[str, float]]:
    """Citizen accuracy and spy survival, base against trained, with binomial standard errors
    (over votes for accuracy, over games for survival); empty for games without them."""
    out = {}
    base = results.get("base", {})
    if "acc" in base and "trained citizen" in results:
        out["citizen accuracy"] = _pair(base["acc"], results["trained citizen"]["acc"], votes)
    if "spy_caught" in base and "trained spy" in results:
        out["spy survival"] = _pair(1 - base["spy_caught"], 1 - results["trained spy"]["spy_caught"], games)
    return out


def _pair(base: float, trained: float, n: int) -> dict[str, float]:
    se = lambda p: math.sqrt(max(p * (1 - p), 1e-12) / n)  # noqa: E731
    return {"base": base, "trained": trained, "base_se": se(base), "trained_se": se(trained)}


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    names = list(report["matchups"])
    table = Table(title=f"{report['run']} step {report['step']}: {report['games']} held-out games (seed {report['seed']})")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    keys = list(dict.fromkeys(k for m in report["matchups"].values() for k in m))
    for key in keys:
        table.add_row(key, *(f"{report['matchups'][n].get(key, float('nan')):.3f}" for n in names))
    console.print(table)
    for name, h in report["headline"].items():
        console.print(
            f"{name}: base {h['base']:.3f} ± {h['base_se']:.3f}  ->  trained {h['trained']:.3f} ± {h['trained_se']:.3f}"
            f"  ({h['trained'] - h['base']:+.3f})"
        )
