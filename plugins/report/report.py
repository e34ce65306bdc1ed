"""``vzframe report OUTPUT_DIR``: one self-contained HTML page about one run.

Curves (the game's declared metrics, headline first, rewards and baselines per role, loss, KL,
the scheduler's own statistics) with the phases shaded,
the phase timeline with its switch points, the final figures, the held-out evaluation tables
when ``vzframe eval`` has run, the transfer probes' accuracy over checkpoints when ``vzframe
probe`` has, the league's ratings when ``vzframe league`` has, and browsable transcripts of
the games of a chosen subset of steps, with the pictures each player saw.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from plugins.league.league import league_html
from plugins.report.charts import companions, figures_table, metric_charts, run_segments, series, switch_text, y_range_for
from plugins.report.page import esc, page, printable, warnings_box
from plugins.report.results import evals_html
from plugins.report.runs import Run, load_run
from plugins.report.svg import LINE_COLORS, Segment, line_chart, phase_colors, timeline
from plugins.report.transcripts import ImageStore, choose_steps, collect_games, parse_steps, render_step, role_classes
from plugins.report.transfer import probes_html
from vzframe.config import ConfigError

SCRIPT = """
(function () {
  var select = document.getElementById('step-select');
  var stage = document.getElementById('stage-select');
  if (!select) return;
  var steps = Array.prototype.slice.call(document.querySelectorAll('details.step'));
  function show() {
    var v = select.value;
    steps.forEach(function (d) {
      var on = v === 'all' || d.dataset.step === v;
      d.hidden = !on;
      if (on && v !== 'all') d.open = true;
    });
    var s = stage.value;
    document.querySelectorAll('table.turns tbody tr').forEach(function (tr) {
      tr.hidden = !(s === 'all' || tr.dataset.stage === s);
    });
  }
  function move(delta) {
    var i = Math.min(Math.max(select.selectedIndex + delta, 1), select.options.length - 1);
    select.selectedIndex = i;
    show();
  }
  function openAll(open) { steps.forEach(function (d) { d.open = open; }); }
  select.addEventListener('change', show);
  stage.addEventListener('change', show);
  document.getElementById('step-prev').addEventListener('click', function () { move(-1); });
  document.getElementById('step-next').addEventListener('click', function () { move(1); });
  document.getElementById('open-all').addEventListener('click', function () { openAll(true); });
  document.getElementById('close-all').addEventListener('click', function () { openAll(false); });
  window.addEventListener('hashchange', function () {
    var d = document.getElementById(location.hash.slice(1));
    if (d && d.tagName === 'DETAILS') { select.value = 'all'; show(); d.open = true; }
  });
})();
"""


def build_report(run: Run, *, max_games: int = 40, steps: str = "", image_px: int = 160) -> str:
    """The report page of ``run`` as HTML text."""
    wanted = parse_steps(steps) if steps else None  # first, so a bad --steps fails at once
    colors = phase_colors(run.phases)
    segs = run_segments(run)
    charts = [_chart(run, title, keys, segs, colors) for title, keys in metric_charts(run)]
    charts_html = "".join(f'<div class="card">{c}</div>' for c in charts if c)

    games_per_step = int(run.config.get("games_per_step") or 1)
    shown = choose_steps(run, wanted, max_games, games_per_step)
    games = collect_games(run, shown, max_games)
    images = ImageStore(run.path / "images", image_px)
    transcripts = _transcripts(run, shown, games, images)
    results = evals_html(run.evals) + probes_html(run)  # before the warnings box: a bad file warns

    meta = run.meta
    header = (
        f'<div class="meta">{esc(run.path)} · game <b>{esc(run.game)}</b> · scheduler <b>{esc(run.scheduler)}</b> · '
        f"{len(run.metrics)} steps (last {run.steps[-1]}) · model {esc(run.model)} · "
        f"seed {esc(run.config.get('seed', '?'))} · vzframe {esc(meta.get('version', '?'))}</div>"
    )
    body = (
        warnings_box(run.warnings)
        + "<h2>Final figures</h2>"
        + figures_table([run], 10)
        + "<h2>Phases</h2>"
        + f'<div class="card">{timeline([("", segs)], colors=colors)}</div>'
        + f'<p class="switches">{switch_text(run)}</p>'
        + f'<h2>Curves</h2><div class="grid">{charts_html}</div>'
        + results
        + league_html(run.path)
        + transcripts
    )
    phase_css = "\n".join(f".pager a.ph{i} {{ background: {c}; }}" for i, c in enumerate(colors.values()))
    return page(f"vzframe report: {run.path.name}", body, header=header, styles=[phase_css, images.stylesheet()], script=SCRIPT if shown else "")


def _chart(run: Run, title: str, keys: list[str], segs: list[Segment], colors: dict[str, str]) -> str:
    """One chart of ``keys``; the scheduler's statistics about the first (its EMA) dashed."""
    about = companions(run, keys[0])
    lines = [series(run, k, color=LINE_COLORS[i % len(LINE_COLORS)], dashed=k in about) for i, k in enumerate(keys)]
    return line_chart(title, lines, y_range=y_range_for([run], keys), phases=segs, colors=colors)


