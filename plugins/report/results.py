"""Result files a run folder may hold beside its logs, and the held-out evaluation tables.

``vzframe eval RUN`` writes ``RUN/eval-step-N.json``: fixed, seeded games in which the trained
model plays one role against the base model in every other seat (``vzframe/evaluate.py``).
The report shows each file, newest step first, as ``vzframe eval`` prints it: a row per
headline metric (every metric in a collapsible list), a column per matchup, each cell the value
± its standard error and, beside the base model's, the change from it ± its paired standard error.

A run folder is untrusted: files are parsed as JSON only (``NaN`` as Python writes it is read
as a missing value), every field is checked before use, and a file that cannot be read is
skipped with a warning. ``transfer`` reads ``probe-step-N.json`` with the same helpers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.report.page import esc, table
from plugins.report.runs import as_float

Warn = Callable[[str], None]


def step_files(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """``PREFIX-step-N.json`` files in ``folder`` as (N, path), by step (not the ``.items.jsonl``
    or ``.episodes.jsonl`` files beside them)."""
    pattern = re.compile(rf"{re.escape(prefix)}-step-([0-9]{{1,15}})\.json")
    found = [(int(m.group(1)), path) for path in folder.glob(f"{prefix}-step-*.json") if (m := pattern.fullmatch(path.name))]
    return sorted(found)


def read_object(path: Path, warn: Warn, what: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None after a warning that names ``what`` wrote it."""
    from vzframe.checkpoint import DamagedCheckpoint, read_json

    try:
        data = read_json(path)
    except DamagedCheckpoint as exc:
        warn(f"{path}: skipped, {exc}; run `{what}` again to rewrite it")
        return None
    if not isinstance(data, dict):
        warn(f"{path}: skipped, it holds no JSON object; run `{what}` again to rewrite it")
        return None
    return data


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object (its keys as text), else empty."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def numbers(value: Any) -> dict[str, float | None]:
    """A JSON object of numbers: each value a finite float, or None (missing, NaN, text)."""
    return {k: as_float(v) for k, v in mapping(value).items()}


def plus_minus(value: float | None, se: float | None) -> str:
    """``0.625 ± 0.061`` (HTML), the value alone when its standard error is unknown.

    >>> plus_minus(0.625, 0.0612), plus_minus(0.5, None), plus_minus(None, 0.1)
    ('0.625 ± 0.061', '0.500', '–')
    """
    if value is None:
        return "–"
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else "")


def change_text(change: float | None, se: float | None) -> str:
    """`` (+0.125 ± 0.048)``: a change from the base model with its paired standard error.

    >>> change_text(0.125, 0.0481), change_text(-0.05, None), change_text(None, 0.1)
    (' (+0.125 ± 0.048)', ' (-0.050)', '')
    """
    if change is None:
        return ""
    return f" ({change:+.3f}" + (f" ± {se:.3f})" if se is not None else ")")


@dataclass(frozen=True)
class EvalFile:
    """One ``eval-step-N.json``, checked: every number a float or None."""

    step: int
    games: str
    seed: str
    labels: dict[str, str]
    """Each metric's label (its key where the file declares none), in the table's order."""
    headline: list[str]
    matchups: dict[str, dict[str, float | None]]
    """Each matchup's metrics, ``base`` first."""
    stderr: dict[str, dict[str, float | None]]
    change_se: dict[str, dict[str, float | None]]

    def cell(self, matchup: str, metric: str) -> str:
        """``value ± se`` and, beside the base model's, ``(+change ± paired se)``."""
        value = self.matchups[matchup].get(metric)
        cell = plus_minus(value, self.stderr.get(matchup, {}).get(metric))
        base = self.matchups.get("base", {}).get(metric)
        if matchup != "base" and value is not None and base is not None:
            cell += change_text(value - base, self.change_se.get(matchup, {}).get(metric))
        return cell

    def table(self, metrics: list[str]) -> str:
        rows = [[esc(self.labels[m])] + [self.cell(name, m) for name in self.matchups] for m in metrics]
        return table(["metric"] + [esc(name) for name in self.matchups], rows)


def read_evals(folder: Path, warn: Warn) -> list[EvalFile]:
    """The ``eval-step-N.json`` files of ``folder``, newest step first."""
    found = []
    for step, path in reversed(step_files(folder, "eval")):
        data = read_object(path, warn, f"vzframe eval {folder} --step {step}")
        evaluation = parse_eval(step, data) if data is not None else None
        if data is not None and evaluation is None:
            warn(f"{path}: skipped, it holds no matchup with a metric; run `vzframe eval {folder} --step {step}` again")
        if evaluation is not None:
            found.append(evaluation)
    return found


def parse_eval(step: int, data: dict[str, Any]) -> EvalFile | None:
    """``data`` (an ``eval-step-N.json``) checked field by field; None without a matchup."""
    matchups = {name: numbers(m) for name, m in mapping(data.get("matchups")).items() if isinstance(m, dict)}
    matchups = {name: m for name, m in matchups.items() if m}
    if not matchups:
        return None
    if "base" in matchups:
        matchups = {"base": matchups["base"], **matchups}
    keys = list(dict.fromkeys(k for m in matchups.values() for k in m))
    declared = {k: mapping(d) for k, d in mapping(data.get("metrics")).items() if k in keys}
    labels = {k: str(d.get("label") or k) for k, d in declared.items()}
    labels.update({k: k for k in keys if k not in labels})  # measured but not declared: after the declared ones
    headline = [k for k, d in declared.items() if d.get("headline") is True] or list(labels)

    def text(value: Any) -> str:
        return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else "?"

    return EvalFile(
        step=step, games=text(data.get("games")), seed=text(data.get("seed")), labels=labels, headline=headline,
        matchups=matchups, stderr={k: numbers(v) for k, v in mapping(data.get("stderr")).items()},
        change_se={k: numbers(v) for k, v in mapping(data.get("change_se")).items()},
    )  # fmt: skip


def evals_html(evals: list[EvalFile]) -> str:
    """The report's held-out evaluation section: a table per file, newest step first; empty
    when the run has none."""
    if not evals:
        return ""
    parts = [
        "<h2>Held-out evaluation</h2>"
        '<p class="note">From <code>vzframe eval</code>: the same seeded games, on pictures the run did not train on, '
        "in every matchup. <i>base</i>: every seat is the base model; <i>trained ROLE</i>: the trained model plays that "
        "role, the base model every other seat. ± one standard error (jackknife over games); (+x ± s): the change from "
        "base with its paired standard error (the same games, left out of both at once).</p>"
    ]
    for e in evals:
        others = [k for k in e.labels if k not in e.headline]
        parts.append(f'<h3 id="eval-step-{e.step}">Step {e.step}: {esc(e.games)} held-out games (seed {esc(e.seed)})</h3>')
        parts.append(e.table(e.headline))
        if others:
            parts.append(f'<details class="more"><summary>all {len(e.labels)} metrics</summary>{e.table(list(e.labels))}</details>')
    return "".join(parts)
