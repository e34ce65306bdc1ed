"""Every example config resolves (plugins found, every section valid) and opens with the
command that runs it."""

from pathlib import Path

import pytest

from vzframe.config import load_config
from vzframe.runtime import resolve

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_resolves(path):
    setup = resolve(load_config(path, []))
    assert setup.game_name == ("odd_one_out" if path.name.startswith("odd-one-out") else "spy")
    assert path.read_text().splitlines()[0].startswith(("# vzframe run --config", "# One node"))
    assert f"--config examples/{path.name}" in path.read_text()
