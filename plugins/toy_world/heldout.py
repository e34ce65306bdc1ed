"""Held-out figures: how well a model (and the game's teacher) plays a game on pictures a
build never saw, each figure with a standard error.

``heldout_figures(MODEL_DIR, game="games.X")`` (the command ``vzframe model heldout DIR --game
games.X``) plays ``games`` seeded games with every seat the model, generating as a run does
(``HFEngine``, ``play``'s batching, ``RolloutConfig``'s default temperature), then the same
games (same seeds, same pictures) with every seat the game's teacher, as a reference.
``build_toy`` writes both into ``vzframe-toy.json`` beside the weights.

| figure | what it counts |
|---|---|
| ``valid`` | turns whose action is not ``invalid`` (also ``valid_STAGE`` per stage) |
| ``clue_true`` | clues the teacher's ``clue_truth`` finds true of the speaker's picture, judged on the game state the speaker observed (turns where it says ``None`` are not counted) |
| every metric the game declares | from the game's ``collect_metrics``, e.g. ``acc`` (vote accuracy) and ``na`` (N/A rate) |

**Estimator.** Each figure is pooled over all games' turns (a ratio estimator: true clues /
judged clues over every game), and its standard error is the delete-1 jackknife over games
(``vzframe.evaluate.jackknife_se``, as ``vzframe eval`` uses), so the turns of one game count as
one cluster: the citizens of a spy game see the same clues and vote alike.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.toy_world.world import ToyWorld, toy_world
from vzframe.rollout import Generation
from vzframe.rollout.play import held_out_games, play
from vzframe.rollout.policy import EnginePolicy, Move, Policy, Referee, TeacherPolicy
from vzframe.types import Episode

HELDOUT_SEED = 31_337
"""Seed of the held-out pictures (the image source's) and games. A build draws its pictures
from seeds ``seed``, ``seed + 10_000`` and ``seed + 20_000`` of the same source."""

HELDOUT_GAMES = 128
"""Games ``vzframe model heldout`` plays by default: standard errors of about ±0.03 on the
vote figures of the spy game."""

BATCH_GAMES = 48
"""Games played at once (their turns of a tick are one batched generation)."""

LABELS = {"valid": "valid answers", "clue_true": "true clues"}


@dataclass(frozen=True)
class Measured:
    """A finished game and the verdicts of ``clue_truth`` on its judged clues."""

    episode: Episode
    truths: tuple[bool, ...]


class Judge(Referee):
    """``clue_truth``'s verdicts on every move it judges, per game, asked on the state the mover
    observed (before any move of the tick is stepped)."""

    def __init__(self, games: int, judge: Callable[[Any, int, str], bool | None] | None) -> None:
        self.truths: list[list[bool]] = [[] for _ in range(games)]
        self.judge = judge

    def acted(self, move: Move, generation: Generation) -> None:
        verdict = self.judge(move.game, move.player, generation.text) if self.judge is not None else None
        if verdict is not None:
            self.truths[move.index].append(bool(verdict))


def play_measured(games: Sequence[Any], policy: Policy, judge: Callable[[Any, int, str], bool | None] | None) -> list[Measured]:
    """Play ``games`` to the end with ``policy`` (``vzframe.rollout.play.play``: every tick,
    one ``act`` call answers all movers of all games, then each is stepped in ``to_act()``
    order). ``judge(game, player, completion)`` is asked about each move before the tick's
    moves are stepped."""
    referee = Judge(len(games), judge)
    rollout = play(games, policy, referee=referee)
    return [Measured(episode, tuple(t)) for episode, t in zip(rollout.episodes, referee.truths)]


def measure(world: Any, records: Sequence[Measured]) -> dict[str, float]:
    """The pooled figures (module docstring) of ``records``."""
    from vzframe.evaluate import game_metrics

    turns = [t for r in records for t in r.episode.turns]
    out: dict[str, float] = {}
    if turns:
        out["valid"] = sum(t.action.kind != "invalid" for t in turns) / len(turns)
        for stage in sorted({t.stage for t in turns}):
            of_stage = [t for t in turns if t.stage == stage]
            out[f"valid_{stage}"] = sum(t.action.kind != "invalid" for t in of_stage) / len(of_stage)
    truths = [v for r in records for v in r.truths]
    if truths:
        out["clue_true"] = sum(truths) / len(truths)
    out.update(game_metrics(world.game_cls, world.pm, [r.episode for r in records]))
    return out


def summary(world: Any, records: Sequence[Measured], seconds: float) -> dict[str, Any]:
    """Figures, their standard errors (jackknife over games) and how many turns each counts."""
    from vzframe.evaluate import jackknife_se

    turns = [t for r in records for t in r.episode.turns]
    counts = {"games": len(records), "turns": len(turns), "judged_clues": sum(len(r.truths) for r in records)}
    for stage in sorted({t.stage for t in turns}):
        counts[f"turns_{stage}"] = sum(t.stage == stage for t in turns)
    figures = measure(world, records)
    stderr = jackknife_se(functools.partial(measure, world), records)
    return {
        "figures": {k: round(v, 4) for k, v in figures.items()},
        "stderr": {k: round(v, 4) for k, v in stderr.items()},
        "counts": counts,
        "seconds": round(seconds, 1),
        "seconds_per_game": round(seconds / max(len(records), 1), 3),
    }


def new_games(world: ToyWorld, games: int, seed: int) -> list[Any]:
    """``games`` fresh games seeded from ``seed``, on pictures of ``world``'s source seeded
    with ``seed``: the same list every time."""
    return held_out_games(world.game_cls, world.game_config, world.source(seed), games, seed)


def model_play(world: ToyWorld, model_dir: str | Path, games: int, seed: int, rollout: Any) -> tuple[list[Measured], float]:
    """``games`` held-out games, every seat ``model_dir``'s model generating as a run does."""
    import torch
    from transformers import AutoProcessor

    from vzframe.rollout.hf import HFEngine
    from vzframe.train.trainer import load_model, quiet_libraries

    quiet_libraries()
    engine = HFEngine(load_model(str(model_dir), bf16=False).eval(), AutoProcessor.from_pretrained(model_dir), rollout)
    teacher = world.teacher if world.describes else None  # clue_truth reads the pictures' Facts
    facts = world.facts(world.source(seed)) if teacher is not None else None
    judge = (lambda game, player, completion: teacher.clue_truth(game, player, completion, facts)) if teacher else None

    policy = EnginePolicy(engine, seeded=False)  # unseeded requests: how the shipped stamps' figures were made
    torch.manual_seed(seed)
    t0, records = time.perf_counter(), []
    live = new_games(world, games, seed)
    for start in range(0, games, BATCH_GAMES):
        records += play_measured(live[start : start + BATCH_GAMES], policy, judge)
    return records, time.perf_counter() - t0


def teacher_play(world: ToyWorld, games: int, seed: int) -> tuple[list[Measured], float]:
    """The same held-out games (seeds and pictures) with every seat the game's teacher."""
    teacher = world.teacher
    facts = world.facts(world.source(seed))
    policy = TeacherPolicy(teacher, facts, random.Random(f"heldout-teacher:{seed}"))
    t0 = time.perf_counter()
    records = play_measured(new_games(world, games, seed), policy, lambda g, p, c: teacher.clue_truth(g, p, c, facts))
    return records, time.perf_counter() - t0


def heldout_figures(
    model_dir: str | Path | None,
    *,
    game: str = "games.spy",
    images: str | None = None,
    games: int = HELDOUT_GAMES,
    seed: int = HELDOUT_SEED,
    rollout: Any = None,
    teacher: bool = True,
    world: ToyWorld | None = None,
) -> dict[str, Any]:
    """Play ``games`` held-out games of ``game`` (a game plugin's name) on pictures of
    ``images`` (default: the game's ``default_images``, else ``clevr_toy``) seeded with
    ``seed``: with ``model_dir``'s model in every seat (skipped when None), and, with
    ``teacher`` and when the game has one, with its teacher in every seat. ``rollout`` is a
    ``vzframe.config.RolloutConfig`` (default: a run's defaults). Returns the figures of each
    (``report["model"]``, ``report["teacher"]``) with standard errors; see the module
    docstring. Works on any model directory, e.g. a run's exported checkpoint."""
    from vzframe.config import ConfigError, RolloutConfig

    if games < 2:
        raise ConfigError(f"held-out figures need at least 2 games for a standard error; got {games}.")
    world = world or toy_world(game, images, teacher_required=False)
    rollout = rollout or RolloutConfig()
    report: dict[str, Any] = {
        "game": world.game_name, "plugin": world.plugin, "images": world.images, "games": games, "seed": seed,
        "temperature": rollout.temperature, "max_new_tokens": rollout.max_new_tokens,
        "estimator": "pooled over all turns of all games; ± one standard error, delete-1 jackknife over games",
        "labels": {**LABELS, **{k: m.label for k, m in world.game_cls.metrics.items()}},
    }  # fmt: skip
    if model_dir is not None:
        records, seconds = model_play(world, model_dir, games, seed, rollout)
        report["model"] = {"path": str(model_dir), **summary(world, records, seconds)}
    if teacher and world.teacher is not None and world.describes:
        records, seconds = teacher_play(world, games, seed)
        report["teacher"] = summary(world, records, seconds)
    return report


def format_figures(report: dict[str, Any]) -> str:
    """The report as a small table: one row per figure, a column per player (model, teacher)."""
    players = [p for p in ("model", "teacher") if p in report]
    names = list(dict.fromkeys(k for p in players for k in report[p]["figures"]))
    headline = [k for k in ("valid", "clue_true", "acc", "na") if k in names]
    names = headline + [k for k in names if k not in headline]
    labels = report.get("labels", {})
    width = max([len(labels.get(k, k)) + len(k) + 3 for k in names] + [10])
    lines = [
        f"held-out figures: {report['games']} games of {report['game']} on {report['images']} pictures "
        f"(seed {report['seed']}), temperature {report['temperature']}",
        f"{'':<{width}}" + "".join(f"{p:>18}" for p in players),
    ]
    for key in names:
        cells = []
        for p in players:
            value, se = report[p]["figures"].get(key, math.nan), report[p]["stderr"].get(key, math.nan)
            cells.append(f"{value:>10.3f} ± {se:.3f}" if math.isfinite(value) else f"{'-':>18}")
        lines.append(f"{labels.get(key, key) + f' ({key})':<{width}}" + "".join(cells))
    lines.append("± one standard error (jackknife over games); figures pooled over all turns.")
    return "\n".join(lines)
