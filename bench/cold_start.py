"""Cold start: seconds from typing ``vzframe run`` to the first training step's start.

    python bench/cold_start.py [--repeats 3] [--fresh] [-- key=value ...]

Runs ``vzframe run games.spy schedulers.hysteresis steps=1 checkpoint_every=0 --quiet`` (the
embedded default model unless ``$VZFRAME_DEFAULT_MODEL`` says otherwise) as a new process.
The first step starts at the moment ``metrics.jsonl`` was written minus the step's own
``time_step``; the process's total wall time is printed too. ``--fresh`` gives each run an
empty ``TORCH_EXTENSIONS_DIR``, as in a new environment, and reports what was built in it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(extra: list[str], *, fresh: bool) -> tuple[float, float, list[str]]:
    """(seconds to the first step's start, total wall seconds, files built in the extension cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        extensions = Path(tmp) / "torch_extensions"
        if fresh:
            env["TORCH_EXTENSIONS_DIR"] = str(extensions)
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "vzframe.cli", "run", "games.spy", "schedulers.hysteresis",
               "steps=1", "checkpoint_every=0", f"output_dir={out}", "--quiet", *extra]  # fmt: skip
        t0 = time.time()
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if result.returncode != 0:
            sys.exit(f"run failed:\n{result.stderr[-3000:]}")
        metrics = out / "metrics.jsonl"
        row = json.loads(metrics.read_text().splitlines()[0])
        to_first_step = metrics.stat().st_mtime - row["time_step"] - t0
        built = sorted(str(p.relative_to(extensions)) for p in extensions.rglob("*")) if extensions.exists() else []
        return to_first_step, wall, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--fresh", action="store_true", help="an empty TORCH_EXTENSIONS_DIR for every run")
    parser.add_argument("extra", nargs="*", help="key=value overrides passed on to vzframe run")
    args = parser.parse_args()

    firsts, walls = [], []
    for i in range(args.repeats):
        first, wall, built = one_run(args.extra, fresh=args.fresh)
        firsts.append(first)
        walls.append(wall)
        note = f", built: {', '.join(built) or 'nothing'}" if args.fresh else ""
        print(f"run {i + 1}: first step after {first:.2f} s, wall {wall:.2f} s{note}", flush=True)
    print(f"median of {args.repeats}: first step after {statistics.median(firsts):.2f} s, wall {statistics.median(walls):.2f} s")


if __name__ == "__main__":
    main()
