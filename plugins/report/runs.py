"""Reading a run directory back: ``config.yaml``, ``metrics.jsonl`` and ``episodes*.jsonl``
(and, through ``results`` and ``transfer``, its ``eval-step-N.json`` and ``probe-step-N.json``).

A run may still be going, or may have been killed mid-write: a line that is not valid JSON
is skipped with a warning, never a crash. Metrics are kept one row per step (the last row
written for a step wins), in step order.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from plugins.report.page import printable
from vzframe.config import ConfigError

if TYPE_CHECKING:
    from plugins.report.results import EvalFile
    from plugins.report.transfer import ProbeFile

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Declared:
    """A metric as the run's game declared it (``Metric`` in vzframe.types)."""

    label: str
    headline: bool


LEGACY_METRICS = {
    "acc": Declared("vote accuracy", True),
    "na": Declared("N/A rate", True),
    "spy_caught": Declared("spy caught", True),
    "invalid": Declared("invalid votes", False),
    "clue_valid": Declared("valid clues", False),
}
"""What a run folder written before games declared their metrics (no ``metrics`` in its
config.yaml metadata) is read as: the spy game's metrics, those its metrics.jsonl has."""

NOT_SCHEDULER = frozenset({"step", "phase", "loss", "kl", "grad_norm", "lr", "samples", "gen_tokens", "tokens_per_s"})
NOT_SCHEDULER_PREFIXES = ("reward_", "baseline_", "time_")
"""Keys of a metrics.jsonl row that are the loop's own: the rest, less the game's declared
metrics, are the scheduler's statistics (and any other plugin's ``collect_metrics``)."""


def warn_stderr(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr)


def read_jsonl(path: Path, warn: Warn) -> Iterator[dict[str, Any]]:
    """The JSON objects of ``path``, one per line, streamed. A line that does not parse is
    skipped with a warning: without a trailing newline it is a truncated last line (the run
    was killed mid-write), otherwise a corrupt line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if not line.endswith("\n"):
                    warn(f"{path}: skipped a truncated last line (line {number}; was the run killed mid-write?)")
                else:
                    warn(f"{path}: skipped line {number}, which is not valid JSON")
                continue
            if not isinstance(row, dict):
                warn(f"{path}: skipped line {number}, which is not a JSON object")
                continue
            yield row


def as_float(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, text, NaN, infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class Run:
    """One run directory, read back. ``metrics`` has one row per step, in step order (set by
    ``load_run`` before any of the derived properties below is read; they are cached)."""

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def scheduler(self) -> str:
        return str(self.meta.get("scheduler") or "unknown")

    @property
    def game(self) -> str:
        return str(self.meta.get("game") or "unknown")

    @property
    def meta(self) -> dict[str, Any]:
        """The ``vzframe:`` metadata of config.yaml (names, versions, roles, metrics)."""
        meta = self.config.get("vzframe")
        return meta if isinstance(meta, dict) else {}

    @property
    def model(self) -> str:
        """The model the run trained, as it recorded it (older runs: their ``model`` setting)."""
        model = self.meta.get("model") or self.config.get("model")
        return str(model) if model else "not recorded"

    @cached_property
    def declared(self) -> dict[str, Declared]:
        """The game's declared metrics, headline ones first (declaration order within each);
        for a run folder without a declaration, the spy game's that metrics.jsonl holds."""
        found: dict[str, Declared] = {}
        metrics = self.meta.get("metrics")
        if isinstance(metrics, dict):
            for name, d in metrics.items():
                d = d if isinstance(d, dict) else {}
                found[str(name)] = Declared(str(d.get("label") or name), d.get("headline") is True)
        else:
            found = {name: d for name, d in LEGACY_METRICS.items() if any(name in row for row in self.metrics)}
        return dict(sorted(found.items(), key=lambda item: not item[1].headline))

    def metric_label(self, key: str) -> str:
        """A metric's label: its declared one, ``citizen`` for ``reward_citizen``, else the key."""
        if key in self.declared:
            return self.declared[key].label
        for prefix in ("reward_", "baseline_"):
            if key.startswith(prefix):
                return key.removeprefix(prefix)
        return key

    @property
    def roles(self) -> list[str]:
        """The game's role names in its own order (older runs: those in the logs, sorted)."""
        roles = self.meta.get("roles")
        if isinstance(roles, list) and roles:
            return [str(r) for r in roles]
        return sorted({k.split("_", 1)[1] for k in self.keys("reward_") + self.keys("baseline_")})

    @cached_property
    def scheduler_stats(self) -> list[str]:
        """The scheduler's own statistics in metrics.jsonl, in the order it logs them: the
        metadata's ``scheduler_metrics`` if recorded, else every key that is neither the loop's
        (``NOT_SCHEDULER``) nor a declared game metric."""
        listed = self.meta.get("scheduler_metrics")
        if isinstance(listed, list):
            return [str(k) for k in listed]
        declared = self.declared
        keys = dict.fromkeys(k for row in self.metrics for k in row)
        return [k for k in keys if k not in NOT_SCHEDULER and k not in declared and not k.startswith(NOT_SCHEDULER_PREFIXES)]

    @property
    def steps(self) -> list[int]:
        return [row["step"] for row in self.metrics]

    @property
    def phases(self) -> list[str]:
        return [str(row.get("phase", "unknown")) for row in self.metrics]

    def keys(self, prefix: str) -> list[str]:
        """Metric keys starting with ``prefix`` (e.g. every ``reward_<role>``), sorted."""
        return sorted({k for row in self.metrics for k in row if k.startswith(prefix)})

    def values(self, key: str) -> list[float | None]:
        return [as_float(row.get(key)) for row in self.metrics]

    def has(self, key: str) -> bool:
        return any(v is not None for v in self.values(key))

    def episode_files(self) -> list[Path]:
        """``episodes.jsonl`` (rank 0) first, then the other ranks' files."""
        main = self.path / "episodes.jsonl"
        others = sorted(self.path.glob("episodes.rank*.jsonl"))
        return ([main] if main.exists() else []) + others

    def episodes(self) -> Iterator[dict[str, Any]]:
        """Every recorded game, streamed (episode files can be large)."""
        for path in self.episode_files():
            yield from read_jsonl(path, self.warn)

    @cached_property
    def evals(self) -> list[EvalFile]:
        """The run's held-out evaluations (``eval-step-N.json``), newest step first; a file
        that cannot be read is skipped with a warning."""
        from plugins.report.results import read_evals

        return read_evals(self.path, self.warn)

    @cached_property
    def probe_files(self) -> list[ProbeFile]:
        """The run's probe results (``probe-step-N.json``), by step; a file that cannot be
        read is skipped with a warning."""
        from plugins.report.transfer import read_probes

        return read_probes(self.path, self.warn)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warn_stderr(message)


