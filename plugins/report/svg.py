"""Inline SVG charts, drawn in Python: line charts over steps (with the phases shaded
behind the curves) and the phase timeline. Used by both ``report`` and ``compare``.

Every piece of text that reaches the SVG goes through ``esc``; colours and numbers are ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from plugins.report.page import esc, fmt

LINE_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac")
PHASE_COLORS = ("#a0cbe8", "#ffbe7d", "#8cd17d", "#d4a6c8", "#f1ce63", "#fabfd2", "#86bcb6", "#d7b5a6")
MAX_POINTS = 600
"""Longer series are averaged into this many buckets, so a long run's chart stays small."""
MAX_DOTS = 80
"""Series up to this length get a dot per step, with the value as a hover title."""


@dataclass(frozen=True)
class Series:
    """One curve: ``ys[i]`` at step ``xs[i]``; ``None`` leaves a gap."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str
    dashed: bool = False
    errs: Sequence[float | None] = ()
    """One standard error per point, drawn as whiskers (a band for a dashed series) when the
    series has at most MAX_DOTS points; empty for none."""


@dataclass(frozen=True)
class Segment:
    """Consecutive steps ``start..end`` (inclusive) trained in one phase."""

    phase: str
    start: int
    end: int


def segments(steps: Sequence[int], phases: Sequence[str]) -> list[Segment]:
    """Group steps into runs of one phase; a gap in the steps also ends a segment."""
    out: list[Segment] = []
    for step, phase in zip(steps, phases):
        if out and out[-1].phase == phase and out[-1].end == step - 1:
            out[-1] = Segment(phase, out[-1].start, step)
        else:
            out.append(Segment(phase, step, step))
    return out


def phase_colors(names: Iterable[str]) -> dict[str, str]:
    """A fill colour per phase name, by sorted name, so one page colours a phase alike."""
    return {name: PHASE_COLORS[i % len(PHASE_COLORS)] for i, name in enumerate(sorted(set(names)))}


def nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering ``lo..hi`` (about ``count`` of them)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= count)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    digits = max(0, 2 - math.floor(math.log10(step)))  # enough to drop float noise like 0.30000000000000004
    return [round(first + i * step, digits) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _y_range(series: Sequence[Series]) -> tuple[float, float]:
    values = [y for s in series for y in s.ys if y is not None]
    values += [y + sign * e for s in series for y, e in zip(s.ys, _errs(s)) if y is not None and e for sign in (-1, 1)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = max(abs(lo) * 0.1, 1.0 if lo == 0 else 0.0) or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def _downsample(xs: Sequence[float], ys: Sequence[float | None]) -> tuple[list[float], list[float | None]]:
    """At most MAX_POINTS points: the mean x and mean y of equal buckets (gaps stay gaps)."""
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    out_x: list[float] = []
    out_y: list[float | None] = []
    size = len(xs) / MAX_POINTS
    for b in range(MAX_POINTS):
        lo, hi = int(b * size), int((b + 1) * size)
        bucket = [y for y in ys[lo:hi] if y is not None]
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(bucket) / len(bucket) if bucket else None)
    return out_x, out_y


def _legend(items: Sequence[tuple[str, str, bool]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Swatches with names, wrapped to ``width``; returns the SVG and its height."""
    parts, x, y = [], x0, y0
    for name, color, dashed in items:
        label = name if len(name) <= 40 else name[:39] + "…"
        item_w = 26 + 6.6 * len(label) + 14
        if x + item_w > x0 + width and x > x0:
            x, y = x0, y + 16
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 20:.1f}" y2="{y - 4:.1f}" stroke="{color}" stroke-width="2.5"{dash}/>'
            f'<text x="{x + 25:.1f}" y="{y:.1f}" font-size="11" fill="#1f2328"><title>{esc(name)}</title>{esc(label)}</text>'
        )
        x += item_w
    return "".join(parts), (y - y0) + 16 if items else 0.0


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    phases: Sequence[Segment] = (),
    colors: dict[str, str] | None = None,
    width: int = 640,
    height: int = 250,
) -> str:
    """A line chart over steps. ``phases`` are shaded behind the curves (``colors`` by
    phase) with a dashed line at every switch."""
    legend, legend_h = _legend([(s.name, s.color, s.dashed) for s in series], 58, 38, width - 70)
    top, left, right, bottom = 30 + legend_h, 56, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    xs_all = [x for s in series for x in s.xs]
    x0, x1 = x_range or ((min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0))
    x0, x1 = x0 - 0.5, x1 + 0.5  # each step owns a cell one step wide
    if y_range is None:
        y0, y1 = _y_range(series)
    else:  # a fixed range (rates: 0..1) still widens to show values outside it
        values = [y for s in series for y in s.ys if y is not None]
        y0, y1 = min([y_range[0], *values]), max([y_range[1], *values])

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">']
    out.append(f'<text x="{left}" y="18" font-size="14" font-weight="600" fill="#1f2328">{esc(title)}</text>')
    out.append(legend)
    colors = colors or phase_colors(s.phase for s in phases)
    out.append(_phase_bands(phases, colors, px, top, plot_h, x_range=(x0, x1), opacity=0.28))
    boundaries = [px(seg.start - 0.5) for prev, seg in zip(phases, phases[1:]) if prev.phase != seg.phase]
    if boundaries and len(boundaries) <= plot_w / 4:  # denser switch lines would paint the plot grey
        d = "".join(f"M{x:.1f} {top}V{top + plot_h}" for x in boundaries)
        out.append(f'<path d="{d}" stroke="#57606a" stroke-width="1" stroke-dasharray="3 3"/>')
    for tick in nice_ticks(y0, y1, 5):
        y = py(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="0.7"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#57606a">{fmt(tick)}</text>')
    for tick in nice_ticks(x0 + 0.5, x1 - 0.5, 8, integer=True):
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#57606a"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" fill="#57606a">{tick:g}</text>')
    out.append(f'<text x="{left + plot_w}" y="{height - 4}" font-size="11" text-anchor="end" fill="#57606a">step</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#8c959f" stroke-width="0.8"/>')
    for s in series:
        out.append(_curve(s, px, py, (y0, y1)))
    out.append("</svg>")
    return "".join(out)


def _errs(s: Series) -> list[float | None]:
    """The series' standard errors, one per point (None where unknown or not drawn)."""
    if not s.errs or len(s.xs) > MAX_DOTS:
        return [None] * len(s.xs)
    return [e if e is not None and e > 0 and math.isfinite(e) else None for e in s.errs]


def _spread(s: Series, px: Callable[[float], float], py: Callable[[float], float], y_lim: tuple[float, float]) -> str:
    """±1 standard error of ``s``, clipped to ``y_lim``: a band behind a dashed series (a
    reference), whiskers with caps on the points of a solid one."""
    lo_lim, hi_lim = y_lim
    points = [(x, max(y - e, lo_lim), min(y + e, hi_lim)) for x, y, e in zip(s.xs, s.ys, _errs(s)) if y is not None and e is not None]
    if not points:
        return ""
    if s.dashed:
        upper = [f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in points]
        lower = [f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(points)]
        return f'<polygon points="{" ".join(upper + lower)}" fill="{s.color}" fill-opacity="0.14" stroke="none"/>'
    d = "".join(f"M{px(x):.1f} {py(lo):.1f}V{py(hi):.1f}M{px(x) - 3:.1f} {py(lo):.1f}h6M{px(x) - 3:.1f} {py(hi):.1f}h6" for x, lo, hi in points)
    return f'<path class="whiskers" d="{d}" stroke="{s.color}" stroke-width="1.2" fill="none"/>'


def _curve(s: Series, px: Callable[[float], float], py: Callable[[float], float], y_lim: tuple[float, float]) -> str:
    xs, ys = _downsample(s.xs, s.ys)
    path, pen_down = [], False
    for x, y in zip(xs, ys):
        if y is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{px(x):.1f} {py(y):.1f}")
        pen_down = True
    known = [y for y in s.ys if y is not None]
    summary = f"{s.name}: last {fmt(known[-1])}, min {fmt(min(known))}, max {fmt(max(known))}" if known else f"{s.name}: no values"
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    out = [f"<g><title>{esc(summary)}</title>{_spread(s, px, py, y_lim)}"]
    out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{s.color}" stroke-width="{1.6 if s.dashed else 2}"{dash} stroke-linejoin="round"/>')
    if len(s.xs) <= MAX_DOTS and not s.dashed:
        for x, y, e in zip(s.xs, s.ys, _errs(s)):
            if y is not None:
                se = f" ± {fmt(e)}" if e is not None else ""
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.4" fill="{s.color}"><title>{esc(s.name)} at step {x:g}: {fmt(y)}{se}</title></circle>')
    out.append("</g>")
    return "".join(out)


def _phase_bands(
    segs: Sequence[Segment],
    colors: dict[str, str],
    px: Callable[[float], float],
    y: float,
    height: float,
    *,
    x_range: tuple[float, float] | None = None,
    opacity: float = 1.0,
) -> str:
    """A coloured band per segment, with a hover title naming its phase and steps. When
    segments are too narrow to see (a switch every few pixels), each pixel column instead
    shows the share of its steps spent in each phase, stacked, so size stays bounded."""
    if not segs:
        return ""
    lo, hi = x_range or (segs[0].start - 0.5, segs[-1].end + 0.5)
    fill_opacity = f' fill-opacity="{opacity}"' if opacity < 1 else ""
    width = px(hi) - px(lo)
    if len(segs) <= width / 3:
        parts = []
        for seg in segs:
            a, b = px(max(seg.start - 0.5, lo)), px(min(seg.end + 0.5, hi))
            n = seg.end - seg.start + 1
            parts.append(
                f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 0):.1f}" height="{height}" fill="{colors.get(seg.phase, "#ddd")}"{fill_opacity}>'
                f'<title>{esc(seg.phase)}: steps {seg.start}–{seg.end} ({n} step{"s" if n != 1 else ""})</title></rect>'
            )
        return "".join(parts)
    columns = max(1, int(width / 3))  # 3-pixel columns; shares rounded to 10%
    counts: list[dict[str, int]] = [{} for _ in range(columns)]
    for seg in segs:
        for step in range(seg.start, seg.end + 1):
            column = min(columns - 1, max(0, int((step - lo) / (hi - lo) * columns)))
            counts[column][seg.phase] = counts[column].get(seg.phase, 0) + 1
    phases = sorted({seg.phase for seg in segs})
    shares = [tuple(round(c.get(p, 0) / max(1, sum(c.values())), 1) for p in phases) for c in counts]
    parts, first = [], 0
    for column in range(1, columns + 1):
        if column < columns and shares[column] == shares[first]:
            continue
        a, b, offset = px(lo) + first * width / columns, px(lo) + column * width / columns, 0.0
        mix = ", ".join(f"{p} {share:.0%}" for p, share in zip(phases, shares[first]) if share)
        parts.append(f"<g><title>{esc(mix)}</title>")
        for phase, share in zip(phases, shares[first]):
            if share:
                h = share / sum(shares[first]) * height
                parts.append(f'<rect x="{a:.1f}" y="{y + offset:.1f}" width="{b - a:.1f}" height="{h:.1f}" fill="{colors.get(phase, "#ddd")}"{fill_opacity}/>')
                offset += h
        parts.append("</g>")
        first = column
    return "".join(parts)


