"""The live view of a run: one status line, redrawn in place on a terminal, or one plain line
per step when the output is not a terminal (logs, CI).

The line shows, left to right::

    step 2 (3/20 done)  ━━━━━━━━━━  phase decision  vote accuracy 0.52  N/A rate 0.1  spy caught 0.5
    acc_ema 0.48  na_ema 0.1  steps_in_phase 2  loss 1.23e-05  kl 0.0012  812 tok/s  0:01:02  ETA 0:03:10

the step, a progress bar, the phase the step trained, the game's headline metrics (those its
``metrics`` declares ``headline=True``, named by their labels), the scheduler's own statistics
(the keys of ``scheduler.metrics()``), loss and KL (three significant digits, so 1e-8 reads
``1e-08``, not ``0.0000``), generation speed, elapsed time and the estimated time left. When
the terminal is too narrow, the least useful fields go first, in the order of ``DEGRADE``:
elapsed time, speed, KL, the scheduler's statistics, the word "phase", loss; then the step and
the headline metrics take their short forms (``step 2 3/20``, ``acc 0.52``: a metric's name for
its label), then the bar, ETA and phase go. At 80 columns the step and the headline metrics
always remain.

Step numbers mean what they mean in the run folder. ``step N`` is the index of the step the
figures belong to, as ``metrics.jsonl``, ``episodes.jsonl`` and ``vzframe report --steps`` write
it: the first step is step 0. ``K/T done`` counts finished steps, as checkpoints do:
``checkpoints/step-K`` holds the weights after steps 0 to K-1, ``resume`` continues at step K,
and ``vzframe eval`` reports "step K". So after the third step the line reads
``step 2 (3/20 done)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from vzframe.types import Metric

SEP = "  "
BAR_MIN, BAR_MAX = 10, 40
"""The progress bar's width: shown only if this many columns are free, grown into spare ones."""

DEGRADE: tuple[tuple[str, str], ...] = (
    ("elapsed", "drop"),
    ("speed", "drop"),
    ("kl", "drop"),
    ("scheduler", "drop"),
    ("phase", "shrink"),
    ("loss", "drop"),
    ("step", "shrink"),
    ("headline", "shrink"),
    ("bar", "drop"),
    ("eta", "drop"),
    ("phase", "drop"),
    ("headline", "drop"),
)
"""How the line gives up width, one field at a time (a group's fields from the right) until it
fits: ``shrink`` switches the group's fields to their short forms, ``drop`` removes its fields
one by one. The step stays."""


def number(value: Any) -> str:
    """A figure for the status line: three significant digits, whole numbers as integers,
    ``–`` for anything missing or not finite.

    >>> number(0.5234), number(1.2e-8), number(2.0), number(None), number(float("nan"))
    ('0.523', '1.2e-08', '2', '–', '–')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def duration(seconds: float | None) -> str:
    """``H:MM:SS``; ``-:--:--`` when unknown.

    >>> duration(3725.2), duration(None)
    ('1:02:05', '-:--:--')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class Field:
    """One item of the line: its group (see ``DEGRADE``) and its forms, widest first."""

    group: str
    forms: list[Text]
    form: int = 0

    @property
    def width(self) -> int:
        return BAR_MIN if self.group == "bar" else self.forms[self.form].cell_len


def _figure(label: str, value: Any, style: str = "") -> Text:
    return Text.assemble((label + " ", "dim"), (number(value), style))