def load_run(directory: str | Path) -> Run:
    """Read a run directory; fails with a ConfigError that says what is wrong."""
    path = Path(directory).expanduser()
    if not path.exists():
        raise ConfigError(f"Run directory {str(path)!r} does not exist. Give the output_dir of a `vzframe run`.")
    if not path.is_dir():
        raise ConfigError(f"{str(path)!r} is not a directory. Give the output_dir of a `vzframe run`.")
    if not (path / "metrics.jsonl").is_file():
        raise ConfigError(
            f"{str(path)!r} has no metrics.jsonl, so it is not a vzframe run directory "
            "(or its run has not finished a step yet). Give the output_dir of a `vzframe run`."
        )
    run = Run(path=path.resolve(), config={}, metrics=[])
    config_path = path / "config.yaml"
    if config_path.is_file():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8", errors="replace"))
            run.config = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError as exc:
            run.warn(f"{config_path}: could not be read ({type(exc).__name__}); the scheduler is shown as unknown")
    else:
        run.warn(f"{path}: no config.yaml; the scheduler is shown as unknown")
    by_step: dict[int, dict[str, Any]] = {}
    for index, row in enumerate(read_jsonl(path / "metrics.jsonl", run.warn)):
        step = row.get("step", index)
        if isinstance(step, bool) or not isinstance(step, int):
            run.warn(f"{path / 'metrics.jsonl'}: skipped a row whose step is {step!r}")
            continue
        by_step[step] = {**row, "step": step}
    if not by_step:
        raise ConfigError(f"{str(path / 'metrics.jsonl')!r} holds no complete step yet; run a step first.")
    run.metrics = [by_step[s] for s in sorted(by_step)]
    run.label = f"{path.resolve().name} ({run.scheduler})"
    return run


def label_runs(runs: Sequence[Run]) -> None:
    """Label runs "DIR (scheduler)"; where two labels collide, use "PARENT/DIR" and then a number."""
    short = [f"{run.path.name} ({run.scheduler})" for run in runs]
    for run, label in zip(runs, short):
        run.label = label if short.count(label) == 1 else f"{run.path.parent.name}/{run.path.name} ({run.scheduler})"
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} #{seen[run.label]}"


@dataclass(frozen=True)
class Switch:
    """The phase changed: ``step`` is the first step trained in ``new``."""

    step: int
    old: str
    new: str


def switches(run: Run) -> list[Switch]:
    phases, steps = run.phases, run.steps
    return [Switch(steps[i], phases[i - 1], phases[i]) for i in range(1, len(phases)) if phases[i] != phases[i - 1]]


def final_figures(run: Run, key: str, last_n: int) -> tuple[float | None, float | None]:
    """(value at the last step, mean over the last ``last_n`` steps), ignoring missing values."""
    values = run.values(key)
    last = values[-1] if values else None
    tail = [v for v in values[-last_n:] if v is not None]
    return last, (sum(tail) / len(tail) if tail else None)