def timeline(
    rows: Sequence[tuple[str, Sequence[Segment]]],
    *,
    colors: dict[str, str] | None = None,
    x_range: tuple[int, int] | None = None,
    width: int = 1280,
) -> str:
    """The phase of every step, one bar per row (one run each), switch points marked with
    the first step of the new phase. ``rows`` are (label, segments)."""
    all_segments = [seg for _, segs in rows for seg in segs]
    colors = colors or phase_colors(seg.phase for seg in all_segments)
    left = 14 + min(200, 7 * max((len(label) for label, _ in rows), default=0)) if any(label for label, _ in rows) else 14
    right, row_h, bar_h, top = 16, 46, 22, 36
    height = top + row_h * len(rows) + 26
    lo, hi = x_range or ((min(s.start for s in all_segments), max(s.end for s in all_segments)) if all_segments else (0, 1))
    x0, x1 = lo - 0.5, hi + 0.5
    plot_w = width - left - right

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="phase timeline">']
    out.append(f'<text x="{left}" y="16" font-size="14" font-weight="600" fill="#1f2328">Phase timeline</text>')
    x = left + 130
    for name, color in colors.items():
        out.append(f'<rect x="{x}" y="6" width="14" height="12" fill="{color}"/><text x="{x + 19}" y="16" font-size="12" fill="#1f2328">{esc(name)}</text>')
        x += 34 + 7 * len(name)
    for r, (label, segs) in enumerate(rows):
        y = top + r * row_h + 14
        if label:
            short = label if len(label) <= 28 else label[:27] + "…"
            out.append(f'<text x="{left - 8}" y="{y + bar_h / 2 + 4}" font-size="12" text-anchor="end" fill="#1f2328"><title>{esc(label)}</title>{esc(short)}</text>')
        out.append(_phase_bands(segs, colors, px, y, bar_h, x_range=(x0, x1)))
        last_label_x = last_marker_x = -1e9
        for i, seg in enumerate(segs):
            a, b = px(seg.start - 0.5), px(seg.end + 0.5)
            if b - a > 8 * len(seg.phase) + 8:
                out.append(f'<text x="{(a + b) / 2:.1f}" y="{y + bar_h / 2 + 4}" font-size="11" text-anchor="middle" fill="#1f2328">{esc(seg.phase)}</text>')
            if i and segs[i - 1].phase != seg.phase and len(segs) <= plot_w / 3 and a - last_marker_x >= 4:
                out.append(f'<path d="M{a:.1f} {y - 1}l-4 -6h8z" fill="#24292f"/>')
                last_marker_x = a
                if a - last_label_x > 26:
                    out.append(f'<text x="{a:.1f}" y="{y - 9}" font-size="10" text-anchor="middle" fill="#24292f">{seg.start}</text>')
                    last_label_x = a
    axis_y = top + row_h * len(rows)
    for tick in nice_ticks(lo, hi, 12, integer=True):
        out.append(f'<line x1="{px(tick):.1f}" y1="{axis_y - 4}" x2="{px(tick):.1f}" y2="{axis_y}" stroke="#57606a"/>')
        out.append(f'<text x="{px(tick):.1f}" y="{axis_y + 12}" font-size="11" text-anchor="middle" fill="#57606a">{tick:g}</text>')
    out.append(f'<text x="{left + plot_w}" y="{axis_y + 24}" font-size="11" text-anchor="end" fill="#57606a">step (▼ switch: first step of the new phase)</text>')
    out.append("</svg>")
    return "".join(out)
