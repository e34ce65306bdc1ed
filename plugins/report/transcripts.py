"""Game transcripts for the report: which steps to show, the pictures the players saw, and
each game's turns (player, role, stage, pictures, prompt, completion, action, reward,
advantage). Turns the step trained on are marked ``trained``; the rewards and advantages of
the others (scored for the record, e.g. the clue turns of a decision-phase step) are greyed.

Model output is untrusted: every field of an episode goes through ``esc``. Pictures are
embedded once each, as data URIs in a style sheet, and referenced by class name.
"""

from __future__ import annotations

import base64
import io
import json
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from plugins.report.page import esc, fmt
from plugins.report.runs import Run, as_float
from vzframe.config import ConfigError
from vzframe.rundir import image_filename

# --------------------------------------------------------------------------------------
# Which games to show
# --------------------------------------------------------------------------------------
STEP_RANGE = re.compile(r"(\d+)(?:\s*-\s*(\d+))?", re.ASCII)
"""One item of ``--steps``: a step ``N`` or an inclusive range ``LO-HI``."""
STEPS_FORM = "write steps from 0 and ranges low-high, e.g. --steps 0,10,20-25, or --steps all"


def parse_steps(spec: str) -> list[range] | None:
    """The ranges that ``--steps`` names, never expanded (``0-99999999999`` costs nothing);
    ``"all"`` -> None (every step). Anything else is a ConfigError naming the flag.

    >>> parse_steps("0, 3-5,3")
    [range(0, 1), range(3, 6), range(3, 4)]
    """
    if spec.strip().lower() == "all":
        return None
    ranges = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        match = STEP_RANGE.fullmatch(part)
        if match is None:
            negative = re.fullmatch(r"(\d+\s*-\s*)?-\s*\d+", part, re.ASCII)
            what = "is negative; steps count from 0" if negative else "is not a step or a range"
            raise ConfigError(f"--steps {spec!r}: {part!r} {what}; {STEPS_FORM}")
        try:
            lo, hi = int(match[1]), int(match[2] or match[1])
        except ValueError:  # more digits than int() accepts
            raise ConfigError(f"--steps {spec!r}: {part[:20]!r}... is not a step or a range; {STEPS_FORM}") from None
        if hi < lo:
            raise ConfigError(f"--steps {spec!r}: the range {part!r} runs backwards; write it low-high ({hi}-{lo}), e.g. --steps 0,10,20-25")
        ranges.append(range(lo, hi + 1))
    if not ranges:
        raise ConfigError(f"--steps {spec!r} names no step; {STEPS_FORM}")
    return ranges


