"""The template game's own tests: the vzframe conformance kit, the rewards, the metrics, the teacher."""

import doctest
import itertools
import random
import re

import vzframe_describe_pick as plugin
from PIL import Image

from vzframe.parsing import without_article
from vzframe.protocols import Facts
from vzframe.testing import check_game, image_source
from vzframe.types import ImageItem

Game = plugin.DescribePickGame


def test_check_game():
    for candidates in (2, 5):
        report = check_game(Game, {"candidates": candidates})  # with its reward_fns and collect_metrics
        assert report.turns_by_stage == {"clue": 50, "decision": 50}
        assert set(report.metrics) == set(Game.metrics)
        assert report.teacher_turns == 20 and report.teacher_truth == 1.0  # the teacher, on clevr_toy pictures


def test_doctests():
    assert doctest.testmod(plugin).failed == 0


def play(seed: int, pick: str):
    counter = itertools.count()
    draw = lambda: ImageItem(f"p{next(counter)}", Image.new("RGB", (56, 56)))  # noqa: E731
    game = Game(plugin.Config(candidates=3), seed=seed, images=draw)
    game.step(1, "<answer>A black square.</answer>")
    assert len(game.observe(2).images) == 3 and "A black square." in game.observe(2).prompt_text()
    game.step(2, pick.format(target=game.target))
    return game.episode()


def test_rewards_and_metrics():
    right, unsure = play(0, "<answer>Picture {target}</answer>"), play(1, "<answer>N/A</answer>")
    assert plugin.GuessReward()(right, plugin.Config()) == {1: 1.0}
    assert plugin.ClueReward()(right, plugin.Config()) == {0: 1.0}
    assert plugin.ClueReward()(unsure, plugin.Config()) == {0: 0.0}
    assert Game.collect_metrics([right, unsure]) == {"acc": 0.5, "na": 0.5}
    assert Game.collect_metrics([]) is None


def test_teacher():
    """The teacher names a thing only the target shows, and the picker finds it from that; it
    answers N/A when the description fits several pictures (or none)."""
    source = image_source("clevr_toy")
    facts, teacher = Facts.of(source), Game.teacher
    episodes = []
    for seed in range(100):
        pictures = itertools.count(8 * seed)
        game = Game(plugin.Config(candidates=3), seed=seed, images=lambda: source.get(next(pictures)))
        rng = random.Random(seed)
        clue = teacher.act(game, 1, facts, rng)
        assert teacher.clue_truth(game, 1, clue, facts) is True
        game.step(1, clue)
        assert teacher.clue_truth(game, 2, "<answer>1</answer>", facts) is None  # a pick states nothing
        game.step(2, teacher.act(game, 2, facts, rng))
        episodes.append(game.episode())
    metrics = Game.collect_metrics(episodes)
    assert metrics["acc"] > 0.8 and metrics["acc"] + metrics["na"] == 1.0  # never a wrong pick

    game.turns.clear()  # the last game again, with a description that fits every picture
    shared = set.intersection(*({p.lower() for p in facts.describe(pic)} for pic in game.pictures))
    game.step(1, f"<answer>There is {sorted(shared)[0]}.</answer>" if shared else "<answer>A picture.</answer>")
    assert teacher.act(game, 2, facts, random.Random(0)).endswith("<answer>N/A</answer>")
    for lie in ("<answer>There is a pink dodecahedron.</answer>", "There is nothing.", "<answer></answer>"):
        assert teacher.clue_truth(game, 1, lie, facts) is False


def test_teacher_vote_is_its_checks():
    """The picker's reasoning is one check per picture, in order: its number, the claim (the
    description's thing without its article) and "yes" exactly when that picture shows it. Its
    answer is what the checks imply: the one "yes" picture, else N/A."""
    source = image_source("clevr_toy")
    facts, teacher = Facts.of(source), Game.teacher
    verdicts, answers = set(), set()
    for seed in range(40):  # 2 to 8 pictures: among many, a description now and then fits several
        pictures = itertools.count(8 * seed)
        game = Game(plugin.Config(candidates=2 + seed % 7), seed=seed, images=lambda: source.get(next(pictures)))
        game.step(1, teacher.act(game, 1, facts, random.Random(seed)))
        vote = re.fullmatch(r"<think>(.*)\.</think><answer>(.*)</answer>", teacher.act(game, 2, facts, random.Random(seed)))
        checked = [re.fullmatch(r"(\d+) (.+) (yes|no)", check).groups() for check in vote[1].split(", ")]
        claim = without_article(plugin.stated(game.turns[0].action.value))
        shown = [{without_article(p.lower()) for p in facts.describe(picture)} for picture in game.pictures]
        assert checked == [(str(k), claim, "yes" if claim in phrases else "no") for k, phrases in enumerate(shown, 1)]
        yes = [k for k, _, verdict in checked if verdict == "yes"]
        assert vote[2] == (yes[0] if len(yes) == 1 else "N/A")
        verdicts |= {verdict for *_, verdict in checked}
        answers.add(vote[2] == "N/A")
    assert verdicts == {"yes", "no"} and answers == {True, False}  # picks and N/A, "yes" and "no"


def test_register_probes_shows_probe_asks_what_describe_says():
    source = image_source("clevr_toy", seed=2**63 + 1)  # probe seeds lie above every run seed
    items = plugin.ShowsProbe().items(source, 20, 0)
    assert len(items) == 20 and {i.answers for i in items} == {("yes",), ("no",)}
    for item in items:
        phrase = item.question.removeprefix("Does the picture show ").removesuffix("?")
        assert (phrase in source.describe(item.image)) == (item.answers == ("yes",))
        assert plugin.ShowsProbe().score(item, item.answers[0]) == 1.0
