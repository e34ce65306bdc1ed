"""A plugin in the 0.1 shape still works until 0.3: tests/fixtures/template_v0_1.py is the
plugin template as 0.1 shipped it, whose module gives the game's reward functions and metrics
through the register_reward_fns and collect_metrics hooks. check_game passes it, a run
resolves and measures it, and each of those hooks draws one DeprecationWarning that says
what to declare on the game class instead."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import tests.fixtures.template_v0_1 as plugin
from vzframe import gamespec
from vzframe.advantages import RoleBaselines
from vzframe.config import load_config
from vzframe.rollout import Generation
from vzframe.rollout.play import ImageCursor, play
from vzframe.runtime import resolve, step_metrics
from vzframe.testing import check_game

ROOT = Path(__file__).resolve().parents[1]
REWARD_FNS = {"pick.guess": plugin.GuessReward(), "pick.clue": plugin.ClueReward()}  # as the 0.1 docs passed them


class ScriptedEngine:
    """The describer says one thing, the picker always picks picture 1."""

    def generate(self, observations):
        text = {"clue": "<answer>There is a red cube.</answer>", "decision": "<answer>1</answer>"}
        return [Generation(text[o.stage], (1,), 1) for o in observations]


@pytest.fixture
def caught(monkeypatch):
    monkeypatch.setattr(gamespec, "_warned", set())  # once per process: start from none warned
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_a_0_1_plugin_is_checked_resolved_and_measured_with_one_warning_per_hook(caught):
    report = check_game(plugin.DescribePickGame, {"candidates": 3}, reward_fns=REWARD_FNS)
    assert set(report.metrics) == set(plugin.DescribePickGame.metrics)  # its collect_metrics hook

    setup = resolve(load_config(None, ["model=tiny"], ["tests.fixtures.template_v0_1", "schedulers.hysteresis"]))
    assert {phase: [fn.name for fn in fns] for phase, fns in setup.reward_fns.items()} == {
        "decision": ["pick.guess"], "clue": ["pick.clue"],
    }  # fmt: skip
    assert isinstance(setup.reward_fns["decision"][0], plugin.GuessReward)  # found through register_reward_fns
    images = ImageCursor(setup.image_source, rank=0, world=1)
    games = [setup.game_cls(setup.game_config, seed=i, images=images.draw) for i in range(4)]
    episodes = play(games, ScriptedEngine()).episodes
    metrics = step_metrics(setup, episodes, {}, RoleBaselines())
    assert metrics["acc"] == sum(e.info["target"] == 1 for e in episodes) / 4 and metrics["na"] == 0.0
    assert gamespec.metrics_of(setup.game_cls, setup.pm, episodes) == plugin.collect_metrics(episodes)

    deprecations = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    by_hook = {hook: [m for m in deprecations if f"the {hook} hook" in m] for hook in gamespec.OLD_HOOKS}
    assert {hook: len(found) for hook, found in by_hook.items()} == {
        "register_reward_fns": 1, "collect_metrics": 1, "game_outcome": 0,
    }  # fmt: skip
    assert len(deprecations) == 2
    (rewards,), (metrics_warning,) = by_hook["register_reward_fns"], by_hook["collect_metrics"]
    for message in (rewards, metrics_warning):
        assert message.startswith("Game 'describe_pick' (tests.fixtures.template_v0_1.DescribePickGame)")
        assert "tests.fixtures.template_v0_1" in message and "0.3" in message and "Migrating from 0.1" in message
    assert "declare reward_fns = (MyReward(), ...) on DescribePickGame instead" in rewards
    assert "declare a collect_metrics staticmethod on DescribePickGame instead" in metrics_warning


def test_a_migrated_game_draws_no_warning(caught, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin-template"))
    from vzframe_describe_pick import DescribePickGame  # the template as it is now

    check_game(DescribePickGame, {"candidates": 2}, episodes=4, teacher_episodes=0)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_vzframe_run_shows_the_deprecation_once(tiny_model_dir, tmp_path):
    """Python hides DeprecationWarnings outside __main__; the CLI shows vzframe's to its user."""
    result = subprocess.run(
        [sys.executable, "-m", "vzframe.cli", "run", "tests.fixtures.template_v0_1", "schedulers.hysteresis", "steps=1",
         "games_per_step=2", "rollout.max_new_tokens=8", f"output_dir={tmp_path / 'run'}", "--quiet"],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("DeprecationWarning") == 2, result.stderr[-3000:]
    for hook in ("register_reward_fns", "collect_metrics"):
        assert result.stderr.count(f"from the {hook} hook in tests.fixtures.template_v0_1") == 1
