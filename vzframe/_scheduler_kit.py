"""Conformance kit for phase schedulers: ``vzframe.testing.check_scheduler`` (import it from
there). Run it on your own scheduler, as ``check_game`` on a game:

    from vzframe.testing import check_scheduler
    check_scheduler(MyScheduler)                                  # default config, phases clue/decision
    check_scheduler(MyScheduler, {"warmup": 3}, phases=tuple(MyGame.phases), metrics=MyGame.metrics)

It feeds many seeded random metric sequences (stretches of high, low and noisy values for
every metric the game reports, plus the ``reward_ROLE``/``baseline_ROLE`` a run adds) and
checks what a run relies on: ``requires`` is a tuple of metric names the game reports
(declared on the class, or set per instance in ``__init__``); a phase the game lacks is a
``ValueError`` at construction; every phase it returns is one of the game's and is
``scheduler.phase``; ``update`` leaves the metrics it is given as they were (the run logs
them); no phase is left before the scheduler's declared ``min_steps``; the same metrics give
the same phases (whatever the global random state, and in another process with another
``PYTHONHASHSEED``: ranks and resumed runs must agree); the state survives a JSON round trip
at any step and the restored scheduler decides exactly as the original would have; a step
without a required metric is a ``KeyError`` (or ``ValueError``) that names it; ``metrics()``
gives str -> float, finite or NaN. Unlike ``check_game``, which stops at the first broken
rule, it runs every check and raises one ``AssertionError`` listing them all.
"""

from __future__ import annotations

import json
import math
import random
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from vzframe._scheduler_feed import EXTRA_METRICS, Run, Stream, _feed, _metric_stream, _same
from vzframe._scheduler_replay import _check_across_processes
from vzframe.protocols import PhaseScheduler, optional


@dataclass(frozen=True)
class SchedulerReport:
    """What ``check_scheduler`` fed: sequences, updates, how often each phase was chosen, the
    phase switches seen, and whether another process replayed some sequences (it cannot when
    the scheduler class is not importable by name: then a warning says so)."""

    sequences: int
    updates: int
    phases_chosen: dict[str, int] = field(default_factory=dict)
    switches: int = 0
    checked_across_processes: bool = False