def _transcripts(run: Run, shown: list[int], games: dict[int, list[dict]], images: ImageStore) -> str:
    total = len(run.metrics)
    if not shown:
        return '<h2>Game transcripts</h2><p class="note">No transcripts embedded (--max-games 0, or no step chosen).</p>'
    rows = {row["step"]: row for row in run.metrics}
    roles = role_classes(g for gs in games.values() for g in gs)
    phase_index = {p: i for i, p in enumerate(sorted(set(run.phases)))}
    n_games = sum(len(g) for g in games.values())
    links = "".join(
        f'<a href="#step-{s}" class="ph{phase_index.get(str(rows[s].get("phase", "unknown")), 0)}" title="{esc(rows[s].get("phase", ""))}">{s}</a>'
        for s in shown
    )
    options = "".join(f'<option value="{s}">step {s}</option>' for s in shown)
    stages = sorted({str(t.get("stage", "")) for gs in games.values() for g in gs for t in g.get("turns") or [] if isinstance(t, dict)})
    stage_options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in stages)
    pager = (
        '<div class="pager"><button id="step-prev" type="button">◀</button>'
        f'<select id="step-select"><option value="all">all shown steps</option>{options}</select>'
        '<button id="step-next" type="button">▶</button>'
        f'<select id="stage-select"><option value="all">all stages</option>{stage_options}</select>'
        '<button id="open-all" type="button">expand all</button><button id="close-all" type="button">collapse all</button></div>'
        f'<div class="pager">{links}</div>'
    )
    headline = {m: d.label for m, d in run.declared.items() if d.headline}
    steps_html = "".join(
        render_step(s, rows[s], games.get(s, []), images, roles, open_=(i == 0), headline=headline) for i, s in enumerate(shown)
    )
    marked = any(isinstance(t, dict) and "trained" in t for gs in games.values() for g in gs for t in g.get("turns") or [])
    note = (
        f'<p class="note">{n_games} games from {len(shown)} of {total} steps '
        "(choose with <code>--steps 0,10,20-25</code> and <code>--max-games N</code>). "
        "Model output is shown as text, exactly as generated; control characters appear as ␀-style symbols."
        + (
            ' Turns marked <span class="trained-mark">trained</span> are those the step trained on (its phase\'s stage); '
            "the other turns' rewards and advantages, in grey italics, were computed but not trained on."
            if marked
            else ""
        )
        + "</p>"
    )
    return "<h2>Game transcripts</h2>" + note + pager + steps_html


def cmd_report(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    run = load_run(args.output_dir)
    if args.max_games < 0:
        raise ConfigError(f"--max-games must be >= 0; got {args.max_games}")
    if args.image_size < 16:
        raise ConfigError(f"--image-size must be at least 16 pixels; got {args.image_size}")
    html = build_report(run, max_games=args.max_games, steps=args.steps or "", image_px=args.image_size)
    out = Path(args.out) if args.out else run.path / "report.html"
    write_html(out, html)
    print(f"Report written to {printable(out)} ({len(html.encode('utf-8')) / 1024:.0f} KiB, {time.perf_counter() - start:.2f} s)")
    return 0


def write_html(out: Path, html: str) -> None:
    """Write the page, turning an unwritable destination into a clear error."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot write {str(out)!r}: {exc.strerror or exc}. Choose another path with --out.") from None

