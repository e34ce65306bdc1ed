"""Exact resume under fire: SIGKILL a run at random moments, `vzframe resume` after each kill,
and compare the result with an uninterrupted run: metrics, episodes, final weights and
optimizer state, bit for bit.

    python bench/kill_resume.py --kills 20 --seed 0

Runs from the repository root on the tiny offline model (built on first use). Prints where
each kill landed (start-up, a step, a checkpoint write) and the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.runs import comparable, load_state, read_jsonl, same_state  # noqa: E402

RUN = [
    "tests.fixtures.length_reward", "schedulers.alternate", "scheduler.every=3", "steps=20", "games_per_step=2",
    "checkpoint_every=2", "keep_last=2", "rollout.max_new_tokens=16", "train.lr=1e-3",
]  # fmt: skip


def start(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vzframe", *args, "--quiet"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def steps_logged(out: Path) -> int:
    return len((out / "metrics.jsonl").read_text().splitlines()) if (out / "metrics.jsonl").exists() else 0


def where(out: Path) -> str:
    """What the run was doing when killed, from what is on disk."""
    steps = steps_logged(out)
    tmp = sorted(p.name for p in (out / "checkpoints").glob(".tmp-*")) if (out / "checkpoints").exists() else []
    if tmp:
        return f"writing {tmp[0][5:]} (after {steps} steps)"
    return f"after {steps} steps" if steps else "start-up"


def same_checkpoint(a: Path, b: Path) -> bool:
    """Weights bit for bit; DeepSpeed's engine and optimizer state tensor for tensor."""
    names = json.loads((b / "MANIFEST.json").read_text())["files"]
    return (a / "model/model.safetensors").read_bytes() == (b / "model/model.safetensors").read_bytes() and all(
        same_state(load_state(a / n), load_state(b / n)) for n in names if n.endswith(".pt")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from vzframe.models import DEFAULT_MODEL_ENV
    from vzframe.models.tiny import ensure_default_model

    os.environ.setdefault(DEFAULT_MODEL_ENV, str(ensure_default_model()))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="vz-kill-"))
    ref, out = work / "reference", work / "killed"
    t0 = time.time()
    proc = start("run", *RUN, f"output_dir={ref}")
    if proc.wait() != 0:
        print(proc.stderr.read()[-2000:])
        return 1
    print(f"uninterrupted run: {time.time() - t0:.1f} s")

    kills, landed = 0, []
    proc = start("run", *RUN, f"output_dir={out}")
    while True:
        # Where to aim this kill: start-up, inside a step, or the instant a checkpoint is being written.
        aim = rng.choice(["start-up", "step", "step", "checkpoint"])
        lines = steps_logged(out)
        deadline = time.time() + (rng.uniform(0.0, 8.0) if aim == "start-up" else 120.0)
        while time.time() < deadline and proc.poll() is None:
            if aim == "step" and steps_logged(out) > lines:
                deadline = min(deadline, time.time() + rng.uniform(0.0, 3.0))
                aim = "step (armed)"
            if aim == "checkpoint" and list((out / "checkpoints").glob(".tmp-*")):
                break
            time.sleep(0.005)
        if proc.poll() is None and kills < args.kills:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            landed.append(where(out))
            print(f"kill {kills:2d}, aimed at {aim.split()[0]}: {landed[-1]}", flush=True)
        elif proc.poll() is None:
            proc.wait()
        if proc.returncode not in (0, -signal.SIGKILL):
            print(proc.stderr.read()[-3000:])
            return 1
        if proc.returncode == 0 and (kills >= args.kills or (out / "checkpoints" / "step-20").exists()):
            break
        # Killed before config.yaml was written: the folder holds no run yet, so run again.
        proc = start("resume", str(out)) if (out / "config.yaml").exists() else start("run", *RUN, f"output_dir={out}")

    same_metrics = comparable(read_jsonl(out / "metrics.jsonl")) == comparable(read_jsonl(ref / "metrics.jsonl"))
    same_episodes = read_jsonl(out / "episodes.jsonl") == read_jsonl(ref / "episodes.jsonl")
    final = max((p for p in (ref / "checkpoints").iterdir() if p.name.startswith("step-")), key=lambda p: int(p.name[5:]))
    same_weights = same_checkpoint(out / "checkpoints" / final.name, final)
    print(f"\n{kills} SIGKILLs, {kills} resumes, {time.time() - t0:.0f} s in all")
    print(f"kills while a checkpoint was being written: {sum(w.startswith('writing') for w in landed)}, "
          f"before the first step: {sum(w == 'start-up' for w in landed)}, otherwise: {sum(w.startswith('after') for w in landed)}")  # fmt: skip
    print(f"metrics identical: {same_metrics}; episodes identical: {same_episodes}; "
          f"final weights and optimizer state identical: {same_weights}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0 if same_metrics and same_episodes and same_weights else 1


if __name__ == "__main__":
    sys.exit(main())
