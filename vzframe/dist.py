"""Process-group helpers. A single process runs as a world of one; under ``torchrun`` or the
``deepspeed`` launcher the usual environment variables are read."""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

# How many processes share this host, as torchrun, the deepspeed launcher and mpirun say it.
LOCAL_WORLD_VARS = ("LOCAL_WORLD_SIZE", "LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE")


class ThreadPolicy(NamedTuple):
    threads: int
    """Compute threads of each rank (``OMP_NUM_THREADS``)."""
    wait_policy: str
    """What an idle OpenMP thread does (``OMP_WAIT_POLICY``): PASSIVE sleeps, ACTIVE spins,
    empty leaves OpenMP's default (spin a while, then sleep)."""


BUSY_LOAD = 0.5
"""Cores busy with other processes (``busy_cores``) from which, when a run starts, the host
counts as shared: some other process is computing."""


def thread_policy(cpus: int, local_world: int, env: Mapping[str, str], load: float = 0.0) -> ThreadPolicy:
    """Threads per rank: the usable cores split evenly over the ranks on this host. Idle
    threads sleep (``PASSIVE``) when the host is shared: several ranks on it, or a load
    ``load`` of at least ``BUSY_LOAD`` cores busy when the run starts (``busy_cores``). An OpenMP thread spinning
    at a barrier waits for a partner that is not scheduled, so with one of 2 cores taken,
    sleeping threads generated 2.8x faster; on an idle host they cost about a quarter of the
    speed (``bench/busy_core.py``), so there OpenMP's default stays. ``OMP_NUM_THREADS`` and
    ``OMP_WAIT_POLICY`` in ``env`` win: set ``OMP_WAIT_POLICY=PASSIVE`` for a run that others
    will join later.

    >>> thread_policy(16, 8, {})
    ThreadPolicy(threads=2, wait_policy='PASSIVE')
    >>> thread_policy(2, 1, {}), thread_policy(2, 1, {}, load=1.2)
    (ThreadPolicy(threads=2, wait_policy=''), ThreadPolicy(threads=2, wait_policy='PASSIVE'))
    >>> thread_policy(2, 4, {"OMP_WAIT_POLICY": "active"})
    ThreadPolicy(threads=1, wait_policy='active')
    """
    threads = max(1, cpus // max(1, local_world))
    if env.get("OMP_NUM_THREADS", "").strip().isdigit() and int(env["OMP_NUM_THREADS"]) > 0:
        threads = int(env["OMP_NUM_THREADS"])
    shared = local_world > 1 or load >= BUSY_LOAD
    return ThreadPolicy(threads, env.get("OMP_WAIT_POLICY") or ("PASSIVE" if shared else ""))


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_world_size(env: Mapping[str, str] = os.environ) -> int:
    """Processes of this run on this host (1 outside a launcher)."""
    for var in LOCAL_WORLD_VARS:
        if env.get(var, "").isdigit() and int(env[var]) > 0:
            return int(env[var])
    return 1


def busy_cores(sample_s: float = 0.25) -> float:
    """How many cores other processes keep busy now: the share of non-idle CPU time over
    ``sample_s`` seconds in ``/proc/stat``, times the host's cores. This process sleeps
    meanwhile, so it counts only the others. Not the load average: that still remembers a
    job which ended half a minute ago, and would make an idle host look shared. Where
    ``/proc/stat`` is missing, the 1-minute load average stands in."""
    import time

    def sample() -> tuple[int, int, int]:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f.read().splitlines() if line.startswith("cpu")]
        fields = [int(x) for x in lines[0][1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle, len(lines) - 1  # guest time is already in user

    try:
        total0, idle0, cores = sample()
        time.sleep(sample_s)
        total1, idle1, _ = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    elapsed = total1 - total0
    return 0.0 if elapsed <= 0 else cores * (elapsed - (idle1 - idle0)) / elapsed


def configure_threads() -> ThreadPolicy:
    """Apply ``thread_policy`` to this process. OpenMP reads ``OMP_WAIT_POLICY`` once, when
    torch is first imported, so the CLI calls this before anything imports torch; called
    later (``train`` from Python), only the thread count still takes effect, and only when
    the user has not set ``OMP_NUM_THREADS``."""
    load = 0.0
    if local_world_size() == 1 and "OMP_WAIT_POLICY" not in os.environ:  # only then does it matter
        load = busy_cores()
    policy = thread_policy(usable_cpus(), local_world_size(), os.environ, load)
    chosen_here = "OMP_NUM_THREADS" not in os.environ
    os.environ.setdefault("OMP_NUM_THREADS", str(policy.threads))
    if policy.wait_policy:
        os.environ.setdefault("OMP_WAIT_POLICY", policy.wait_policy)
    if chosen_here and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(policy.threads)
    return policy


SOLO_WORLD = "VZFRAME_SOLO_WORLD"
"""Set to the process id of the process that made up a world of one (no launcher)."""


def setup_environment() -> None:
    """Fill in what DeepSpeed needs for a one-process run; pick the CPU accelerator when
    there is no GPU; set the thread policy."""
    configure_threads()
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
    # A world of one made up here is marked with this process's id and port: a vzframe command
    # started by a process that trained in-process inherits that world and its port, which the
    # parent's process group holds, so it makes up its own. A launcher (torchrun, deepspeed)
    # sets its own world and port, which are kept.
    marker = os.environ.get(SOLO_WORLD, "")
    made_up = f"{marker.split(':')[-1]}" == os.environ.get("MASTER_PORT") and os.environ.get("WORLD_SIZE") == "1"
    inherited = made_up and marker.split(":")[0] != str(os.getpid())
    if "RANK" not in os.environ or inherited:
        port = str(_free_port()) if inherited or "MASTER_PORT" not in os.environ else os.environ["MASTER_PORT"]
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_SIZE": "1", "MASTER_PORT": port,
                           SOLO_WORLD: f"{os.getpid()}:{port}"})  # fmt: skip
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")


def init_distributed() -> None:
    """Start DeepSpeed's process group: nccl on a GPU, gloo on the CPU.

    On the CPU accelerator DeepSpeed's comm backend JIT-compiles a C++ shared-memory
    all-reduce op (``deepspeed_shm_comm``) as it starts, which needs a C++ compiler and takes
    half a minute or more. A world of one has no peer to share memory with, so there the build
    is skipped and nothing is compiled. With several ranks the op is built once per
    environment (``TORCH_EXTENSIONS_DIR``, see ``setup_environment``); ranks that start the
    build at once are serialised by torch's lock on the build directory and load the one
    build."""
    import deepspeed
    import torch

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    ds_torch = importlib.import_module("deepspeed.comm.torch")
    build = getattr(ds_torch, "build_shm_op", None)
    if world_size() > 1 or build is None:
        deepspeed.init_distributed(dist_backend=backend)
        return
    setattr(ds_torch, "build_shm_op", lambda: None)
    try:
        deepspeed.init_distributed(dist_backend=backend)
    finally:
        setattr(ds_torch, "build_shm_op", build)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def zero3_sharded(model: object) -> bool:
    """Whether DeepSpeed ZeRO-3 holds ``model``'s parameters as shards (each carries a ``ds_id``):
    then no rank has a whole weight until it gathers one."""
    return any(hasattr(p, "ds_id") for p in model.parameters())  # type: ignore[attr-defined]


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
