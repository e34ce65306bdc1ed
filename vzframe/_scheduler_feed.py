"""The metric streams ``check_scheduler`` feeds a scheduler (``vzframe._scheduler_kit``), and
``_feed``, which feeds one and checks what every ``update`` must keep."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

Stream = list[dict[str, float]]
"""One sequence of a step's metrics, as ``update`` is fed them."""
Run = list[str] | None
"""The phases a scheduler chose on one stream; None where that failed a check."""

EXTRA_METRICS: tuple[str, ...] = ("reward_player", "baseline_player")
"""Keys a run adds to every step's metrics (per role); a scheduler must tolerate them."""


def _metric_stream(rng: random.Random, names: tuple[str, ...], steps: int) -> list[dict[str, float]]:
    """Stretches of 1 to 20 steps around a centre per metric (0, 1, or anywhere), with noise;
    some values exactly 0 or 1."""
    stream: list[dict[str, float]] = []
    while len(stream) < steps:
        centres = {n: rng.choice((0.0, 1.0, rng.random())) for n in names}
        noise = rng.choice((0.0, 0.05, 0.3))
        for _ in range(min(rng.randint(1, 20), steps - len(stream))):
            stream.append({n: min(1.0, max(0.0, c + rng.uniform(-noise, noise))) for n, c in centres.items()})
    return stream


def _feed(scheduler: Any, stream: list[dict[str, float]], start: int, where: str) -> list[str]:
    """The phase returned by each update; each must be ``scheduler.phase`` afterwards, and
    the metrics given must be as they were (a run logs that very dict after ``update``)."""
    chosen = []
    for i, metrics in enumerate(stream, start):
        given = dict(metrics)
        try:
            phase = scheduler.update(i, given)
        except Exception as exc:
            raise AssertionError(
                f"{where} step {i}: update() raised {type(exc).__name__}: {exc} (given the metrics {sorted(metrics)}: "
                "those the game reports and what a run adds; list the ones update() needs in `requires`)"
            ) from exc
        assert _same(given, metrics), (
            f"{where} step {i}: update() changed the metrics it was given ({_changes(metrics, given)}); treat them "
            "as read-only (copy with dict(metrics) to change a copy): they are the step's metrics that a run logs"
        )
        assert phase == scheduler.phase, (
            f"{where} step {i}: update() returned {phase!r} but scheduler.phase is {scheduler.phase!r}; "
            "set self.phase to the phase you return"
        )
        chosen.append(phase)
    return chosen


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    removed = [k for k in before if k not in after]
    added = [k for k in after if k not in before]
    changed = [f"{k!r}: {before[k]!r} -> {after[k]!r}" for k in before if k in after and not _same(before[k], after[k])]
    return "; ".join([*changed, *([f"removed {removed}"] if removed else []), *([f"added {added}"] if added else [])])


def _same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN (statistics before any update are NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)