def choose_steps(run: Run, wanted: list[range] | None, max_games: int, games_per_step: int) -> list[int]:
    """The steps whose games are embedded: those of the run in ``wanted`` (or every step),
    thinned to an evenly spaced subset (first and last included) so that about
    ``max_games`` games fit. Steps the run does not have are named in a warning; a ConfigError
    if ``wanted`` matches none of them."""
    if max_games <= 0:
        return []
    available = run.steps  # sorted
    if wanted is not None:
        hits = [available[bisect_left(available, r.start) : bisect_left(available, r.stop)] for r in wanted]
        empty = [r for r, hit in zip(wanted, hits) if not hit]
        if len(empty) == len(wanted):
            raise ConfigError(
                f"--steps {_ranges_text(wanted)} matches none of the run's {len(available)} steps "
                f"(it has steps {available[0]} to {available[-1]}); choose steps in that span, or --steps all."
            )
        if empty:
            run.warn(f"--steps: the run has no step {_ranges_text(empty)}")
        available = sorted({s for hit in hits for s in hit})
    k = min(len(available), max(1, max_games // max(1, games_per_step)))
    if k >= len(available):
        return available
    if k == 1:
        return [available[-1]]
    return sorted({available[round(i * (len(available) - 1) / (k - 1))] for i in range(k)})


def _ranges_text(ranges: Sequence[range], most: int = 10) -> str:
    """``[range(3, 4), range(5, 7)]`` -> ``"3,5-6"``; ``...`` after the first ``most``."""
    text = ",".join(str(r.start) if len(r) == 1 else f"{r.start}-{r.stop - 1}" for r in ranges[:most])
    return text + (",..." if len(ranges) > most else "")


def collect_games(run: Run, steps: Sequence[int], max_games: int) -> dict[int, list[dict[str, Any]]]:
    """The recorded games of ``steps``, at most ``max_games`` in all (an equal share per
    step). Reading stops as soon as every step has its share."""
    if not steps:
        return {}
    share = max(1, max_games // len(steps))
    games: dict[int, list[dict[str, Any]]] = {s: [] for s in steps}
    open_steps = set(steps)
    for episode in run.episodes():
        step = episode.get("step")
        if step in open_steps:
            games[step].append(episode)
            if len(games[step]) >= share:
                open_steps.discard(step)
                if not open_steps:
                    break
    return games


# --------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------
class ImageStore:
    """Pictures from ``OUTPUT_DIR/images/``, each embedded once (shrunk to ``max_px``)."""

    def __init__(self, folder: Path, max_px: int = 160) -> None:
        self.folder, self.max_px = folder, max_px
        self.classes: dict[str, str | None] = {}
        self.rules: list[str] = []
        self.bytes = 0

    def thumb(self, image_id: str, extra_class: str = "") -> str:
        cls = self._class_of(image_id)
        label = esc(image_id)
        if cls is None:
            return f'<span class="thumb missing {extra_class}" title="{label} (not saved)">{label}</span>'
        return f'<span class="thumb {cls} {extra_class}" role="img" aria-label="{label}" title="{label}"></span>'

    def stylesheet(self) -> str:
        return "\n".join(self.rules)

    def _class_of(self, image_id: str) -> str | None:
        if image_id not in self.classes:
            uri = self._data_uri(self.folder / image_filename(image_id))
            self.classes[image_id] = None
            if uri is not None:
                self.classes[image_id] = f"im{len(self.rules)}"
                self.rules.append(f".im{len(self.rules)} {{ background-image: url({uri}); }}")
                self.bytes += len(uri)
        return self.classes[image_id]

    def _data_uri(self, path: Path) -> str | None:
        """The picture as a PNG or JPEG data URI, whichever is smaller; None if unreadable."""
        try:
            raw = path.read_bytes()
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                small = image.width <= self.max_px and image.height <= self.max_px
                candidates = [("png", raw)] if small and image.format == "PNG" else []
                image.thumbnail((self.max_px, self.max_px))
                png = io.BytesIO()
                image.save(png, format="PNG", optimize=True)
                candidates.append(("png", png.getvalue()))
                if image.mode in ("RGB", "L"):
                    jpeg = io.BytesIO()
                    image.save(jpeg, format="JPEG", quality=85)
                    candidates.append(("jpeg", jpeg.getvalue()))
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        kind, data = min(candidates, key=lambda c: len(c[1]))
        return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------
def role_classes(games: Iterable[dict[str, Any]]) -> dict[str, str]:
    roles = sorted({str(r) for g in games for r in _list(g.get("roles"))})
    return {role: f"r{i % 4}" for i, role in enumerate(roles)}


def render_step(
    step: int, metrics: dict[str, Any], games: Sequence[dict[str, Any]], images: ImageStore, roles: dict[str, str], *,
    open_: bool, headline: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """A step's games; its summary line shows the phase and ``headline`` (metric -> label)."""
    stats = [f"phase {esc(metrics.get('phase', 'unknown'))}"]
    for key, label in (headline or {}).items():
        if as_float(metrics.get(key)) is not None:
            stats.append(f"{esc(label)} {fmt(as_float(metrics.get(key)))}")
    stats.append(f"{len(games)} game{'s' if len(games) != 1 else ''} shown")
    body = "".join(render_game(i + 1, g, images, roles) for i, g in enumerate(games)) or '<p class="game note">No recorded game for this step.</p>'
    return (
        f'<details class="step" id="step-{step}" data-step="{step}"{" open" if open_ else ""}>'
        f'<summary>Step {step}<span class="stats">{" · ".join(stats)}</span></summary>{body}</details>'
    )


def render_game(number: int, game: dict[str, Any], images: ImageStore, roles: dict[str, str]) -> str:
    turns = [t for t in _list(game.get("turns")) if isinstance(t, dict)]
    seats = _list(game.get("roles"))
    cast = ", ".join(f'P{i + 1} <span class="role {roles.get(str(r), "r0")}">{esc(r)}</span>' for i, r in enumerate(seats))
    info = game.get("info") if isinstance(game.get("info"), dict) else {}
    info_text = " · ".join(f"{esc(k)}: {esc(v if isinstance(v, str) else json.dumps(v))}" for k, v in info.items())
    seen: dict[str, list[str]] = {}
    for t in turns:
        for image_id in _list(t.get("images")):
            players = seen.setdefault(str(image_id), [])
            if f"P{t.get('player')}" not in players:
                players.append(f"P{t.get('player')}")
    pictures = "".join(
        f'<figure class="seen-one">{images.thumb(i)}<figcaption class="note">{esc(i)}: seen by {esc(", ".join(p))}</figcaption></figure>'
        for i, p in seen.items()
    )
    systems: dict[str, list[str]] = {}  # each distinct system message once per game, by first use
    for t in turns:
        system, _ = split_system(str(t.get("prompt", "")))
        if system and f"P{t.get('player')}" not in systems.setdefault(system, []):
            systems[system].append(f"P{t.get('player')}")
    number_of = {system: i + 1 for i, system in enumerate(systems)}
    system_html = "".join(
        f'<details class="prompt"><summary>system message {number_of[text]} (to {esc(", ".join(players))})</summary><pre>{esc(text)}</pre></details>'
        for text, players in systems.items()
    )
    rows = "".join(_turn_row(t, images, roles, number_of) for t in turns)
    head = f"Game {number} · {esc(game.get('game', ''))} · seed {esc(game.get('seed', '?'))}"
    if game.get("rank"):
        head += f" · rank {esc(game.get('rank'))}"
    return (
        f'<div class="game"><h4>{head}</h4><div class="info">{cast}</div>'
        f'<div class="info">{info_text}</div><div class="seen">{pictures}</div>{system_html}'
        '<table class="turns"><thead><tr><th>#</th><th>player</th><th>role</th><th>stage</th><th>saw</th>'
        "<th>completion (prompt above it)</th><th>action</th><th>reward</th><th>advantage</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def split_system(prompt: str) -> tuple[str, str]:
    r"""A prompt as ``Observation.prompt_text`` flattens it, ``"[system] ...\n[user] ..."``,
    split into (system message, the rest); ``("", prompt)`` when it has no system message.

    >>> split_system("[system] Rules.\n[user] Go.")
    ('[system] Rules.', '[user] Go.')
    """
    if prompt.startswith("[system] "):
        system, sep, rest = prompt.partition("\n[user] ")
        if sep:
            return system, "[user] " + rest
    return "", prompt


def _turn_row(t: dict[str, Any], images: ImageStore, roles: dict[str, str], systems: dict[str, int]) -> str:
    action = t.get("action") if isinstance(t.get("action"), dict) else {}
    kind = str(action.get("kind", "?"))
    value = action.get("value")
    action_html = f'<span class="kind {"invalid" if kind == "invalid" else ""}">{esc(kind)}</span>'
    if value is not None:
        action_html += f" {esc(value)}"
    if action.get("reason"):
        action_html += f'<div class="reason">{esc(action["reason"])}</div>'
    saw = "".join(images.thumb(str(i), "small") for i in _list(t.get("images")))
    role = str(t.get("role", ""))
    system, rest = split_system(str(t.get("prompt", "")))
    prompt = f"[system] (system message {systems[system]}, shown above the turns)\n{esc(rest)}" if system else esc(rest)
    trained = t.get("trained")  # absent in runs written before turns recorded it
    row_class, mark, muted = "", "", ""
    if trained is True:
        row_class, mark = ' class="trained"', ' <span class="trained-mark" title="the step trained on this turn">trained</span>'
    elif trained is False:
        row_class, muted = ' class="untrained"', ' title="not trained: computed, but this step trained another stage"'
    return (
        f'<tr data-stage="{esc(t.get("stage", ""))}"{row_class}><td class="num">{esc(t.get("index", ""))}</td>'
        f"<td>P{esc(t.get('player', '?'))}</td>"
        f'<td><span class="role {roles.get(role, "r0")}">{esc(role)}</span></td>'
        f"<td>{esc(t.get('stage', ''))}{mark}</td><td>{saw}</td>"
        f'<td><details class="prompt"><summary>prompt</summary><pre>{prompt}</pre></details>'
        f'<pre class="completion">{esc(t.get("completion", ""))}</pre></td>'
        f"<td>{action_html}</td>"
        f'<td class="num"{muted}>{fmt(as_float(t.get("reward")))}</td><td class="num"{muted}>{fmt(as_float(t.get("advantage")))}</td></tr>'
    )


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []
