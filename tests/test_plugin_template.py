"""The out-of-tree plugin template in examples/plugin-template: installed with pip into this
environment, `vzframe plugins` lists it and `vzframe run` finds it by its entry-point name,
with no change to vzframe; its own tests pass; the docs' worked example is its code. The
template is uninstalled again at the end, so the environment is left as it was."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vzframe.plugins import build_registry, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "plugin-template"
DIST = "vzframe-describe-pick"
NAME = "games.describe_pick"


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def installed():
    """``pip install -e examples/plugin-template`` offline, and ``pip uninstall`` afterwards."""
    result = run("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(TEMPLATE))
    try:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        yield
    finally:
        removed = run("-m", "pip", "uninstall", "-y", DIST)
        assert removed.returncode == 0, removed.stderr[-2000:]
        assert run("-m", "pip", "show", DIST).returncode != 0


def test_vzframe_plugins_lists_the_installed_template(installed, tmp_path):
    result = run("-m", "vzframe.cli", "plugins", cwd=tmp_path)  # not the checkout: found as an entry point
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = [line for line in result.stdout.splitlines() if NAME in line]
    for word in ("0.1.0", "vzframe_describe_pick", "register_games", "register_probes"):
        assert word in row
    assert "register_reward_fns" not in row and "collect_metrics" not in row  # on the game class now


def test_vzframe_run_finds_the_template_by_name(installed, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = run(
        "-m", "vzframe.cli", "run", NAME, "schedulers.hysteresis", "steps=1", "games_per_step=2",
        "rollout.max_new_tokens=8", "game.candidates=3", f"output_dir={out}", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["vzframe"]["game"] == "describe_pick" and config["vzframe"]["plugins"][NAME] == "0.1.0"
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["phase"] == "decision" and row["samples"] == 2 and {"acc", "na", "reward_picker"} <= set(row)


def test_the_template_own_tests_pass():
    """Run from the template's folder, with its own pytest config, so it cannot rot."""
    result = run("-m", "pytest", "-q", cwd=TEMPLATE, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_docs_worked_example_is_the_template_module():
    doc = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert (TEMPLATE / "vzframe_describe_pick.py").read_text() in blocks


def test_docs_scheduler_example_works(tmp_path, monkeypatch):
    """The scheduler in docs/plugins.md, saved as a module and loaded by module path."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "class WarmupScheduler" in b]
    (tmp_path / "warmup_example.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = build_registry(make_plugin_manager(["warmup_example"])).schedulers["warmup"]
    scheduler = cls(cls.Config(warmup=2), phases=("decision", "clue"))
    phases = [scheduler.phase] + [scheduler.update(step, {"acc": 0.0, "na": 0.0}) for step in range(3)]
    assert phases == ["decision", "decision", "clue", "clue"] and scheduler.metrics() == {"warmup_left": 0.0}
    resumed = cls(cls.Config(warmup=2), phases=("decision", "clue"))
    resumed.load_state_dict(json.loads(json.dumps(scheduler.state_dict())))
    assert (resumed.phase, resumed.steps) == ("clue", 3)
    with pytest.raises(ValueError, match="needs the phases"):
        cls(cls.Config(), phases=("vote",))