class _Problems:
    """Each check stops at its first failure, and only a check's first failure is kept (a
    check run on every sequence fails the same way on each); every check runs, and all their
    failures are listed together."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.found: dict[str, str] = {}

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except AssertionError as exc:
            self.found.setdefault(fn.__name__, str(exc))
        except Exception as exc:
            self.found.setdefault(fn.__name__, f"{self.who}: {fn.__name__} hit {type(exc).__name__}: {exc}")
        return None

    def raise_if_any(self) -> None:
        if self.found:
            items = "\n".join(f"- {p}" for p in self.found.values())
            raise AssertionError(f"check_scheduler({self.who}) found {len(self.found)} problem(s):\n{items}")


def check_scheduler(
    scheduler_cls: type[PhaseScheduler],
    config: BaseModel | Mapping[str, Any] | None = None,
    *,
    phases: tuple[str, ...] = ("clue", "decision"),
    metrics: Iterable[str] | None = None,
    sequences: int = 20,
    steps: int = 100,
    seed: int = 0,
) -> SchedulerReport:
    """Check ``scheduler_cls`` built as ``scheduler_cls(config, phases=phases)``.

    ``phases`` are the game's phase names (``tuple(MyGame.phases)``); ``metrics`` the names
    of the metrics the game reports (``MyGame.metrics`` will do; default: the scheduler's
    ``requires``), each fed as a rate in [0, 1] on every step.
    """
    who = getattr(scheduler_cls, "__name__", repr(scheduler_cls))
    metrics = None if metrics is None else tuple(metrics)
    problems = _Problems(who)
    problems.run(_check_class, scheduler_cls, who)
    cfg = problems.run(_make_config, scheduler_cls, config, who)
    make = _maker(scheduler_cls, cfg, tuple(phases), who)
    first = problems.run(make) if cfg is not None else None
    built = scheduler_cls if first is None else first  # `requires` may be set in __init__
    requires = problems.run(_check_requires, built, who, metrics)
    requires = requires if requires is not None else _usable_requires(built)
    if first is None:  # nothing else can be checked
        problems.raise_if_any()
    min_steps = problems.run(_check_min_steps_declared, first, who)
    names = tuple(dict.fromkeys([*(requires if metrics is None else metrics), *EXTRA_METRICS]))
    rng = random.Random(seed)
    streams = [_metric_stream(rng, names, steps) for _ in range(sequences)]
    problems.run(_check_foreign_phases, scheduler_cls, cfg, tuple(phases), who, streams[0] if streams else [])
    runs = [problems.run(_check_sequence, make, stream, tuple(phases), f"{who} sequence {k}") for k, stream in enumerate(streams)]
    if min_steps is not None:
        problems.run(_check_min_steps, make, runs, min_steps, who)
    problems.run(_check_determinism, make, streams, runs, who)
    problems.run(_check_round_trips, make, streams, runs, rng, min_steps or 1, who)
    problems.run(_check_missing_metrics, make, requires, streams[0] if streams else [], who)
    across = problems.run(_check_across_processes, scheduler_cls, cfg, tuple(phases), make, streams, runs, who)
    if isinstance(across, str):
        warnings.warn(f"check_scheduler({who}) skipped its cross-process check: {across}", stacklevel=2)
    problems.raise_if_any()
    chosen: Counter[str] = Counter(p for run in runs for p in run)
    switches = sum(a != b for run in runs for a, b in zip(run, run[1:]))
    return SchedulerReport(len(streams), sum(len(r) for r in runs), dict(chosen), switches, across is True)


# ---- building ---------------------------------------------------------------------------


def _check_class(cls: type[PhaseScheduler], who: str) -> None:
    config_cls = getattr(cls, "Config", None)
    assert isinstance(config_cls, type) and issubclass(config_cls, BaseModel), f"{who}.Config must be a pydantic model"
    for method in ("update", "metrics", "state_dict", "load_state_dict"):
        assert callable(getattr(cls, method, None)), f"{who} has no method {method}() (see the PhaseScheduler protocol)"


def _check_requires(scheduler: Any, who: str, offered: Iterable[str] | None) -> tuple[str, ...]:
    """``requires`` of the built scheduler: a class attribute, or set in ``__init__``."""
    requires = getattr(scheduler, "requires", None)
    assert requires is not None, (
        f'{who}.requires is not declared: set `requires = ("acc", ...)` on the class (or `self.requires = '
        "(config.metric,)` in __init__ when the config names the metric), the metrics update() reads (() if "
        "none), so a run checks the game reports them before it starts"
    )
    assert isinstance(requires, tuple) and all(isinstance(r, str) and r for r in requires), (
        f'{who}.requires is {requires!r}; it must be a tuple of metric names (str), e.g. ("acc", "na")'
    )
    if offered is not None:
        missing = [r for r in requires if r not in set(offered)]
        assert not missing, f"{who} requires metrics {missing} that the game does not report (it reports {sorted(offered)})"
    return requires


def _usable_requires(scheduler: Any) -> tuple[str, ...]:
    """What ``requires`` says, as far as it can be read, for the checks that follow."""
    requires = getattr(scheduler, "requires", None)
    if isinstance(requires, (list, tuple, set, frozenset)):
        return tuple(r for r in requires if isinstance(r, str))
    return ()


def _make_config(cls: type[PhaseScheduler], config: Any, who: str) -> BaseModel:
    if isinstance(config, BaseModel):
        return config
    try:
        return cls.Config.model_validate(dict(config or {}))
    except Exception as exc:
        raise AssertionError(f"{who}.Config rejected {dict(config or {})!r}: {exc}") from exc


def _maker(cls: type[PhaseScheduler], cfg: BaseModel, phases: tuple[str, ...], who: str) -> Callable[[], Any]:
    def make() -> Any:
        try:
            scheduler = cls(cfg, phases=phases)
        except Exception as exc:
            raise AssertionError(f"{who}(config, phases={phases}) raised {type(exc).__name__}: {exc}") from exc
        assert scheduler.phase in phases, (
            f"{who}(config, phases={phases}) starts in phase {scheduler.phase!r}, which is not one of the game's"
        )
        return scheduler

    return make


# ---- checks -----------------------------------------------------------------------------


def _check_statistics(scheduler: Any, where: str) -> None:
    try:
        stats = scheduler.metrics()
    except Exception as exc:
        raise AssertionError(f"{where}: metrics() raised {type(exc).__name__}: {exc}") from exc
    assert isinstance(stats, dict), f"{where}: metrics() returned {type(stats).__name__}; expected dict[str, float]"
    for key, value in stats.items():
        assert isinstance(key, str), f"{where}: metrics() has the key {key!r}; names are str"
        assert isinstance(value, float), (
            f"{where}: metrics()[{key!r}] is the {type(value).__name__} {value!r}; return floats (NaN for 'not yet')"
        )
        assert not math.isinf(value), f"{where}: metrics()[{key!r}] is {value}; return a finite float or NaN"


def _check_sequence(make: Callable[[], Any], stream: list[dict[str, float]], phases: tuple[str, ...], where: str) -> list[str]:
    scheduler = make()
    _check_statistics(scheduler, f"{where}, before any update")
    chosen = []
    for i, metrics in enumerate(stream):
        (phase,) = _feed(scheduler, [metrics], i, where)
        assert phase in phases, f"{where} step {i}: update() chose phase {phase!r}, which is not one of the game's {phases}"
        _check_statistics(scheduler, f"{where} step {i}")
        chosen.append(phase)
    return chosen


def _check_foreign_phases(cls: type[PhaseScheduler], cfg: BaseModel, phases: tuple[str, ...], who: str, stream: Stream) -> None:
    """A game without the phases the config names: a ValueError in ``__init__``, or (for a
    scheduler that takes whatever phases it is given) only phases of that game."""
    foreign = tuple(f"not_{p}" for p in phases)
    try:
        scheduler = cls(cfg, phases=foreign)
    except ValueError as exc:
        assert str(exc).strip(), f"{who}(config, phases={foreign}) raised ValueError with no message; name the phase"
        return
    except Exception as exc:
        raise AssertionError(
            f"{who}(config, phases={foreign}) raised {type(exc).__name__}: {exc}; a phase the game lacks must be "
            "a ValueError naming it (a config error, shown before the run starts)"
        ) from exc
    assert scheduler.phase in foreign, (
        f"{who}(config, phases={foreign}) accepted a game without its phases but would train {scheduler.phase!r}; "
        "raise ValueError in __init__ naming the phase the game lacks"
    )
    _check_sequence(lambda: scheduler, stream, foreign, f"{who} with phases {foreign}")


def _check_min_steps_declared(scheduler: Any, who: str) -> int:
    """``min_steps`` (optional, default 1): the fewest steps a phase is trained before the
    scheduler may leave it."""
    value: object = optional(scheduler, "min_steps")
    assert isinstance(value, int) and not isinstance(value, bool) and value >= 1, (
        f"{who}.min_steps is {value!r}; it must be a positive int, the fewest steps a phase is trained "
        "before update() may leave it (leave it out for 1)"
    )
    return value


def _check_stretches(trained: list[str], min_steps: int, where: str, who: str) -> None:
    """``trained[i]`` is the phase of step i: every stretch of one phase but the last (cut by
    the end of the stream) lasts at least ``min_steps`` steps."""
    begin = 0
    for i in range(1, len(trained)):
        if trained[i] != trained[i - 1]:
            assert i - begin >= min_steps, (
                f"{where}: trained {trained[begin]!r} for {i - begin} step(s) (steps {begin} to {i - 1}), then "
                f"update() at step {i - 1} chose {trained[i]!r}, but {who}.min_steps is {min_steps}; stay in a "
                "phase for min_steps steps (count the step just trained), or declare the min_steps you keep"
            )
            begin = i


def _check_min_steps(make: Callable[[], Any], runs: list[Run], min_steps: int, who: str) -> None:
    for k, run in enumerate(runs):
        if run is not None:
            _check_stretches([make().phase, *run], min_steps, f"{who} sequence {k}", who)


def _check_determinism(make: Callable[[], Any], streams: list[Stream], runs: list[Run], who: str) -> None:
    """Another instance (another rank, another global random state) chooses the same."""
    saved = random.getstate()
    numpy = sys.modules.get("numpy")
    np_saved = numpy.random.get_state() if numpy is not None else None
    try:
        for k, (stream, expected) in enumerate(zip(streams, runs)):
            if expected is None:
                continue
            twins = []
            for rank in (1, 2):
                random.seed(f"rank {rank}")
                if numpy is not None:
                    numpy.random.seed(rank)
                twin = make()
                got = _feed(twin, stream, 0, f"{who} sequence {k} (rank {rank})")
                assert got == expected, _diverged(f"{who} sequence {k}: fed the same metrics, rank {rank}", expected, got, 0)
                twins.append(twin)
            a, b = (t.metrics() for t in twins)
            assert _same(a, b), f"{who} sequence {k}: same metrics, different metrics(): {a} != {b}"
    finally:
        random.setstate(saved)
        if numpy is not None:
            numpy.random.set_state(np_saved)


def _diverged(what: str, expected: list[str], got: list[str], start: int) -> str:
    i = next(i for i, (x, y) in enumerate(zip(expected + [None], got + [None])) if x != y)
    return (
        f"{what} chose {got[i] if i < len(got) else None!r} at step {start + i} where the first chose "
        f"{expected[i] if i < len(expected) else None!r}; keep update() deterministic (no unseeded randomness, "
        "no clock, no set order)"
    )


def _check_round_trips(
    make: Callable[[], Any], streams: list[Stream], runs: list[Run], rng: random.Random, min_steps: int, who: str
) -> None:
    """Save at a step (JSON), load into a fresh instance: it continues as the original would
    (and keeps ``min_steps`` across the cut)."""
    for k, (stream, expected) in enumerate(zip(streams, runs)):
        if expected is None:
            continue
        cut = (0, len(stream))[k] if k < 2 else rng.randrange(len(stream) + 1)
        where = f"{who} sequence {k}, state saved after step {cut}"
        original = make()
        head = [original.phase, *_feed(original, stream[:cut], 0, where)]
        state = original.state_dict()
        try:
            text = json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as exc:
            hint = "NaN or infinity is not JSON: store None" if isinstance(exc, ValueError) else "use dicts, lists, str, numbers"
            raise AssertionError(f"{where}: state_dict() is not JSON ({exc}); {hint}. It goes into every checkpoint") from exc
        restored = make()
        try:
            restored.load_state_dict(json.loads(text))
        except Exception as exc:
            raise AssertionError(
                f"{where}: load_state_dict(state_dict() through JSON) raised {type(exc).__name__}: {exc}"
            ) from exc
        assert restored.phase == original.phase, (
            f"{where}: the restored scheduler is in phase {restored.phase!r}, the original in {original.phase!r}"
        )
        again = json.loads(json.dumps(restored.state_dict(), allow_nan=False, default=repr))
        assert _same(again, json.loads(text)), (
            f"{where}: state_dict() after load_state_dict differs from the one loaded: {again} != {json.loads(text)}"
        )
        assert _same(restored.metrics(), original.metrics()), (
            f"{where}: metrics() after a round trip {restored.metrics()} != {original.metrics()}"
        )
        tail = _feed(restored, stream[cut:], cut, where)
        if tail != expected[cut:]:  # say so if the restored scheduler left a phase too early
            _check_stretches(head + tail, min_steps, where, who)
        assert tail == expected[cut:], _diverged(f"{where}: the restored scheduler", expected[cut:], tail, cut)


def _check_missing_metrics(make: Callable[[], Any], requires: tuple[str, ...], stream: Stream, who: str) -> None:
    """Without a required metric: a KeyError/ValueError whose message names it (not a bare
    ``metrics[key]``). A scheduler that requires nothing runs on no metrics at all."""
    warm = stream[:3]
    if not requires:
        scheduler = make()
        try:
            scheduler.update(0, {})
        except Exception as exc:
            raise AssertionError(
                f"{who} requires no metric, but update(step, {{}}) raised {type(exc).__name__}: {exc}; "
                "declare the metrics update() reads in `requires`"
            ) from exc
        return
    for key in requires:
        scheduler = make()
        try:
            _feed(scheduler, warm, 0, who)
        except AssertionError:  # sequence 0 starts the same way: its check reports this
            return
        lacking = {k: v for k, v in (stream[0] if stream else {}).items() if k != key}
        try:
            scheduler.update(len(warm), lacking)
        except (KeyError, ValueError) as exc:
            message = str(exc.args[0]) if exc.args else ""
            assert key in message and message.strip("'\" ") != key, (
                f"{who}: update() without the required metric {key!r} raised {type(exc).__name__}({message!r}); "
                f'say what is missing and where it comes from, e.g. KeyError("{who} needs metric {key!r}; got '
                "[...]. The game's collect_metrics must report it.\")"
            )
        except Exception as exc:
            raise AssertionError(
                f"{who}: update() without the required metric {key!r} crashed with {type(exc).__name__}: {exc}; "
                "check for it first and raise KeyError naming it"
            ) from exc
        else:
            raise AssertionError(
                f"{who}: update() accepted metrics without the required {key!r}; raise KeyError naming it, or "
                "drop it from `requires`"
            )
