"""The status line of a run (``vzframe/display.py``): the game's headline metrics and the
scheduler's own statistics, fitted to the terminal's width, least useful fields dropped first."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from games.odd_one_out.game import OddOneOutGame
from games.spy.game import SpyGame
from vzframe.display import RunDisplay
from vzframe.types import Metric

SPY_ROW = {
    "step": 2, "phase": "decision", "acc": 0.5234, "na": 0.1, "invalid": 0.0, "clue_valid": 1.0, "spy_caught": 0.5,
    "acc_ema": 0.48, "na_ema": 0.12, "steps_in_phase": 2.0, "loss": 1.2e-8, "kl": 0.0012, "tokens_per_s": 812.3,
}  # fmt: skip
EMA = ["acc_ema", "na_ema", "steps_in_phase"]


def shown(width: int, metrics, row=SPY_ROW, stats=EMA, steps: int = 20) -> str:
    """The line as a terminal ``width`` columns wide shows it after the step of ``row``."""
    display = RunDisplay(steps, enabled=True, metrics=metrics, scheduler_stats=stats, console=Console(file=io.StringIO()))
    display.line.record(row)
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(display.line)
    text = console.export_text().rstrip("\n")
    assert "\n" not in text and len(text) <= width, text
    return text


def test_at_80_columns_the_step_and_the_headline_metrics_stay():
    line = shown(80, SpyGame.metrics)
    assert line.startswith("step 2 3/20")
    assert re.search(r"\bacc 0\.523\b", line) and re.search(r"\bna 0\.1\b", line) and "spy_caught 0.5" in line
    assert "  decision  " in line and "ETA " in line
    for dropped in ("kl", "tok/s", "acc_ema", "loss"):  # the least useful go first
        assert dropped not in line, dropped


def test_at_120_columns_labels_bar_and_eta_fit():
    line = shown(120, SpyGame.metrics)
    assert line.startswith("step 2 (3/20 done)")
    assert "vote accuracy 0.523" in line and "N/A rate 0.1" in line and "spy caught 0.5" in line
    assert "  decision  " in line and "ETA " in line and "loss 1.2e-08" in line
    assert len(max(re.findall("━+", line), key=len)) >= 10  # a real bar, not 3 characters


def test_a_wide_terminal_shows_everything_including_the_scheduler_statistics():
    line = shown(250, SpyGame.metrics)
    for text in ("acc_ema 0.48", "na_ema 0.12", "steps_in_phase 2", "kl 0.0012", "812 tok/s", "ETA "):
        assert text in line, text
    assert len(max(re.findall("━+", line), key=len)) == 40


@pytest.mark.parametrize("width", range(20, 260, 7))
def test_the_step_is_always_first_and_lower_priority_fields_go_before_higher_ones(width):
    line = shown(width, SpyGame.metrics)
    assert line.startswith("step 2")
    priority = ["spy", "ETA", "loss", "acc_ema", "kl", "tok/s"]  # each goes only after those to its right
    present = [any(p in line for p in (key, key.replace("spy", "spy caught"))) for key in priority]
    assert present == sorted(present, reverse=True), (width, line)


def test_another_game_and_scheduler_show_their_own_figures_and_no_spy_columns():
    row = {"step": 0, "phase": "vote", "odd_found": 0.25, "acc": 0.4, "na": 0.0, "pulls": 3.0, "loss": 0.5, "kl": 0.0, "tokens_per_s": 10}  # fmt: skip
    for width in (80, 200):
        line = shown(width, OddOneOutGame.metrics, row, stats=["pulls"], steps=5)
        assert "odd" in line and "0.25" in line and "step 0" in line
        assert "caught" not in line and "ema" not in line
    assert "odd one found 0.25" in shown(200, OddOneOutGame.metrics, row, stats=["pulls"])
    assert "pulls 3" in shown(200, {}, row, ["pulls"])


def test_a_game_without_headline_metrics_shows_none_and_missing_values_show_a_dash():
    line = shown(200, {"score": Metric("score")}, {"step": 4, "phase": "p", "loss": 2.0}, stats=["gone"])
    assert "score" not in line and "gone –" in line and "kl –" in line and "– tok/s" in line


def test_tiny_losses_keep_their_significant_digits():
    line = shown(250, SpyGame.metrics, {**SPY_ROW, "loss": 3.4e-7, "kl": 1.5e-5})
    assert "loss 3.4e-07" in line and "kl 1.5e-05" in line and "0.0000" not in line


def test_not_a_terminal_prints_the_whole_line_once_per_step_numbered_as_in_the_files():
    out = io.StringIO()
    display = RunDisplay(
        20, start=2, enabled=True, metrics=SpyGame.metrics, scheduler_stats=EMA, console=Console(file=out, width=80)
    )
    with display:
        display.update(SPY_ROW)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("step 2 (3/20 done)  phase decision  vote accuracy 0.523")
    assert "acc_ema 0.48" in lines[0] and "ETA " in lines[0] and "━" not in lines[0]


def test_disabled_prints_nothing():
    out = io.StringIO()
    with RunDisplay(3, enabled=False, metrics=SpyGame.metrics, console=Console(file=out)) as display:
        display.update(SPY_ROW)
    assert out.getvalue() == ""
