"""The template game's own tests: the vzframe conformance kit, the rewards, the metrics."""

import doctest
import itertools

import vzframe_describe_pick as plugin
from PIL import Image

from vzframe.testing import check_game
from vzframe.types import ImageItem

REWARD_FNS = {"pick.guess": plugin.GuessReward(), "pick.clue": plugin.ClueReward()}


def test_check_game():
    for candidates in (2, 5):
        report = check_game(plugin.DescribePickGame, {"candidates": candidates}, reward_fns=REWARD_FNS)
        assert report.turns_by_stage == {"clue": 50, "decision": 50}
        assert set(report.metrics) == set(plugin.DescribePickGame.metrics)  # collect_metrics, found beside the game


def test_doctests():
    assert doctest.testmod(plugin).failed == 0


def play(seed: int, pick: str):
    counter = itertools.count()
    draw = lambda: ImageItem(f"p{next(counter)}", Image.new("RGB", (56, 56)))  # noqa: E731
    game = plugin.DescribePickGame(plugin.Config(candidates=3), seed=seed, images=draw)
    game.step(1, "<answer>A black square.</answer>")
    assert len(game.observe(2).images) == 3 and "A black square." in game.observe(2).prompt_text()
    game.step(2, pick.format(target=game.target))
    return game.episode()


def test_rewards_and_metrics():
    right, unsure = play(0, "<answer>Picture {target}</answer>"), play(1, "<answer>N/A</answer>")
    assert plugin.GuessReward()(right, plugin.Config()) == {1: 1.0}
    assert plugin.ClueReward()(right, plugin.Config()) == {0: 1.0}
    assert plugin.ClueReward()(unsure, plugin.Config()) == {0: 0.0}
    assert plugin.collect_metrics(episodes=[right, unsure]) == {"acc": 0.5, "na": 0.5}
    assert plugin.collect_metrics(episodes=[]) is None
