"""check_game checks a game's teacher: it plays whole games in every seat on pictures it can
describe, and catches a teacher whose moves are invalid, nondeterministic, or whose
clue_truth is not a bool or None, with the seed and turn in the message."""

from __future__ import annotations

import random

import pytest

from games.spy import SpyGame
from games.spy.teacher import SpyTeacher
from vzframe.testing import check_game, image_source

QUICK = {"episodes": 1, "teacher_episodes": 2}


def with_teacher(teacher) -> type:
    """SpyGame with another teacher."""
    return type("Taught", (SpyGame,), {"teacher": teacher})


class Recording(SpyTeacher):
    """The spy teacher, noting the pictures it was shown."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def act(self, game, player, facts, rng):
        self.seen.add(game.observe(player).images[0].id.split(":")[0])
        return super().act(game, player, facts, rng)


def test_the_spy_teacher_passes_and_is_reported():
    report = check_game(SpyGame, episodes=2, teacher_episodes=3)
    assert report.teacher_turns == 3 * 11 and report.teacher_truth == 1.0


def test_a_game_without_a_teacher_or_with_teacher_episodes_0_plays_none():
    report = check_game(SpyGame, episodes=1, teacher_episodes=0)
    assert (report.teacher_turns, report.teacher_truth) == (0, None)


def test_the_teacher_plays_on_a_describing_source_passed_else_on_clevr_toy():
    teacher = Recording()
    check_game(with_teacher(teacher), images=image_source("charts", {"supersample": 1}), **QUICK)
    assert teacher.seen == {"charts", "blank"}
    teacher = Recording()
    check_game(with_teacher(teacher), images=image_source("shapes"), **QUICK)  # shapes cannot describe
    assert teacher.seen == {"clevr_toy", "blank"}
    teacher = Recording()
    check_game(with_teacher(teacher), **QUICK)
    assert teacher.seen == {"clevr_toy", "blank"}


class Mute(SpyTeacher):
    def act(self, game, player, facts, rng):
        return "" if game.stage == "decision" else super().act(game, player, facts, rng)


class Restless(SpyTeacher):
    """Takes its randomness from its own counter, not from the rng it is given."""

    calls = 0

    def act(self, game, player, facts, rng):
        Restless.calls += 1
        return super().act(game, player, facts, random.Random(Restless.calls))


class Vague(SpyTeacher):
    def clue_truth(self, game, player, completion, facts):
        return "yes"


class Liar(SpyTeacher):
    def clue_truth(self, game, player, completion, facts):
        return False if super().clue_truth(game, player, completion, facts) is not None else None


class Meddler(SpyTeacher):
    def act(self, game, player, facts, rng):
        move = super().act(game, player, facts, rng)
        game.step(player, move)
        return move


class Crasher(SpyTeacher):
    def act(self, game, player, facts, rng):
        raise KeyError("objects")


class Silent(SpyTeacher):
    def act(self, game, player, facts, rng):
        return None


class NoTruth:
    def act(self, game, player, facts, rng):
        return "<answer>N/A</answer>"


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        (Mute(), r"Taught.teacher episode 0 \(seed=0, images=clevr_toy\) turn 8: the teacher's move '' for player \d \(citizen, stage 'decision'\) parsed to Action\(kind='invalid'"),
        (Restless(), r"Taught.teacher episode 0 \(seed=0, images=clevr_toy\) turn \d+: same seed, different teacher moves"),
        (Vague(), r"episode 0 \(seed=0, images=clevr_toy\) turn 0: teacher.clue_truth for player 1 returned 'yes'; expected True, False or None"),
        (Liar(), r"Taught.teacher.clue_truth judged all \d+ of the teacher's own moves .* False, in 2 episodes \(seeds 0..1\)"),
        (Meddler(), r"episode 0 \(seed=0, images=clevr_toy\) turn 0: the teacher changed the game"),
        (Crasher(), r"episode 0 \(seed=0, images=clevr_toy\) turn 0: teacher.act\(game, 1, facts, rng\) raised KeyError"),
        (Silent(), r"turn 0: teacher.act for player 1 returned None, not a str"),
        (NoTruth(), r"Taught.teacher \(NoTruth\) lacks \['clue_truth'\]"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_check_game_catches_a_broken_teacher(teacher, message):
    with pytest.raises(AssertionError, match=message):
        check_game(with_teacher(teacher), **QUICK)


def test_a_teacher_game_longer_than_max_steps_is_caught():
    with pytest.raises(AssertionError, match=r"SpyGame.teacher episode 0 \(seed=0, images=clevr_toy\): did not end within 5 teacher moves"):
        check_game(SpyGame, episodes=0, teacher_episodes=1, max_steps=5)


def test_the_docs_teacher_example_passes_check_game(tmp_path, monkeypatch):
    """The complete example of docs/plugins.md "A teacher (optional)", saved as a module."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "class SayTeacher" in b]
    (tmp_path / "say_example.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    from say_example import SayGame

    report = check_game(SayGame, episodes=6, teacher_episodes=4)
    assert report.teacher_turns == 4 and report.teacher_truth == 1.0
