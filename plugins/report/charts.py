"""From runs to pictures and tables: the phase segments of a run, the curves of a metric,
and the table of final figures. Shared by ``report`` (one run) and ``compare`` (several)."""

from __future__ import annotations

from collections.abc import Sequence

from plugins.report.page import esc, fmt, table
from plugins.report.runs import Run, final_figures, switches
from plugins.report.svg import LINE_COLORS, Segment, Series, segments

RATE = (0.0, 1.0)
"""The y range of rates (accuracy, N/A), so runs and steps compare at a glance."""
RATE_KEYS = ("acc", "acc_ema", "na", "na_ema", "spy_caught", "invalid", "clue_valid")


def run_segments(run: Run) -> list[Segment]:
    return segments(run.steps, run.phases)


def series(run: Run, key: str, *, name: str | None = None, color: str = LINE_COLORS[0], dashed: bool = False) -> Series:
    return Series(name or key, run.steps, run.values(key), color, dashed)


def y_range_for(keys: Sequence[str]) -> tuple[float, float] | None:
    return RATE if keys and all(k in RATE_KEYS for k in keys) else None


def figure_keys(runs: Sequence[Run]) -> list[str]:
    """The metrics of the final-figures table, those present in at least one run."""
    keys = ["acc", "na", "spy_caught"]
    keys += sorted({k for run in runs for k in run.keys("reward_")})
    keys += ["loss", "kl"]
    return [k for k in keys if any(run.has(k) for run in runs)]


def figures_table(runs: Sequence[Run], last_n: int) -> str:
    """One row per run: label, scheduler, steps, then each metric's last value and its
    mean over the last ``last_n`` steps."""
    keys = figure_keys(runs)
    headers = ["run", "scheduler", "steps"] + [h for _ in keys for h in ("last", f"mean last {last_n}")]
    groups = [("", 3)] + [(esc(k), 2) for k in keys]
    rows = []
    for run in runs:
        cells = [esc(run.label), esc(run.scheduler), str(len(run.metrics))]
        for key in keys:
            last, mean = final_figures(run, key, last_n)
            cells += [fmt(last), fmt(mean)]
        rows.append(cells)
    return table(headers, rows, group_headers=groups)


def switch_text(run: Run, limit: int = 24) -> str:
    """"decision → clue at step 3, ..." (HTML), at most ``limit`` switches named."""
    found = switches(run)
    if not found:
        phase = run.phases[0] if run.phases else "unknown"
        return f"No phase switch: every step trained <b>{esc(phase)}</b>."
    shown = ", ".join(f"step {s.step}: {esc(s.old)} → {esc(s.new)}" for s in found[:limit])
    more = f", and {len(found) - limit} more" if len(found) > limit else ""
    return f"{len(found)} switch{'es' if len(found) != 1 else ''} (first step of the new phase): {shown}{more}."
