"""Transfer probes in the pages: the report's "Transfer: probes" section and ``compare``'s
probe charts.

``vzframe probe RUN`` writes ``RUN/probe-step-N.json`` per checkpoint step N: for each probe (a
question format asked of pictures, e.g. ``clevr.verify``) the checkpoint's accuracy ± its
standard error over items, the base model's, and the change from it ± its paired standard
error (the same items). The report draws each probe's accuracy over the checkpoint steps with
±1 standard-error whiskers, the base model's as a dashed line with a band, and tabulates them;
``compare`` overlays the runs, one line each, and tabulates each run's newest change.

Files scored by likelihood (``"decoding": {"score": "likelihood"}``) also hold ``p_right``: the
mean probability the model puts on the right choices, normalised over each item's choices, with
its standard error and paired change (``change_p_right``). Accuracy takes each item's most
likely choice and is coarse; p(right) moves first. Where a probe has it, both pages draw it in a
chart of its own beside the accuracy chart (its y axis fitted to the values) and tabulate it in a
second table; without it the pages are as they were.

Only files scored with the same settings (decoding, items per probe, seed) compare: a run's
pages use the files sharing its newest file's settings and name the others in a note. Files
are read as ``results`` reads them: untrusted, JSON only, a bad one skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.report.charts import RATE
from plugins.report.page import esc, table
from plugins.report.results import Warn, change_text, mapping, plus_minus, read_object, step_files
from plugins.report.runs import Run, as_float
from plugins.report.svg import LINE_COLORS, Series, line_chart

BASE_COLOR = "#57606a"
WARM_START = {True: "yes", False: "no", None: "unknown"}
P_RIGHT_NOTE = (
    " <i>p(right)</i>: the mean probability the model puts on the right choices, normalised over each item's choices "
    "(answers scored by likelihood), ± one standard error over items. Accuracy takes each item's most likely choice, so it "
    "moves only when a choice overtakes another; p(right) moves first. Its charts' y axes are fitted to the values."
)
MEASURES = ("accuracy", "p_right")
"""What a probe file measures: accuracy always, p_right with likelihood scoring."""
NOTE = (
    "accuracy ± one standard error over items; (+x ± s): the change from the base model with its paired standard "
    "error (the same items, the same sampling seeds)."
)
WARM_NOTE = (
    " <i>in warm start</i>: whether the base model's warm start taught the question format (yes: a sharpened skill; "
    "no: transfer; unknown: a pretrained model)."
)


@dataclass(frozen=True)
class Score:
    """A model's accuracy on a probe and its standard error, and with likelihood scoring the
    mean probability on the right choices and its standard error (each None where missing or NaN)."""

    accuracy: float | None
    se: float | None
    p_right: float | None = None
    p_right_se: float | None = None

    def of(self, measure: str) -> tuple[float | None, float | None]:
        """(value, standard error) of ``measure``, one of MEASURES."""
        return (self.accuracy, self.se) if measure == "accuracy" else (self.p_right, self.p_right_se)


@dataclass(frozen=True)
class Probe:
    """One probe's figures in one ``probe-step-N.json``."""

    label: str
    items: int | None
    in_warm_start: bool | None
    trained: Score
    base: Score | None
    change: float | None
    change_se: float | None
    change_p_right: float | None = None
    change_p_right_se: float | None = None

    def cell(self, measure: str = "accuracy") -> str:
        """``value ± se (+change ± paired se)`` of ``measure`` (accuracy or p_right)."""
        change = (self.change, self.change_se) if measure == "accuracy" else (self.change_p_right, self.change_p_right_se)
        return plus_minus(*self.trained.of(measure)) + change_text(*change)


@dataclass(frozen=True)
class ProbeFile:
    """One ``probe-step-N.json``, checked. ``settings`` describes how it was scored, in words;
    files with equal ``settings`` compare."""

    step: int
    settings: str
    probes: dict[str, Probe]
    mtime: float


def _score(value: Any) -> Score | None:
    if not isinstance(value, dict):
        return None
    return Score(*(as_float(value.get(k)) for k in ("accuracy", "se", "p_right", "p_right_se")))