class StatusLine:
    """The run's status as a rich renderable that fits itself to the width it is given."""

    def __init__(
        self, steps: int, *, start: int = 0, headline: Mapping[str, str] | None = None, scheduler_stats: Sequence[str] = ()
    ):
        self.total, self.start = steps, start
        self.headline = dict(headline or {})  # metric name -> label
        self.scheduler_stats = tuple(scheduler_stats)
        self.metrics: dict[str, Any] | None = None
        self.done = start
        self.t0 = time.monotonic()

    def record(self, metrics: Mapping[str, Any]) -> None:
        """Take a finished step's metrics row (as written to metrics.jsonl)."""
        self.metrics = dict(metrics)
        self.done = int(metrics["step"]) + 1

    def fields(self) -> list[Field]:
        """Every field, in display order, each in its widest form."""
        m = self.metrics or {}
        done = f"{self.done}/{self.total}"
        if self.metrics is None:
            step = [Text(f"({done} done)  starting…", style="bold"), Text(done, style="bold")]
        else:
            step = [Text(f"step {m['step']} ({done} done)", style="bold"), Text(f"step {m['step']} {done}", style="bold")]
        elapsed = time.monotonic() - self.t0
        finished_here = self.done - self.start
        eta = elapsed / finished_here * (self.total - self.done) if finished_here > 0 else None
        out = [Field("step", step), Field("bar", [Text()])]
        if self.metrics is not None:
            phase = str(m.get("phase", "?"))
            out.append(Field("phase", [Text.assemble(("phase ", "dim"), (phase, "cyan")), Text(phase, style="cyan")]))
            for name, label in self.headline.items():
                out.append(Field("headline", [_figure(label, m.get(name), "bold"), _figure(name, m.get(name), "bold")]))
            out += [Field("scheduler", [_figure(name, m.get(name))]) for name in self.scheduler_stats]
            out.append(Field("loss", [_figure("loss", m.get("loss"))]))
            out.append(Field("kl", [_figure("kl", m.get("kl"))]))
            speed = m.get("tokens_per_s")
            out.append(Field("speed", [Text(f"{speed:.0f} tok/s" if number(speed) != "–" else "– tok/s", style="dim")]))
        out.append(Field("elapsed", [Text(duration(elapsed), style="yellow")]))
        out.append(Field("eta", [Text.assemble(("ETA ", "dim"), (duration(eta), "cyan"))]))
        return out

    def fit(self, width: int) -> Text:
        """The line for a terminal ``width`` columns wide (see ``DEGRADE``)."""
        fields = self.fields()

        def used() -> int:
            return sum(f.width for f in fields) + len(SEP) * (len(fields) - 1)

        for group, action in DEGRADE:
            members = [f for f in reversed(fields) if f.group == group]
            if action == "shrink" and used() > width:  # the whole group at once, so its forms agree
                for f in members:
                    f.form = min(f.form + 1, len(f.forms) - 1)
            for f in members if action == "drop" else ():
                if used() <= width:
                    break
                fields.remove(f)
        bar_width = min(BAR_MAX, BAR_MIN + max(0, width - used()))
        line = Text(SEP).join(self._bar(bar_width) if f.group == "bar" else f.forms[f.form] for f in fields)
        line.truncate(width, overflow="ellipsis")
        return line

    def plain(self) -> Text:
        """The whole line without the bar, for logs."""
        return Text(SEP).join(f.forms[0] for f in self.fields() if f.group != "bar")

    def _bar(self, width: int) -> Text:
        filled = round(width * self.done / self.total) if self.total else width
        return Text.assemble(("━" * filled, "bar.complete"), ("━" * (width - filled), "bar.back"))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fit(options.max_width)


class RunDisplay:
    """The status line of a run, live on a terminal; a plain line per step otherwise.

    ``metrics`` is the game's declaration (its headline metrics are shown by label);
    ``scheduler_stats`` names the keys of ``scheduler.metrics()`` in each step's row."""

    def __init__(
        self,
        steps: int,
        *,
        start: int = 0,
        enabled: bool,
        metrics: Mapping[str, Metric] | None = None,
        scheduler_stats: Sequence[str] = (),
        console: Console | None = None,
    ) -> None:
        from rich.live import Live

        self.enabled = enabled
        self.console = console or Console(stderr=True)
        headline = {name: m.label for name, m in (metrics or {}).items() if m.headline}
        self.line = StatusLine(steps, start=start, headline=headline, scheduler_stats=scheduler_stats)
        live = enabled and self.console.is_terminal
        self.live = Live(self.line, console=self.console, refresh_per_second=2, transient=False) if live else None

    def __enter__(self) -> RunDisplay:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, m: Mapping[str, Any]) -> None:
        """Show a finished step's metrics row."""
        if not self.enabled:
            return
        self.line.record(m)
        if self.live is not None:
            self.live.refresh()
        else:
            self.console.print(self.line.plain(), soft_wrap=True, highlight=False)
