"""``vzframe export RUN DEST``: a checkpoint's model as a plain Hugging Face directory, checked.

A full run's ``model/`` is copied; a LoRA run's adapters (``train.lora``) are merged into the
base model they were trained on, or copied alone with ``adapter``. The copy is checked before
it replaces ``DEST`` (its config parses, every safetensors header fits its file), so a failed
export leaves ``DEST`` as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from vzframe.checkpoint import Checkpoint, CheckpointError, DamagedCheckpoint, checkpoint_root, latest, read_json


def export(out: Path, dest: Path, *, step: int | None = None, adapter: bool = False) -> Checkpoint:
    """Copy the newest intact checkpoint's ``model/`` (or that of ``step``) to ``dest`` as a
    plain Hugging Face directory, then check the copy: its config parses and every
    safetensors header fits its file. A LoRA run's adapters are merged into their base model,
    or, with ``adapter``, copied as they are (a PEFT adapter directory). On any failure ``dest``
    is left as it was."""
    if dest.exists() and not dest.is_dir():
        raise CheckpointError(f"{dest} is a file; give a new directory as the export destination.")
    if dest.exists() and any(dest.iterdir()):
        raise CheckpointError(f"{dest} exists and is not empty; choose a new directory.")
    ckpt = latest(out, step=step)
    if ckpt is None:
        raise CheckpointError(f"{out} has no checkpoint to export (looked in {checkpoint_root(out)}).")
    source = ckpt.path / "model"
    lora = (source / "adapter_config.json").is_file()
    if adapter and not lora:
        raise CheckpointError(f"{out} trained every weight (no train.lora): it has no adapters; export without --adapter.")
    tmp = dest.with_name(f".{dest.name}.export-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if lora and not adapter:
            _export_merged(source, tmp)
        else:
            shutil.copytree(source, tmp, copy_function=shutil.copyfile)  # modes from umask, not 0600
        check_model_dir(tmp, adapter=adapter)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ckpt


def _export_merged(source: Path, dest: Path) -> None:
    """The base model with ``source``'s adapters merged in, and ``source``'s processor files."""
    from vzframe.config import ConfigError
    from vzframe.train import lora

    try:
        lora.load_merged(source, bf16=False).save_pretrained(dest)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    for file in source.iterdir():
        if file.is_file() and not file.name.startswith("adapter_") and not (dest / file.name).exists():
            shutil.copyfile(file, dest / file.name)


def check_model_dir(folder: Path, *, adapter: bool = False) -> None:
    """A Hugging Face model directory whose config is a JSON object and whose safetensors
    files each have a header that lists tensors lying inside the file (with ``adapter``: a
    PEFT adapter directory, whose ``adapter_config.json`` names its PEFT type)."""
    if adapter:
        config = read_json(folder / "adapter_config.json")
        if not isinstance(config, dict) or not config.get("peft_type"):
            raise DamagedCheckpoint("model/adapter_config.json names no peft_type")
    else:
        config = read_json(folder / "config.json")
        if not isinstance(config, dict) or not config.get("model_type"):
            raise DamagedCheckpoint("model/config.json names no model_type")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise DamagedCheckpoint("model/ holds no .safetensors weights")
    for file in weights:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= min(size - 8, 100 * 2**20):
                raise DamagedCheckpoint(f"{file.name} has no valid safetensors header")
            try:
                header = json.loads(f.read(length))
            except ValueError:
                raise DamagedCheckpoint(f"{file.name} has a malformed safetensors header") from None
        try:
            ends = [int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"]
        except (AttributeError, KeyError, TypeError, IndexError, ValueError):
            raise DamagedCheckpoint(f"{file.name} has a malformed safetensors header") from None
        if not ends or max(ends) != size - 8 - length:
            raise DamagedCheckpoint(f"{file.name} is truncated or padded: its header does not match its {size} bytes")
