"""What several test modules share about real runs: the CLI as a subprocess, reading logs,
and the 6-step reference run whose checkpoints the lifecycle and run-folder tests damage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A run whose weights really move (the length reward gives the random model a signal) and
# whose phases alternate every 3 steps, so a checkpoint (every 2) falls inside a phase and the
# resumed half depends on the restored scheduler, baselines and optimizer.
RUN = [
    "tests.fixtures.length_reward", "schedulers.alternate", "scheduler.every=3", "steps=6", "games_per_step=2",
    "checkpoint_every=2", "keep_last=2", "rollout.max_new_tokens=16", "train.lr=1e-3",
]  # fmt: skip
TIMING = ("time_", "tokens_per_s")


def vzframe(*args: str, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vzframe", *args, "--quiet"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to show a failed command changed nothing."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def load_state(path: Path):
    import torch

    from vzframe.train.ds_checkpoint import safe_globals

    with torch.serialization.safe_globals(safe_globals()):
        return torch.load(path, weights_only=True)


def same_state(a, b) -> bool:
    """Equal nested state: tensors bit for bit (pickles of equal states may differ in bytes)."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__"):
        return type(a) is type(b) and same_state(vars(a), vars(b))
    return a == b
