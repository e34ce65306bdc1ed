"""Checkpoints: everything a run needs to continue exactly where it stopped.

``OUTPUT_DIR/checkpoints/step-N/`` (N = steps completed) holds

- ``model/``: the policy in Hugging Face format, with its processor (what ``export`` copies);
- ``deepspeed/``: DeepSpeed's engine state: weights, optimizer, learning-rate schedule;
- ``state.json``: step, phase scheduler, role baselines, image-stream positions;
- ``rng-rank{R}.pt``: every random generator of rank R (Python, NumPy, torch);
- ``COMPLETE``: written last. A directory without it is ignored.

A checkpoint is written under a temporary name and renamed into place, so a run killed
while saving leaves the previous checkpoint untouched; ``keep_last`` limits disk use.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vzframe import dist

STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names it and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int  # steps completed: training resumes at this step index
    state: dict[str, Any]


def checkpoint_root(out: Path) -> Path:
    return Path(out) / "checkpoints"


def save(out: Path, step: int, trainer: Any, state: dict[str, Any], processor: Any, *, keep_last: int) -> Path:
    """Write checkpoint ``step-{step}`` atomically (all ranks call this), then prune old ones."""
    import torch

    root = checkpoint_root(out)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    try:
        if dist.rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        dist.barrier()
        trainer.save(tmp)  # collective: DeepSpeed state from every rank, HF model from rank 0
        torch.save(rng_state(), tmp / f"rng-rank{dist.rank()}.pt")
        dist.barrier()
        if dist.rank() == 0:
            processor.save_pretrained(tmp / "model")
            (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1))
            (tmp / "COMPLETE").write_text("ok\n")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            _prune(root, keep_last)
        dist.barrier()
    except OSError as exc:
        if dist.rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = latest(out, warn=False)
        kept = f"The previous checkpoint {previous.path} is intact." if previous else "No earlier checkpoint exists."
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise CheckpointError(
            f"Could not write checkpoint {final}: {reason}. {kept} Free space or fix permissions, "
            f"then continue with `vzframe resume {out}`."
        ) from exc
    return final


def _prune(root: Path, keep_last: int) -> None:
    complete = sorted(_complete_steps(root))
    for step in complete[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(root / f"step-{step}", ignore_errors=True)


def _complete_steps(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    steps = []
    for child in root.iterdir():
        match = STEP_DIR.match(child.name)
        if match and (child / "COMPLETE").exists():
            steps.append(int(match.group(1)))
    return steps


def latest(out: Path, *, step: int | None = None, warn: bool = True) -> Checkpoint | None:
    """The newest complete, readable checkpoint (or the one of ``step``). A corrupt one is
    named in a warning and the one before it is used."""
    root = checkpoint_root(out)
    candidates = sorted(_complete_steps(root), reverse=True)
    if step is not None:
        if step not in candidates:
            raise CheckpointError(f"No complete checkpoint for step {step} in {root}. Available: {sorted(candidates) or 'none'}.")
        candidates = [step]
    for n in candidates:
        path = root / f"step-{n}"
        try:
            state = json.loads((path / "state.json").read_text())
            missing = [p for p in ("model/config.json", "deepspeed") if not (path / p).exists()]
            if missing or state.get("step") != n:
                raise ValueError(f"missing {missing}" if missing else f"state.json says step {state.get('step')}")
            return Checkpoint(path, n, state)
        except (OSError, ValueError) as exc:
            if step is not None:
                raise CheckpointError(f"Checkpoint {path} is corrupt ({exc}).") from exc
            if warn:
                warnings.warn(f"Checkpoint {path} is corrupt ({exc}); using the one before it.", stacklevel=2)
    return None


def rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(path: Path) -> None:
    import torch

    file = path / f"rng-rank{dist.rank()}.pt"
    if not file.exists():
        raise CheckpointError(
            f"{file} is missing: this checkpoint was written by fewer ranks than this run has. "
            "Resume with the same number of processes."
        )
    state = torch.load(file, weights_only=False)
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def truncate_jsonl(path: Path, before_step: int) -> None:
    """Keep the lines of steps < ``before_step``; drop later ones and a torn last line, so a
    resumed run neither loses nor duplicates a record."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", before_step) < before_step:
            kept.append(line)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def check_disk_space(out: Path, needed_bytes: int) -> None:
    """Fail before training when the output disk cannot hold a checkpoint."""
    free = shutil.disk_usage(out).free
    if free < needed_bytes:
        raise CheckpointError(
            f"Only {free / 2**30:.2f} GiB free under {out}; a checkpoint of this model needs about "
            f"{needed_bytes / 2**30:.2f} GiB. Free space, or choose another output_dir=... ."
        )