def _change(d: dict[str, Any], key: str, trained: Score, base: Score | None, measure: str) -> float | None:
    """The entry's ``key`` (a change from the base), else the difference of the two scores (no
    paired se without the items)."""
    change = as_float(d.get(key))
    now, then = trained.of(measure)[0], base.of(measure)[0] if base is not None else None
    return now - then if change is None and now is not None and then is not None else change


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_probe(name: str, value: Any) -> Probe | None:
    """One entry of a file's ``probes``; None without a ``trained`` score."""
    d = mapping(value)
    trained, base = _score(d.get("trained")), _score(d.get("base"))
    if trained is None:
        return None
    warm = d.get("in_warm_start")
    return Probe(
        label=str(d.get("label") or name), items=_count(d.get("items")), in_warm_start=warm if isinstance(warm, bool) else None,
        trained=trained, base=base, change=_change(d, "change", trained, base, "accuracy"), change_se=as_float(d.get("change_se")),
        change_p_right=_change(d, "change_p_right", trained, base, "p_right"), change_p_right_se=as_float(d.get("change_p_right_se")),
    )  # fmt: skip


def settings_text(data: dict[str, Any]) -> str:
    """How a file was scored, in words: "answers generated by vllm, temperature 0.0, at most 32
    new tokens; 100 items per probe, seed 0" (or "answers chosen by the likelihood of each choice")."""
    how = mapping(data.get("decoding"))
    if how.get("score") == "likelihood":
        decoding = "answers chosen by the likelihood of each choice"
    else:
        decoding = f"answers generated by {how.get('engine', '?')}, temperature {how.get('temperature', '?')}, at most {how.get('max_new_tokens', '?')} new tokens"
    return f"{decoding}; {data.get('items_per_probe', '?')} items per probe, seed {data.get('seed', '?')}"


def read_probes(folder: Path, warn: Warn) -> list[ProbeFile]:
    """The ``probe-step-N.json`` files of ``folder``, by step."""
    found = []
    for step, path in step_files(folder, "probe"):
        again = f"vzframe probe {folder} --step {step}"
        data = read_object(path, warn, again)
        if data is None:
            continue
        entries = mapping(data.get("probes"))
        probes = {name: p for name, value in entries.items() if (p := parse_probe(name, value)) is not None}
        bad = [name for name in entries if name not in probes]
        if bad:
            warn(f"{path}: skipped probe{'s' if len(bad) > 1 else ''} {', '.join(bad)}, without a trained score; run `{again}` again")
        if not probes:
            if not entries:
                warn(f"{path}: skipped, it holds no probe result; run `{again}` again")
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        found.append(ProbeFile(step, settings_text(data), probes, mtime))
    return found


def comparable(files: Sequence[ProbeFile]) -> tuple[list[ProbeFile], list[ProbeFile]]:
    """(the files scored with the settings of the newest file, the others), each by step.
    Newest: the last written, the highest step among equals."""
    if not files:
        return [], []
    newest = max(files, key=lambda f: (f.mtime, f.step))
    return [f for f in files if f.settings == newest.settings], [f for f in files if f.settings != newest.settings]


def latest(files: Sequence[ProbeFile], name: str) -> tuple[int, Probe]:
    """The highest step's figures of probe ``name`` among ``files`` (by step; one has it)."""
    return next((f.step, f.probes[name]) for f in reversed(files) if name in f.probes)


def base_score(probe: Probe, measure: str = "accuracy") -> Score | None:
    """The base model's score, where the file has its ``measure``."""
    return probe.base if probe.base is not None and probe.base.of(measure)[0] is not None else None


def measures(files: Sequence[ProbeFile], name: str) -> tuple[str, ...]:
    """What to draw and tabulate of probe ``name``: accuracy, and p_right where one of ``files``
    has it (likelihood scoring)."""
    fine = any(f.probes[name].trained.p_right is not None for f in files if name in f.probes)
    return MEASURES if fine else MEASURES[:1]


def probe_names(files: Sequence[ProbeFile]) -> list[str]:
    """Every probe in ``files``, the newest file's first (in its order)."""
    return list(dict.fromkeys(name for f in reversed(files) for name in f.probes))


def _title(probe: Probe, name: str, measure: str = "accuracy") -> str:
    """A chart's title: ``label (name)``, then `` · p(right)`` for p_right; at most 90 characters."""
    suffix = "" if measure == "accuracy" else " · p(right)"
    text, room = f"{probe.label} ({name})", 90 - len(suffix)
    return (text if len(text) <= room else text[: room - 1] + "…") + suffix


