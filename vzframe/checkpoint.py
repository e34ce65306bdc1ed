"""Checkpoints: everything a run needs to continue exactly where it stopped, in formats that
cannot execute code, guarded by a manifest.

``OUTPUT_DIR/checkpoints/step-N/`` (N = steps completed) holds

- ``model/``: the policy in Hugging Face format (safetensors), with its processor (what
  ``vzframe.export`` copies); with ``train.lora``, its adapters (``adapter_model.safetensors``,
  ``adapter_config.json``) instead of the whole model;
- ``deepspeed/``: DeepSpeed's engine state: weights, optimizer, learning-rate schedule. Read
  back with ``torch.load(weights_only=True)`` (``vzframe.train.ds_checkpoint``), never by
  unpickling arbitrary objects;
- ``state.json``: step, phase scheduler, role baselines, image-stream positions;
- ``rng-rank{R}.json``: every random generator of rank R (Python, NumPy, torch) as plain JSON;
- ``MANIFEST.json``: written last: the size and SHA-256 of every other file.

A checkpoint is written under a temporary name and renamed into place, so a run killed while
saving leaves the previous checkpoint untouched. ``latest`` verifies the manifest before it
trusts a checkpoint: a truncated, missing or altered file makes that checkpoint *damaged*, and
the newest intact one before it is used instead. Run folders are untrusted input; see
docs/security.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vzframe import dist

STEP_DIR = re.compile(r"^step-(\d{1,12})$")
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1
MAX_JSON_BYTES = 64 * 2**20
"""state.json, MANIFEST.json and RNG files larger than this are damaged, never parsed."""
REQUIRED = ("state.json",)
MODEL_CONFIGS = ("model/config.json", "model/adapter_config.json")
"""One of these must be listed: a full model's config, or a LoRA run's adapters' (``train.lora``)."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names it and what to do."""


class DamagedCheckpoint(CheckpointError):
    """One checkpoint failed verification or loading; the message says which file and why."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int  # steps completed: training resumes at this step index
    state: dict[str, Any]
    skipped: tuple[str, ...] = ()  # newer checkpoints found damaged, one reason each

    def fallback_note(self) -> str | None:
        """One line naming the damaged checkpoints skipped to reach this one, or None."""
        if not self.skipped:
            return None
        return f"{'; '.join(self.skipped)}. Using {self.path.name} instead."


def checkpoint_root(out: Path) -> Path:
    return Path(out) / "checkpoints"


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def save(out: Path, step: int, trainer: Any, state: dict[str, Any], processor: Any, *, keep_last: int) -> Path:
    """Write checkpoint ``step-{step}`` atomically (all ranks call this), then prune old ones."""
    root = checkpoint_root(out)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    try:
        if dist.rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        dist.barrier()
        trainer.save(tmp)  # collective: DeepSpeed state from every rank, HF model from rank 0
        _write_json(tmp / f"rng-rank{dist.rank()}.json", rng_state())
        dist.barrier()
        if dist.rank() == 0:
            processor.save_pretrained(tmp / "model")
            _write_json(tmp / "state.json", {"step": step, **state})
            write_manifest(tmp, step)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            _prune(root, keep_last)
        dist.barrier()
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        if dist.rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(_write_failure(out, final, exc)) from exc
    return final


def _write_failure(out: Path, final: Path, exc: BaseException) -> str:
    try:
        previous = latest(out)
        kept = f"The previous checkpoint {previous.path.name} is intact." if previous else "No earlier checkpoint exists."
    except CheckpointError:
        kept = "No earlier checkpoint is intact."
    free = shutil.disk_usage(out).free
    reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
    return (
        f"Could not write checkpoint {final} ({reason}; {free / 2**30:.2f} GiB free). The partial checkpoint was "
        f"removed and the logs are intact. {kept} Free disk space or fix permissions, then continue with "
        f"`vzframe resume {out}`."
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1))


def _prune(root: Path, keep_last: int) -> None:
    for path in _step_dirs(root)[keep_last:]:
        shutil.rmtree(path, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` except the manifest, as sorted relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _hashes(folder: Path, names: list[str]) -> list[str]:
    """SHA-256 of each file, several files at once (hashlib releases the GIL)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda name: _sha256(folder / name), names))


