"""vzframe.parsing, the total parsers the games share (the spy game's tests cover the vote
and clue forms in depth)."""

from __future__ import annotations

import doctest

from hypothesis import given, settings
from hypothesis import strategies as st

from vzframe import parsing
from vzframe.parsing import parse_choice, parse_vote
from vzframe.types import Action


def test_doctests():
    assert doctest.testmod(parsing).failed == 0


@settings(max_examples=150, deadline=None)
@given(st.text(), st.integers(1, 9), st.sampled_from(["player", "picture", "a.b*"]))
def test_parse_choice_is_total(text, options, noun):
    for completion in (text, f"<answer>{text}</answer>", f"<answer>{noun} {text}</answer>"):
        action = parse_choice(completion, options, noun=noun)
        assert action.kind in ("vote", "na", "invalid")
        assert action.kind != "vote" or action.value in range(1, options + 1)


def test_self_votes_only_when_allowed():
    assert parse_vote("<answer>2</answer>", 2, 4).kind == "invalid"
    assert parse_vote("<answer>Player 2</answer>", 2, 4, allow_self=True) == Action("vote", 2)
    assert parse_choice("<answer>Picture #3</answer>", 3, noun="picture") == Action("vote", 3)
    assert parse_choice("<answer>Player 3</answer>", 3, noun="picture").reason.startswith("not a picture number")