def chart_name(name: str, measure: str) -> str:
    """``probe-NAME`` for accuracy, ``probe-NAME-p_right`` for p_right: a chart's key and SVG file stem."""
    return f"probe-{name}" if measure == "accuracy" else f"probe-{name}-{measure}"


def _trained(files: Sequence[ProbeFile], name: str, label: str, color: str, measure: str = "accuracy") -> Series:
    shown = [f for f in files if name in f.probes]
    points = [f.probes[name].trained.of(measure) for f in shown]
    return Series(label, [f.step for f in shown], [v for v, _ in points], color, errs=[se for _, se in points])


def _base(base: Score, hi: int, label: str, color: str, *, band: bool = True, measure: str = "accuracy") -> Series:
    value, se = base.of(measure)
    return Series(label, [0, hi], [value, value], color, dashed=True, errs=[se, se] if band else [])


def _y_range(measure: str) -> tuple[float, float] | None:
    """0 to 1 for accuracy, so probes and runs compare at a glance; fitted to the values for
    p(right), whose moves are small."""
    return RATE if measure == "accuracy" else None


def _tables(accuracy: str, p_right: str) -> str:
    """The accuracy table alone, or with a p(right) table (empty: none) both under headings."""
    if not p_right:
        return accuracy
    return f"<h3>Accuracy</h3>{accuracy}<h3>Probability on the right choices: p(right)</h3>{p_right}"


def _left_out_note(left: Sequence[ProbeFile], who: str = "") -> str:
    by_settings: dict[str, list[int]] = {}
    for f in left:
        by_settings.setdefault(f.settings, []).append(f.step)
    return "".join(
        f'<p class="note">{esc(who)}Not shown: step{"s" if len(steps) > 1 else ""} {", ".join(map(str, steps))}, '
        f"scored with other settings ({esc(settings)}).</p>"
        for settings, steps in by_settings.items()
    )


def probes_html(run: Run) -> str:
    """The report's "Transfer: probes" section: a chart and a table row per probe. Empty when
    the run has no probe file."""
    files, left = comparable(run.probe_files)
    if not files:
        return ""
    hi = files[-1].step
    charts, rows, fine_rows = [], [], []
    for name in probe_names(files):
        _, probe = latest(files, name)
        for measure, color in zip(measures(files, name), LINE_COLORS):  # p(right) in the second colour
            lines = [_trained(files, name, "checkpoints", color, measure)]
            if (base := base_score(probe, measure)) is not None:
                lines.insert(0, _base(base, hi, "base model", BASE_COLOR, measure=measure))
            charts.append(line_chart(_title(probe, name, measure), lines, x_range=(0, hi), y_range=_y_range(measure)))
            cells = [f.probes[name].cell(measure) if name in f.probes else "–" for f in files]
            base_cell = plus_minus(*base.of(measure)) if base is not None else "–"
            if measure == "accuracy":
                items = str(probe.items) if probe.items is not None else "–"
                rows.append([esc(f"{probe.label} ({name})"), items, WARM_START[probe.in_warm_start], base_cell, *cells])
            else:
                fine_rows.append([esc(f"{probe.label} ({name})"), base_cell, *cells])
    steps = [f"step {f.step}" for f in files]
    fine_table = table(["probe", "base", *steps], fine_rows) if fine_rows else ""
    tables = _tables(table(["probe", "items", "in warm start", "base", *steps], rows), fine_table)
    return (
        "<h2>Transfer: probes</h2>"
        f'<p class="note">From <code>vzframe probe</code> ({esc(files[-1].settings)}). '
        "Accuracy over the checkpoint steps, ± one standard error over items (whiskers); the base model's accuracy dashed, "
        "with its band." + (" Where a probe was scored by likelihood, the chart beside it (orange) draws p(right), defined below, the same way." if fine_rows else "")
        + "</p>"
        + _left_out_note(left)
        + '<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in charts) + "</div>"
        + tables
        + f'<p class="note">{NOTE}{WARM_NOTE}{P_RIGHT_NOTE if fine_rows else ""}</p>'
    )  # fmt: skip


def _probed(runs: Sequence[Run]) -> list[tuple[Run, list[ProbeFile]]]:
    """Each run with probe files and those it shows (``comparable``'s first list)."""
    kept = [(run, comparable(run.probe_files)[0]) for run in runs]
    return [(run, files) for run, files in kept if files]


