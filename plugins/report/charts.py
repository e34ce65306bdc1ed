"""From runs to pictures and tables: the phase segments of a run, the curves of a metric,
and the table of final figures. Shared by ``report`` (one run) and ``compare`` (several)."""

from __future__ import annotations

from collections.abc import Sequence

from plugins.report.page import esc, fmt, table
from plugins.report.runs import Run, final_figures, switches
from plugins.report.svg import LINE_COLORS, Segment, Series, segments

RATE = (0.0, 1.0)
"""The y range of rates (accuracy, N/A), so runs and steps compare at a glance."""


def run_segments(run: Run) -> list[Segment]:
    return segments(run.steps, run.phases)


def series(run: Run, key: str, *, name: str | None = None, color: str = LINE_COLORS[0], dashed: bool = False) -> Series:
    return Series(name or run.metric_label(key), run.steps, run.values(key), color, dashed)


def companions(run: Run, metric: str) -> list[str]:
    """The scheduler's statistics about a game metric, by name: ``acc_ema`` for ``acc``."""
    return [k for k in run.scheduler_stats if k.startswith(f"{metric}_") and run.has(k)]


def y_range_for(runs: Sequence[Run], keys: Sequence[str]) -> tuple[float, float] | None:
    """0 to 1 for game metrics (and the scheduler's statistics about them) whose values are all
    rates, so runs and steps compare at a glance; else None (fitted to the data)."""
    def rate(run: Run, key: str) -> bool:
        about = key in run.declared or any(key in companions(run, m) for m in run.declared)
        return about and all(v is None or 0 <= v <= 1 for v in run.values(key))

    return RATE if keys and all(rate(run, k) for run in runs for k in keys) else None


def title(text: str) -> str:
    """A label as a chart title: its first letter capitalised (``N/A rate`` stays)."""
    return text[:1].upper() + text[1:]


def metric_charts(run: Run) -> list[tuple[str, list[str]]]:
    """The report's charts as (title, metric keys), only those the run has: each game metric
    the scheduler keeps a statistic about (its EMA, dashed) on its own, then the game's other
    declared metrics (headline first) as "Game outcomes", rewards and baselines per role, loss,
    KL, and the scheduler's remaining statistics. For the spy game: Vote accuracy, N/A rate,
    Game outcomes (spy caught, invalid votes, valid clues), ..."""
    declared = [m for m in run.declared if run.has(m)]
    alone = [m for m in declared if companions(run, m)]
    drawn = {k for m in alone for k in companions(run, m)}
    charts = [(title(run.metric_label(m)), [m, *companions(run, m)]) for m in alone]
    charts.append(("Game outcomes", [m for m in declared if m not in alone]))
    charts.append(("Reward per role", role_keys(run, "reward_")))
    charts.append(("Baseline per role", role_keys(run, "baseline_")))
    charts += [("Loss", ["loss"]), ("KL to the reference model", ["kl"])]
    stats_title = "Scheduler statistics" if "scheduler_metrics" in run.meta else "Other logged statistics"
    charts.append((stats_title, [k for k in run.scheduler_stats if k not in drawn]))
    return [(t, [k for k in keys if run.has(k)]) for t, keys in charts if any(run.has(k) for k in keys)]


def role_keys(run: Run, prefix: str) -> list[str]:
    """``reward_ROLE`` keys in the game's role order, then any others the run logged."""
    found = run.keys(prefix)
    ordered = [f"{prefix}{role}" for role in run.roles if f"{prefix}{role}" in found]
    return ordered + [k for k in found if k not in ordered]


def figure_keys(runs: Sequence[Run]) -> list[str]:
    """The metrics of the final-figures table, those present in at least one run: the game's
    headline metrics, the reward per role, loss and KL."""
    keys = [m for run in runs for m, d in run.declared.items() if d.headline]
    keys += [k for run in runs for k in role_keys(run, "reward_")]
    keys += ["loss", "kl"]
    return [k for k in dict.fromkeys(keys) if any(run.has(k) for run in runs)]


def figures_table(runs: Sequence[Run], last_n: int) -> str:
    """One row per run: label, scheduler, steps, then each metric's last value and its
    mean over the last ``last_n`` steps."""
    keys = figure_keys(runs)
    headers = ["run", "scheduler", "steps"] + [h for _ in keys for h in ("last", f"mean last {last_n}")]
    groups = [("", 3)] + [(esc(header(runs, k)), 2) for k in keys]
    rows = []
    for run in runs:
        cells = [esc(run.label), esc(run.scheduler), str(len(run.metrics))]
        for key in keys:
            last, mean = final_figures(run, key, last_n)
            cells += [fmt(last), fmt(mean)]
        rows.append(cells)
    return table(headers, rows, group_headers=groups)


def header(runs: Sequence[Run], key: str) -> str:
    """A figures-table heading: the metric's label, ``reward: citizen`` for a role's reward."""
    if key.startswith("reward_"):
        return f"reward: {key.removeprefix('reward_')}"
    return next((run.metric_label(key) for run in runs if key in run.declared), key)


def switch_text(run: Run, limit: int = 24) -> str:
    """"decision → clue at step 3, ..." (HTML), at most ``limit`` switches named."""
    found = switches(run)
    if not found:
        phase = run.phases[0] if run.phases else "unknown"
        return f"No phase switch: every step trained <b>{esc(phase)}</b>."
    shown = ", ".join(f"step {s.step}: {esc(s.old)} → {esc(s.new)}" for s in found[:limit])
    more = f", and {len(found) - limit} more" if len(found) > limit else ""
    return f"{len(found)} switch{'es' if len(found) != 1 else ''} (first step of the new phase): {shown}{more}."