def write_manifest(folder: Path, step: int) -> None:
    """Record the size and hash of every file of ``folder``; written last, atomically."""
    names = _files(folder)
    files = {n: {"size": (folder / n).stat().st_size, "sha256": h} for n, h in zip(names, _hashes(folder, names))}
    tmp = folder / (MANIFEST + ".tmp")
    _write_json(tmp, {"format": MANIFEST_FORMAT, "step": step, "files": files})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def _step_of(path: Path) -> int:
    """The step of a checkpoint folder ``step-N`` (``_step_dirs`` lists only such folders)."""
    match = STEP_DIR.match(path.name)
    if match is None:
        raise CheckpointError(f"{path} is not a checkpoint folder (step-N).")
    return int(match.group(1))


def _step_dirs(root: Path) -> list[Path]:
    """``step-N`` directories, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def read_json(path: Path) -> Any:
    """Parse a JSON file of a run folder; any problem is a ``DamagedCheckpoint`` naming it."""
    try:
        if path.is_symlink() or not path.is_file():
            raise DamagedCheckpoint(f"{path.name} is missing")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise DamagedCheckpoint(f"{path.name} is larger than {MAX_JSON_BYTES} bytes")
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise DamagedCheckpoint(f"{path.name} is unreadable ({type(exc).__name__})") from None


def verify(path: Path) -> Checkpoint:
    """Check every file against the manifest, then read state.json. Raises
    ``DamagedCheckpoint`` with the first problem found."""
    step = _step_of(path)
    manifest = read_json(path / MANIFEST)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("format") != MANIFEST_FORMAT or manifest.get("step") != step:
        raise DamagedCheckpoint(f"{MANIFEST} is malformed or names another step")
    missing = [n for n in REQUIRED if n not in files] + ([] if any(n in files for n in MODEL_CONFIGS) else [MODEL_CONFIGS[0]])
    if missing or not any(n.startswith("deepspeed/") for n in files):
        raise DamagedCheckpoint(f"{MANIFEST} lists no {missing[0] if missing else 'deepspeed/ state'}")
    root = path.resolve()
    for name, entry in files.items():
        file = path / name
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise DamagedCheckpoint(f"{MANIFEST} has a malformed entry for {name!r}")
        if file.is_symlink() or not file.resolve().is_relative_to(root) or not file.is_file():
            raise DamagedCheckpoint(f"{name} is missing")
        size = file.stat().st_size
        if size != entry["size"]:
            raise DamagedCheckpoint(f"{name} has {size} bytes, the manifest says {entry['size']}")
    names = list(files)
    for name, digest in zip(names, _hashes(path, names)):
        if digest != files[name]["sha256"]:
            raise DamagedCheckpoint(f"{name} does not match its hash in the manifest")
    state = read_json(path / "state.json")
    if not isinstance(state, dict) or state.get("step") != step:
        raise DamagedCheckpoint("state.json names another step")
    return Checkpoint(path, step, state)


def intact(out: Path) -> list[Checkpoint]:
    """Every checkpoint of the run in ``out`` that verifies against its manifest, oldest first
    (damaged ones are left out)."""
    found = []
    for path in reversed(_step_dirs(checkpoint_root(out))):
        try:
            found.append(verify(path))
        except DamagedCheckpoint:
            continue
    return found


def latest(out: Path, *, step: int | None = None, load: Callable[[Checkpoint], None] | None = None) -> Checkpoint | None:
    """The newest intact checkpoint (or the one of ``step``); None when the run has none.

    Each candidate is verified against its manifest, then given to ``load`` (if any); a
    failure in either makes it damaged and the next older one is tried. The result's
    ``skipped`` names each damaged one with its reason. When checkpoints exist but none is
    intact this raises ``CheckpointError`` (nothing is changed)."""
    root = checkpoint_root(out)
    candidates = _step_dirs(root)
    if step is not None:
        candidates = [p for p in candidates if p.name == f"step-{step}"]
        if not candidates:
            available = sorted(_step_of(p) for p in _step_dirs(root))
            raise CheckpointError(f"No checkpoint for step {step} in {root}. Available: {available or 'none'}.")
    damaged: list[str] = []
    for path in candidates:
        try:
            ckpt = verify(path)
            if load is not None:
                _load_everywhere(load, ckpt)
            return replace(ckpt, skipped=tuple(damaged))
        except DamagedCheckpoint as exc:
            damaged.append(f"checkpoint {path.name} is damaged: {exc}")
    if damaged:
        raise CheckpointError(
            f"No intact checkpoint in {root} ({'; '.join(damaged)}). Nothing was changed. Restore a checkpoint "
            "from a backup, or start a new run with `vzframe run ... output_dir=NEW_DIR`."
        )
    return None


def _load_everywhere(load: Callable[[Checkpoint], None], ckpt: Checkpoint) -> None:
    """Run ``load`` on every rank; if it fails on any, the checkpoint is damaged on all."""
    error: Exception | None = None
    try:
        load(ckpt)
    except DamagedCheckpoint as exc:
        error = exc
    except Exception as exc:  # a file that passed the manifest but does not load
        error = DamagedCheckpoint(f"it does not load ({type(exc).__name__}: {str(exc).strip()[:200]})")
    if dist.all_reduce_max(int(error is not None)):
        raise error or DamagedCheckpoint("it does not load on another rank")


# --------------------------------------------------------------------------------------
# Random generators, as JSON
# --------------------------------------------------------------------------------------
def _b64(tensor: Any) -> str:
    return base64.b64encode(tensor.numpy().tobytes()).decode()


def _bytes_tensor(text: Any) -> Any:
    import torch

    if not isinstance(text, str):
        raise DamagedCheckpoint("an RNG state is not a string")
    return torch.frombuffer(bytearray(base64.b64decode(text, validate=True)), dtype=torch.uint8)


def rng_state() -> dict[str, Any]:
    """Every random generator of this process as plain JSON values."""
    import torch

    version, mt, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": list(mt), "gauss": gauss},
        "numpy": {**numpy, "state": {"key": numpy["state"]["key"].tolist(), "pos": int(numpy["state"]["pos"])}},
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(path: Path) -> None:
    """Set every random generator from ``rng-rank{R}.json``; a malformed file is damage."""
    import torch

    file = path / f"rng-rank{dist.rank()}.json"
    if not file.exists():
        raise DamagedCheckpoint(
            f"{file.name} is missing: this checkpoint was written by fewer ranks than this run has "
            "(resume with the same number of processes)"
        )
    state = read_json(file)
    try:
        py = state["python"]
        random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss"]))
        numpy = state["numpy"]
        key = np.asarray(numpy["state"]["key"], dtype=np.uint32)
        np.random.set_state({**numpy, "state": {"key": key, "pos": int(numpy["state"]["pos"])}})
        torch.set_rng_state(_bytes_tensor(state["torch"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([_bytes_tensor(s) for s in state["cuda"]])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DamagedCheckpoint(f"{file.name} is malformed ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------
# Disk
# --------------------------------------------------------------------------------------
def check_disk_space(out: Path, needed_bytes: int) -> None:
    """Fail before training when the output disk cannot hold a checkpoint."""
    free = shutil.disk_usage(out).free
    if free < needed_bytes:
        raise CheckpointError(
            f"Only {free / 2**30:.2f} GiB free under {out}; a checkpoint of this model needs about "
            f"{needed_bytes / 2**30:.2f} GiB. Free space, or choose another output_dir=... ."
        )


# --------------------------------------------------------------------------------------
# Names that moved
# --------------------------------------------------------------------------------------
_MOVED = {
    "safe_globals": "vzframe.train.ds_checkpoint",
    "safe_checkpoint_engine": "vzframe.train.ds_checkpoint",
    "truncate_jsonl": "vzframe.rundir",
}
"""Public names that used to live here, with the module that owns them now."""


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(
        f"vzframe.checkpoint.{name} moved to {_MOVED[name]}.{name}; import it from there.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(_MOVED[name]), name)
