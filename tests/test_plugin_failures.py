"""Plugin failures are contained: a game, a collect_metrics hook or a reward function that
raises or returns malformed data stops the run with an error naming the plugin and the
method, never a bare traceback from inside the runtime. The misbehaving plugin is
tests/fixtures/faulty_game.py, loaded by module path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vzframe.advantages import RoleBaselines, score
from vzframe.config import load_config
from vzframe.plugins import PluginError, check_metrics
from vzframe.rollout import Generation
from vzframe.rollout.play import ImageCursor, play
from vzframe.runtime import resolve, step_metrics

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = "tests.fixtures.faulty_game"
CLASS = f"{FIXTURE}.FaultyGame"


class ScriptedEngine:
    """Answers every observation with the same text, as an engine would."""

    def generate(self, observations):
        return [Generation("<answer>N/A</answer>", (1,), 1) for _ in observations]


def setup_of(**game):
    overrides = ["game.num_players=3", "game.clue_rounds=1", *(f"game.{k}={v}" for k, v in game.items())]
    return resolve(load_config(None, overrides, [FIXTURE, "schedulers.decision_only"]))


def played(setup, n: int = 2):
    images = ImageCursor(setup.image_source, rank=0, world=1)
    games = [setup.game_cls(setup.game_config, seed=i, images=images.draw) for i in range(n)]
    return play(games, ScriptedEngine()).episodes


def test_a_healthy_faulty_game_plays_scores_and_measures():
    setup = setup_of()
    episodes = score(played(setup), setup.game_cls.phases, setup.reward_fns, setup.game_config)
    assert all(t.reward is not None for ep in episodes for t in ep.turns)
    assert step_metrics(setup, episodes, {}, RoleBaselines())["acc"] == 0.0


@pytest.mark.parametrize(
    "method, call", [("to_act", "to_act()"), ("observe", "observe(player=1)"), ("step", "step(player=1, '<answer>N/A</answer>')"), ("episode", "episode()")]
)
def test_a_game_that_raises_names_the_game_and_the_method(method, call):
    with pytest.raises(PluginError) as err:
        played(setup_of(fail_in=method))
    message = str(err.value)
    assert message.startswith(f"Game 'faulty' ({CLASS}) in {call} raised RuntimeError: injected failure in {method}")
    assert re.search(r"at .*faulty_game\.py:\d+ in _maybe_fail$", message)


def test_collect_metrics_that_raises_names_the_plugin_and_the_hook():
    setup = setup_of(fail_in="collect_metrics")
    with pytest.raises(PluginError, match=rf"^Plugin '{FIXTURE}' in hook collect_metrics raised ZeroDivisionError: injected"):
        step_metrics(setup, played(setup), {}, RoleBaselines())


def test_collect_metrics_returning_a_non_number_is_rejected():
    setup = setup_of(fail_in="metrics_type")
    with pytest.raises(PluginError, match=rf"Plugin '{FIXTURE}': collect_metrics returned 'acc': 'high'"):
        step_metrics(setup, played(setup), {}, RoleBaselines())


@pytest.mark.parametrize(
    "bad, message",
    [
        ("nan", r"Reward function 'faulty.vote' gave turn 3 a non-finite reward nan"),
        ("missing_turn", r"Reward function 'faulty.vote' scored turn 11, which is not a turn of its stage \(valid: \[3, 4, 5\]\)"),
    ],
)
def test_malformed_rewards_stop_scoring(bad, message):
    setup = setup_of(bad_reward=bad)
    with pytest.raises(PluginError, match=message):
        score(played(setup), setup.game_cls.phases, setup.reward_fns, setup.game_config)


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        ("game.bad_reward=nan", ("error: Reward function 'faulty.vote' gave turn 3 a non-finite reward nan.",)),
        ("game.fail_in=step", (f"error: Game 'faulty' ({CLASS}) in step(player=1, '", "') raised RuntimeError: injected failure in step")),
    ],
)
def test_a_run_stops_with_the_message(override, message, tiny_model_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vzframe.cli", "run", FIXTURE, "schedulers.decision_only", "steps=2", "games_per_step=1",
         "rollout.max_new_tokens=4", "game.num_players=3", "game.clue_rounds=1", override,
         f"output_dir={tmp_path / 'run'}", "--quiet"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert all(part in result.stderr for part in message) and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # nothing was trained on


def test_check_metrics_accepts_numbers_only():
    import numpy as np

    assert check_metrics("p", {"acc": np.float32(0.5), "n": 2}) == {"acc": 0.5, "n": 2.0}
    assert check_metrics("p", None) == {}
    for bad in ([0.5], {"acc": True}, {1: 0.5}, {"acc": None}):
        with pytest.raises(PluginError, match="Plugin 'p': collect_metrics returned"):
            check_metrics("p", bad)


def test_observer_hook_error_names_plugin_and_hook(tmp_path, tiny_model_dir):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "vzframe", "run", "games.spy", "schedulers.hysteresis", "tests.fixtures.raising_logger",
         "steps=2", "games_per_step=1", "rollout.max_new_tokens=4", "checkpoint_every=0", f"output_dir={tmp_path / 'run'}", "--quiet"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Plugin 'tests.fixtures.raising_logger' in hook on_step_end raised ConnectionError: logging server unreachable" in result.stderr
    assert "Traceback" not in result.stderr
