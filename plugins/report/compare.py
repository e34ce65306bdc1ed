"""``vzframe compare RUN_DIR...``: several runs on one page, e.g. one seed under each
scheduler. Their curves overlaid (the game's headline metrics with the scheduler's EMAs of them,
rewards per role, loss, KL, then the game's other metrics and the schedulers' own statistics),
their phase timelines stacked, a table of final figures, and the transfer probes of the runs that
have ``probe-step-N.json`` files (a chart per probe, a line per run). Optionally a PNG, through
headless Chromium, and every chart as an SVG file.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from plugins.report.charts import companions, figures_table, role_keys, run_segments, series, title, y_range_for
from plugins.report.page import esc, page, printable, warnings_box
from plugins.report.report import write_html
from plugins.report.runs import Run, label_runs, load_run
from plugins.report.svg import LINE_COLORS, line_chart, phase_colors, timeline
from plugins.report.transfer import compare_probe_charts, compare_probes_html, probe_chart_names
from vzframe.config import ConfigError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def compare_charts(runs: list[Run]) -> dict[str, str]:
    """The comparison's charts as SVG text by file stem: one per curve, then ``phases``, then
    one per probe (``probe-NAME``)."""
    colors = phase_colors(p for run in runs for p in run.phases)
    lo = min(run.steps[0] for run in runs)
    hi = max(run.steps[-1] for run in runs)
    run_color = {id(run): LINE_COLORS[i % len(LINE_COLORS)] for i, run in enumerate(runs)}

    def overlay(title: str, key: str, *, with_companions: bool = False) -> str:
        lines = []
        for run in runs:
            if run.has(key):
                lines.append(series(run, key, name=run.label, color=run_color[id(run)]))
            for stat in companions(run, key) if with_companions else ():
                lines.append(series(run, stat, name=f"{run.label} {stat}", color=run_color[id(run)], dashed=True))
        if not lines:
            return ""
        return line_chart(title, lines, x_range=(lo, hi), y_range=y_range_for(runs, [key]))

    def label_of(key: str) -> str:
        return next((run.metric_label(key) for run in runs if key in run.declared), key)

    declared = list(dict.fromkeys(m for run in runs for m in run.declared))  # headline first within each run
    headline = [m for m in declared if any(m in run.declared and run.declared[m].headline for run in runs)]
    others = [m for m in declared if m not in headline]
    drawn = {s for run in runs for m in declared for s in companions(run, m)}
    stats = [k for k in dict.fromkeys(k for run in runs for k in run.scheduler_stats) if k not in drawn]
    roles = list(dict.fromkeys(k for run in runs for k in role_keys(run, "reward_")))

    def dashed_note(key: str) -> str:
        found = sorted({s.removeprefix(f"{key}_") for run in runs for s in companions(run, key)})
        return f" (dashed: {', '.join(s.upper() if s == 'ema' else s for s in found)})" if found else ""

    charts = {
        **{key: overlay(title(label_of(key)) + dashed_note(key), key, with_companions=True) for key in headline},
        **{key: overlay(f"Reward: {key.removeprefix('reward_')}", key) for key in roles},
        "loss": overlay("Loss", "loss"),
        "kl": overlay("KL to the reference model", "kl"),
        **{key: overlay(title(label_of(key)), key, with_companions=True) for key in others},
        **{key: overlay(f"Scheduler: {key}", key) for key in stats if key not in ("loss", "kl")},
    }
    charts = {name: svg for name, svg in charts.items() if svg}
    charts["phases"] = timeline([(run.label, run_segments(run)) for run in runs], colors=colors, x_range=(lo, hi))
    return {**charts, **compare_probe_charts(runs)}


def build_compare(runs: list[Run], *, last_n: int = 10, charts: dict[str, str] | None = None) -> str:
    """The comparison page of ``runs`` (already labelled) as HTML text."""
    charts = compare_charts(runs) if charts is None else dict(charts)
    probes = {name: charts.pop(name) for name in probe_chart_names(runs) if name in charts}
    stacked = charts.pop("phases")
    transfer = compare_probes_html(runs, probes)  # before the warnings box: a bad file warns
    charts_html = "".join(f'<div class="card">{c}</div>' for c in charts.values())
    warnings = [f"{run.label}: {w}" for run in runs for w in run.warnings]
    listing = "".join(f"<li><b>{esc(run.label)}</b>: {esc(run.path)}</li>" for run in runs)
    body = (
        warnings_box(warnings)
        + f"<h2>Final figures</h2>{figures_table(runs, last_n)}"
        + f'<p class="note">last: the value at each run\'s last step; mean last {last_n}: the mean over its last {last_n} steps.</p>'
        + f'<h2>Phases</h2><div class="card">{stacked}</div>'
        + f'<h2>Curves</h2><div class="grid">{charts_html}</div>'
        + transfer
        + f'<h2>Runs</h2><ul class="note">{listing}</ul>'
    )
    header = f'<div class="meta">{len(runs)} runs · {esc(", ".join(run.label for run in runs))}</div>'
    return page("vzframe compare", body, header=header)


def screenshot(html_path: Path, png_path: Path, *, width: int = 1400, height: int = 2000) -> None:
    """Render ``html_path`` to ``png_path`` with headless Chromium, if one is installed."""
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        raise ConfigError("--png needs Chromium, and none was found (tried " + ", ".join(BROWSERS) + "). On Debian: apt-get install chromium.")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--screenshot={png_path.resolve()}", f"--window-size={width},{height}", html_path.resolve().as_uri(),
        ]  # fmt: skip
        try:
            subprocess.run(command, capture_output=True, timeout=120, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            raise ConfigError(f"Chromium could not render {html_path} to PNG: {exc}") from None
    if not png_path.exists():
        raise ConfigError(f"Chromium ran but wrote no {png_path}.")


def cmd_compare(args: argparse.Namespace) -> int:
    if args.last < 1:
        raise ConfigError(f"--last must be >= 1; got {args.last}")
    runs = [load_run(d) for d in args.run_dirs]
    label_runs(runs)
    charts = compare_charts(runs)
    html = build_compare(runs, last_n=args.last, charts=charts)
    out = Path(args.out)
    write_html(out, html)
    print(f"Comparison of {len(runs)} runs written to {printable(out)} ({len(html.encode('utf-8')) / 1024:.0f} KiB)")
    if args.png:
        screenshot(out, Path(args.png))
        print(f"PNG written to {printable(args.png)}")
    if args.svg:
        folder = Path(args.svg)
        folder.mkdir(parents=True, exist_ok=True)
        for name, svg in charts.items():  # names come from the runs' metric keys: made safe as file names
            (folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.') or '_'}.svg").write_text(standalone_svg(svg))
        print(f"{len(charts)} SVG charts written to {printable(folder)}/ ({', '.join(charts)})")
    return 0


def standalone_svg(svg: str) -> str:
    """An inline ``<svg>`` element (it carries its namespace) as a file of its own."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg

