"""Every docstring example in the project runs and holds (reward tables, parsers, schedules)."""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in ("vzframe", "games", "schedulers", "plugins")
    for path in (ROOT / package).rglob("*.py")
    if ">>>" in path.read_text()
)


def test_modules_with_examples_are_found():
    assert {"vzframe.advantages", "games.clue_vote", "games.spy.rewards"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