def probe_chart_names(runs: Sequence[Run]) -> list[str]:
    """The names of ``compare_probe_charts``' charts, in its order: ``probe-NAME`` per probe, then
    ``probe-NAME-p_right`` where a run has p(right) of it."""
    kept = _probed(runs)
    return [
        chart_name(name, measure)
        for name in dict.fromkeys(n for _, files in kept for n in probe_names(files))
        for measure in MEASURES
        if any(measure in measures(files, name) for _, files in kept)
    ]


def compare_probe_charts(runs: Sequence[Run]) -> dict[str, str]:
    """A chart per probe, ``probe-NAME`` by name, overlaying the runs that have it (colours by
    position, as ``compare_charts``): accuracy over steps with whiskers, the base model's
    accuracy dashed (one grey line when every run's is the same). Then, where runs have it,
    ``probe-NAME-p_right``: the same of p(right), a line per run that has it."""
    color = {id(run): LINE_COLORS[i % len(LINE_COLORS)] for i, run in enumerate(runs)}
    kept = _probed(runs)
    charts = {}
    for name in dict.fromkeys(n for _, files in kept for n in probe_names(files)):
        having = [(run, files) for run, files in kept if any(name in f.probes for f in files)]
        hi = max(f.step for _, files in having for f in files if name in f.probes)
        _, first = latest(having[0][1], name)
        for measure in MEASURES:
            drawn = [(run, files) for run, files in having if measure in measures(files, name)]
            if not drawn:
                continue
            lines = [_trained(files, name, run.label, color[id(run)], measure) for run, files in drawn]
            bases = [(run, base_score(latest(files, name)[1], measure)) for run, files in drawn]
            bases = [(run, b) for run, b in bases if b is not None]
            if bases and len({b.of(measure)[0] for _, b in bases}) == 1:
                lines.insert(0, _base(bases[0][1], hi, "base model", BASE_COLOR, measure=measure))
            else:
                lines += [_base(b, hi, f"{run.label} base", color[id(run)], band=False, measure=measure) for run, b in bases]
            title = _title(first, name, measure)
            charts[chart_name(name, measure)] = line_chart(title, lines, x_range=(0, hi), y_range=_y_range(measure))
    return charts


def compare_probes_html(runs: Sequence[Run], charts: dict[str, str]) -> str:
    """``compare``'s "Transfer: probes" section: ``charts`` (from ``compare_probe_charts``), a
    table of each run's newest change from its base model, and which runs have no probes."""
    kept = [(run, *comparable(run.probe_files)) for run in runs]
    with_probes = [(run, files, left) for run, files, left in kept if files]
    if not with_probes:
        return ""
    names = list(dict.fromkeys(n for _, files, _ in with_probes for n in probe_names(files)))
    fine = [n for n in names if any("p_right" in measures(files, n) for _, files, _ in with_probes)]
    labels: dict[str, str] = {}

    def cell(files: list[ProbeFile], name: str, measure: str) -> str:
        if not any(name in f.probes for f in files):
            return "–"
        step, probe = latest(files, name)
        labels.setdefault(name, probe.label)
        text = probe.cell(measure)
        return text + (f" at step {step}" if step != files[-1].step and text != "–" else "")

    def newest(shown: list[str], measure: str) -> str:
        rows = [[esc(run.label), str(files[-1].step), *(cell(files, n, measure) for n in shown)] for run, files, _ in with_probes]
        return table(["run", "newest step", *(esc(f"{labels[n]} ({n})") for n in shown)], rows)

    tables = _tables(newest(names, "accuracy"), newest(fine, "p_right") if fine else "")
    missing = [run.label for run, files, _ in kept if not files]
    settings = {run.label: files[-1].settings for run, files, _ in with_probes}
    if len(set(settings.values())) == 1:
        how = f'<p class="note">From <code>vzframe probe</code> ({esc(next(iter(settings.values())))}).</p>'
    else:
        how = '<p class="note">The runs were probed with different settings: ' + "; ".join(f"{esc(r)}: {esc(s)}" for r, s in settings.items()) + ".</p>"
    return (
        "<h2>Transfer: probes</h2>" + how
        + "".join(_left_out_note(left, f"{run.label}: ") for run, _, left in with_probes)
        + (f'<p class="note">No probe results in {esc(", ".join(missing))}.</p>' if missing else "")
        + '<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in charts.values()) + "</div>"
        + tables
        + f'<p class="note">Each run\'s newest probed step: {NOTE}{P_RIGHT_NOTE if fine else ""}</p>'
    )  # fmt: skip
