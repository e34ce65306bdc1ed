"""Process-group helpers. A single process runs as a world of one; under ``torchrun`` or the
``deepspeed`` launcher the usual environment variables are read."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path


def setup_environment() -> None:
    """Fill in what DeepSpeed needs for a one-process run; pick the CPU accelerator when
    there is no GPU."""
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is reported elsewhere
        has_gpu = False
    if not has_gpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # DeepSpeed JIT-builds its ops into torch's extension cache under one name for every
    # Python environment; one cache per environment stops them rebuilding each other's.
    tag = hashlib.sha1(sys.prefix.encode()).hexdigest()[:8]
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions" / f"vzframe-{tag}"))
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _all_reduce(values: list[float], dtype: str, op: str) -> list[float] | None:
    """All-reduce ``values`` with ``op`` ("SUM" or "MAX"); None in a world of one."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    tensor = torch.tensor(values, dtype=getattr(torch, dtype))
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op))
    return tensor.tolist()


def all_reduce_sum(values: Mapping[str, float]) -> dict[str, float]:
    """Sum each value over ranks (identity in a world of one). Keys must match on every rank."""
    keys = sorted(values)
    summed = _all_reduce([float(values[k]) for k in keys], "float64", "SUM")
    return {k: float(v) for k, v in zip(keys, summed if summed is not None else [values[k] for k in keys])}


def all_reduce_max(value: int) -> int:
    """The largest ``value`` over ranks."""
    reduced = _all_reduce([value], "int64", "MAX")
    return value if reduced is None else int(reduced[0])


def barrier() -> None:
    """Wait for every rank (no-op in a world of one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
