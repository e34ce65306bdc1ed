"""``check_scheduler``'s replay in another process (``vzframe.testing``): a few metric
sequences fed again in a fresh Python with another ``PYTHONHASHSEED`` and pid, as another
rank or a resumed run would feed them, must choose the same phases."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from vzframe._scheduler_feed import Run, Stream
    from vzframe.protocols import PhaseScheduler

REPLAYED = 3
"""Sequences that ``_check_across_processes`` replays in a fresh process."""


def _check_across_processes(
    cls: type[PhaseScheduler], cfg: BaseModel, phases: tuple[str, ...], make: Callable[[], Any], streams: list[Stream],
    runs: list[Run], who: str,
) -> bool | str:
    """Replay a few sequences in a fresh Python with another ``PYTHONHASHSEED`` (and pid), as
    another rank or a resumed run would: the same phases and final statistics. True once
    compared; why not (a str) when the class cannot be imported there by name."""
    data = cfg.model_dump(mode="json")
    try:
        cls.Config.model_validate(data)
    except Exception as exc:
        raise AssertionError(
            f"{who}.Config does not survive model_dump(mode='json') then model_validate ({exc}); config.yaml "
            "stores it that way and another rank or `vzframe resume` reads it back"
        ) from exc
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        where = "inside a function" if "<locals>" in cls.__qualname__ else "in __main__"
        return (
            f"{cls.__qualname__} is defined {where}, so another process cannot import it by name. Define the "
            "scheduler at module level in an importable module (as a plugin is) to check that another rank or a "
            "resumed run chooses the same phases"
        )
    found: Any = importlib.import_module(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    if found is not cls:
        return f"{cls.__module__}.{cls.__qualname__} does not name this class; define it at module level under its own name"
    from vzframe._scheduler_feed import _feed, _same

    picked = [k for k, run in enumerate(runs) if run is not None][:REPLAYED]
    if not picked:  # no sequence ran cleanly here: nothing to compare with
        return False
    ours = []
    for k in picked:
        here = make()
        ours.append({"phases": [here.phase, *_feed(here, streams[k], 0, f"{who} sequence {k}")], "metrics": here.metrics()})
    seed = os.environ.get("PYTHONHASHSEED")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": "2" if seed == "1" else "1"}
    job = {"module": cls.__module__, "qualname": cls.__qualname__, "config": data, "phases": phases,
           "streams": [streams[k] for k in picked]}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from vzframe._scheduler_replay import _replay; _replay()"],
            input=json.dumps(job), capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "the fresh process took over 120 s"
    try:
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
        assert isinstance(theirs, dict) and ("runs" in theirs or "import" in theirs)
    except (IndexError, ValueError, AssertionError):
        return f"the fresh process failed: {done.stderr.strip()[-500:]}"
    if "import" in theirs:
        return f"a fresh process could not import {cls.__module__} ({theirs['import']}); PYTHONPATH was this sys.path"
    for k, mine, other in zip(picked, ours, theirs["runs"]):
        where = f"{who} sequence {k}: another process (another rank, or a resumed run) fed the same metrics"
        fix = "seed randomness from the config or the step, never from hash() of a str or the process id"
        assert "error" not in other, f"{where} {other.get('error')} where this one did not; {fix}"
        a, b = mine["phases"], other["phases"]
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        assert i != 0, f"{where} started in {b[0]!r} where this one started in {a[0]!r}; {fix}"
        assert i is None, f"{where} chose {b[i]!r} at step {i - 1} where this one chose {a[i]!r}; {fix}"
        assert _same(mine["metrics"], other["metrics"]), (
            f"{where} ended with metrics() {other['metrics']} where this one has {mine['metrics']}; {fix}"
        )
    return True


def _replay() -> None:
    """In the fresh process: read the job from stdin, print the phases and final statistics
    of each stream as one JSON line."""
    job = json.load(sys.stdin)
    try:
        found: Any = importlib.import_module(job["module"])
        for part in job["qualname"].split("."):
            found = getattr(found, part)
    except Exception as exc:
        print(json.dumps({"import": f"{type(exc).__name__}: {exc}"}))
        return
    cfg, phases, runs = found.Config.model_validate(job["config"]), tuple(job["phases"]), []
    for stream in job["streams"]:
        try:
            scheduler = found(cfg, phases=phases)
            chosen = [scheduler.phase] + [scheduler.update(i, dict(m)) for i, m in enumerate(stream)]
            runs.append({"phases": chosen, "metrics": scheduler.metrics()})
        except Exception as exc:
            runs.append({"error": f"raised {type(exc).__name__}: {exc}"})
    print(json.dumps({"runs": runs}))
