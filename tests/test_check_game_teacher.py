"""check_game checks a game's teacher: it plays whole games in every seat on pictures it can
describe, and catches a teacher whose moves are invalid or nondeterministic, that changes the
game it reads, or whose clue_truth is not a bool or None or does not judge by the player's
picture, with the seed and turn in the message."""

from __future__ import annotations

import random
import re

import pytest

from games.spy import SpyGame
from games.spy.teacher import SpyTeacher
from tests.fixtures import careless_game as careless
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
        (Liar(), r"Taught.teacher.clue_truth judged only 0 of the teacher's 12 own clues true .*, in 2 episodes \(seeds 0..1, images=clevr_toy\)"),
        (Meddler(), r"episode 0 \(seed=0, images=clevr_toy\) turn 0: teacher.act\(game, 1, facts, rng\) changed the game: game._clue_pos was 0, now 1"),
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


# ---- mistakes that used to pass (tests/fixtures/careless_game.py) ------------------------------

CHANGES = r"changed the game: {}\. teacher\.{} must only read the game"

CARELESS = [
    (careless.taught(careless.SortingTeacher()), r"turn 5: teacher.act\(game, 2, facts, rng\) " + CHANGES.format(r"game._clues\[1\]\[0\] was 1, now 2", "act")),
    (careless.taught(careless.PoppingTeacher()), r"turn 4: teacher.act\(game, 1, facts, rng\) " + CHANGES.format(r"game._reasoning\[1\] had 1 items, now 0", "act")),
    (
        careless.taught(careless.BorrowingTeacher(), careless.SeededSpy),
        r"turn 3: teacher.act\(game, 4, facts, rng\) " + CHANGES.format(r"game.rng \(a random.Random\) had its state advanced: draw from the rng passed to act instead", "act"),
    ),
    (careless.taught(careless.TidyingTeacher()), r"turn 0: teacher.act\(game, 1, facts, rng\) " + CHANGES.format(r"game._citizen_image.meta\['objects'\]\[0\]\['shape'\] was 'cylinder', now 'cube'", "act")),
    (careless.taught(careless.ShrinkingTeacher()), CHANGES.format(r"game._citizen_image.image was a RGB picture of size \(168, 112\), now a RGB picture of size \(32, 21\)", "act")),
    (careless.taught(careless.CachingTruth()), r"turn 0: teacher.clue_truth\(game, 1, .*, facts\) " + CHANGES.format("game._phrases was added", "clue_truth")),
]


@pytest.mark.parametrize(("game", "message"), CARELESS, ids=[g.__name__ for g, _ in CARELESS])
def test_check_game_catches_a_teacher_that_changes_the_game(game, message):
    with pytest.raises(AssertionError, match=rf"{game.__name__}.teacher episode 0 \(seed=0, images=clevr_toy\) .*{message}"):
        check_game(game, **QUICK)


def test_a_teacher_may_read_everything_and_observe_anyone():
    class Reader(SpyTeacher):
        """Reads every player's view, the roles, and the clues sorted into a copy."""

        def act(self, game, player, facts, rng):
            views = [game.observe(p) for p in game.seats]
            roles = [game.role_of(p) for p in game.seats]
            assert len(views) == len(roles) and sorted(game._clues, key=lambda clue: clue[1]) is not game._clues
            return super().act(game, player, facts, rng)

    assert check_game(with_teacher(Reader()), **QUICK).teacher_turns == 2 * 11


def test_check_game_catches_a_clue_truth_that_ignores_the_picture():
    """True for every move, or for any clue of the right form: true of the next seed's
    pictures as often as of its own."""
    for teacher in (careless.YesMan(), careless.FormChecker()):
        with pytest.raises(AssertionError) as info:
            check_game(careless.taught(teacher), **QUICK)
        message = str(info.value)
        assert re.match(
            rf"{type(teacher).__name__}Game.teacher.clue_truth judged (\d+) of the teacher's \1 clues that it judged true "
            r"of their own pictures true of other pictures as well \(the same games, seats and moves replayed on the next "
            r"seed's pictures\), in 2 episodes \(seeds 0..1, images=clevr_toy\)\. A clue about one picture is mostly "
            r"false of another: an honest clue_truth judges at most about 30% of them true",
            message,
        ), message
        assert "clue_truth must answer True only when the move states something the player's own picture shows" in message
        assert "docs/plugins.md 'A teacher'" in message


def test_check_game_catches_a_clue_truth_that_judges_most_true_clues_false():
    """New taken for true: with three clue rounds most true clues repeat an earlier one."""
    with pytest.raises(AssertionError) as info:
        check_game(careless.taught(careless.NoveltyJudge()), {"clue_rounds": 3}, **QUICK)
    message = str(info.value)
    assert message.startswith(
        "NoveltyJudgeGame.teacher.clue_truth judged only 7 of the teacher's 18 own clues true (of its True/False "
        "verdicts), in 2 episodes (seeds 0..1, images=clevr_toy); at least 50% should be"
    ), message
    assert "judges something else than truth (a clue's novelty" in message and "docs/plugins.md 'A teacher'" in message


def test_the_truth_checks_pass_the_shipped_teachers_on_every_describing_source():
    """The margins of vzframe._teacher_kit (OWN_TRUE_MIN, CROSS_TRUE_BOUND) on a few games of
    each source; the measured figures are in its comment."""
    from games.odd_one_out import OddOneOutGame

    for game in (SpyGame, OddOneOutGame):
        for source in ("clevr_toy", "clevr", "charts"):
            report = check_game(game, episodes=0, teacher_episodes=3, images=image_source(source, {"supersample": 1}))
            assert report.teacher_truth == 1.0
