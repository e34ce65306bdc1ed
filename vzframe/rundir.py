"""The run folder: claiming it, writing its config and logs, cutting logs back on resume.

A run folder belongs to one live process at a time: ``claim`` takes an exclusive lock on
``OUTPUT_DIR/.lock`` (held until the process ends) and refuses a folder that holds anything
but the run being resumed. Everything a run writes here is data (YAML, JSON lines, PNG,
safetensors); nothing read back from it may execute code (docs/security.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from vzframe import __version__, dist
from vzframe.config import METADATA_KEY, ConfigError

LOCK = ".lock"
CUT = "cut"
"""Sub-folder where ``resume`` keeps the log lines it removed (written after the restored step)."""


class RunLock:
    """An exclusive, advisory lock on ``OUTPUT_DIR/.lock`` for the life of a run (rank 0 only:
    the other ranks belong to the same run). The OS releases it when the process dies."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(
                f"{self.path.parent} is in use by {holder} (a `vzframe run` or `resume` still going). "
                "Wait for it to finish or stop it, or choose another output_dir=... ."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim(out: Path, *, resume: bool) -> RunLock:
    """Create ``out``, lock it, and check it may be written: a new run needs an empty folder,
    a resumed one a folder holding a run. Returns the held lock (a no-op lock on ranks > 0)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.rank{dist.rank()}"  # one per rank: ranks probe at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"Cannot write to output_dir {str(out)!r}: {exc.strerror}. Choose a writable output_dir=... .") from None
    lock = RunLock(out)
    if dist.rank() != 0:
        return lock
    lock.acquire()
    try:
        contents = sorted(p.name for p in out.iterdir() if p.name != LOCK and not p.name.startswith(".write-test."))
        if resume and not (out / "config.yaml").is_file():
            raise ConfigError(f"{out} holds no run (no config.yaml). Give the output_dir of a `vzframe run`.")
        if not resume and (out / "config.yaml").is_file():
            raise ConfigError(f"{out} already holds a run. Continue it with `vzframe resume {out}`, or choose another output_dir=... .")
        if not resume and contents:
            shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
            raise ConfigError(f"output_dir {out} is not empty ({shown}). Choose a new or empty output_dir=... .")
    except BaseException:
        lock.release()
        raise
    return lock


def write_config(out: Path, config: Any, meta: dict[str, Any]) -> None:
    """Write the fully resolved config as ``config.yaml`` (atomically; rank 0)."""
    if dist.rank() != 0:
        return
    body = {METADATA_KEY: {"version": __version__, **meta}, **config.model_dump(mode="json")}
    tmp = out / "config.yaml.tmp"
    tmp.write_text(
        f"# vzframe {__version__}: the fully resolved config of this run.\n"
        f"# Run it again with: vzframe run --config {out / 'config.yaml'} output_dir=NEW_DIR\n"
        + yaml.safe_dump(body, sort_keys=False)
    )
    os.replace(tmp, out / "config.yaml")


def cut_logs(out: Path, start: int) -> int:
    """Remove the log lines of steps >= ``start`` (written after the restored checkpoint) and
    a torn last line; they are kept in ``OUTPUT_DIR/cut/``. Returns how many lines moved."""
    moved = 0
    if dist.rank() == 0:
        for path in [out / "metrics.jsonl", *sorted(out.glob("episodes*.jsonl"))]:
            moved += truncate_jsonl(path, start, cut_dir=out / CUT)
    dist.barrier()
    return moved


def _split_jsonl(path: Path, before_step: int) -> Iterator[tuple[bool, str]]:
    """(keep, line) for each line: records of steps < ``before_step`` are kept; later ones and
    torn lines are not."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            try:
                record = json.loads(line)
                keep = isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] < before_step
            except ValueError:
                keep = False
            yield keep, line


def truncate_jsonl(path: Path, before_step: int, *, cut_dir: Path | None = None) -> int:
    """Keep the lines of steps < ``before_step`` so a resumed run neither loses nor duplicates
    a record. The lines removed (later steps, a torn last line) are first appended to
    ``cut_dir/NAME``, so nothing is lost. Returns how many lines were removed."""
    if not path.exists():
        return 0
    kept: list[str] = []
    cut: list[str] = []
    for keep, line in _split_jsonl(path, before_step):
        (kept if keep else cut).append(line)
    if not cut:
        return 0
    if cut_dir is not None:
        cut_dir.mkdir(exist_ok=True)
        with open(cut_dir / path.name, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(line + "\n" for line in cut))
            f.flush()
            os.fsync(f.fileno())
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)
    return len(cut)


def write_step(out: Path, step: int, phase: str, metrics: dict[str, Any], episodes: list[Any]) -> None:
    """Append this step's metrics (rank 0) and episodes (each rank its own file)."""
    rank = dist.rank()
    name = "episodes.jsonl" if rank == 0 else f"episodes.rank{rank}.jsonl"
    with open(out / name, "a") as f:
        for ep in episodes:
            f.write(json.dumps({"step": step, "phase": phase, "rank": rank, **ep.to_dict()}) + "\n")
    if rank == 0:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")


def image_filename(image_id: str) -> str:
    """File name under ``OUTPUT_DIR/images/`` of the picture with this id (ids are free text,
    even lone surrogates from a file name that is not UTF-8: ``surrogatepass`` hashes them and
    leaves every other id's name as it always was).

    >>> image_filename("folder:a b.png"), image_filename("folder:\\udcff.png")
    ('folder_a_b.png-10bec4cc.png', 'folder_.png-b48a5997.png')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)[:80]
    return f"{safe}-{hashlib.sha1(image_id.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}.png"


def save_images(out: Path, observations: Iterable[Any]) -> None:
    """Write each picture a player saw once, so reports can show what every player saw."""
    folder = out / "images"
    folder.mkdir(exist_ok=True)
    unique = {item.id: item for obs in observations for item in obs.images}
    for item in unique.values():
        path = folder / image_filename(item.id)
        if not path.exists():
            tmp = path.with_suffix(f".tmp{dist.rank()}")
            item.image.save(tmp, format="PNG")
            os.replace(tmp, path)
