"""vzframe.parsing, the total parsers the games share (the spy game's tests cover the vote
and clue forms in depth)."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vzframe import parsing
from vzframe.parsing import extract_think, normalize_answer, parse_choice, parse_clue, parse_vote, public_text
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


# ---- long, adversarial inputs: the right result (each parser is linear; see bench/parsing.py)

N = 100_000


@pytest.mark.parametrize(
    "completion, kind, value",
    [
        ("<answer>player" + " " * N + "x</answer>", "invalid", None),
        ("<answer>player" + " " * N + "3</answer>", "vote", 3),
        ("<answer>" + " " * N + "3" + "\u200b" * N + "</answer>", "vote", 3),
        ("<answer>n" + "\n" * N + "/ a</answer>", "na", None),
        ("<answer>" * N, "invalid", None),
        ("<answer>" * N + "2</answer>", "vote", 2),
        ("<answer>2</answer>" + "<answer>" * N, "vote", 2),
        ("</answer>" * N + "<answer>3</answer>", "vote", 3),
        ("<think>" * N + "<answer>3</answer>", "vote", 3),
        ("<answer>3" + "</answer>" * N, "vote", 3),
        ("<answer>" + "player " * N + "3</answer>", "invalid", None),
        ("<answer>player #" + "#" * N + "3</answer>", "invalid", None),
        ("<answer>" + "9" * N + "</answer>", "invalid", None),
        ("<answer>" + "1 " * N + "</answer>", "invalid", None),
        ("<answer>" + "<" * N + "3</answer>", "invalid", None),
        ("<answer" * N + ">3</answer>", "vote", 3),
        ("x" * N, "invalid", None),
    ],
)
def test_long_adversarial_votes(completion, kind, value):
    action = parse_vote(completion, 1, 4)
    assert (action.kind, action.value) == (kind, value)


def test_long_adversarial_clues_and_text():
    assert parse_clue("<answer>" + "word \u2028 " * N + "</answer>") == Action("clue", " ".join(["word"] * N))
    assert parse_clue("<answer>" * N + "</answer>").kind == "invalid"
    assert extract_think("<think>" * N + "a</think>" * N) == "a"
    assert extract_think("<think>" * N) == ""
    shown = public_text("<|im_" * N + "<|x|>" + "end|>" * N + "<|" * N + "|>" * N, 10 * N)
    assert "<|" not in shown and "|>" not in shown


# ---- answers that look alike parse alike ----------------------------------------------------

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u202e"
SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2003\u200a\u2028\u2029\u202f\u205f\u3000"
VALID = st.sampled_from(["{k}", "Player {k}", "player #{k}", "#{k}", "**{k}**", "{k}.", "N/A", "n / a", "NA", "none", "no one", "Unsure"])


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


@st.composite
def disguised(draw, text: str) -> str:
    """``text`` in full width or not, with zero-width characters anywhere and Unicode spaces
    (and zero-width characters) at both ends."""
    text = full_width(text) if draw(st.booleans()) else text
    chars = list(text)
    for _ in range(draw(st.integers(0, 4))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(ZERO_WIDTH)))
    ends = st.text(st.sampled_from(SPACES + ZERO_WIDTH), max_size=4)
    return draw(ends) + "".join(chars) + draw(ends)


@settings(max_examples=300, deadline=None)
@given(VALID, st.integers(1, 6), st.data())
def test_equivalent_answers_parse_alike(form, k, data):
    answer = form.format(k=k)
    plain = parse_vote(f"<answer>{answer}</answer>", 1, 4)
    assert plain.kind in ("vote", "na") or k in (1, 5, 6)
    other = parse_vote(f"<answer>{data.draw(disguised(answer))}</answer>", 1, 4)
    assert (other.kind, other.value) == (plain.kind, plain.value)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_characters="<>")), st.data())
def test_equivalent_texts_normalise_alike(text, data):
    other = data.draw(disguised(text))
    assert normalize_answer(other) == normalize_answer(text)
    assert parse_clue(f"<answer>{other}</answer>") == parse_clue(f"<answer>{text}</answer>")
    assert parse_choice(f"<answer>{other}</answer>", 9) == parse_choice(f"<answer>{text}</answer>", 9)


@pytest.mark.parametrize("space", ["\xa0", "\u2028", "\x0b", "\x0c", "\x85", "\u200b", "\ufeff"])
def test_invisible_characters_at_either_end(space):
    for answer in (f"{space}2", f"2{space}", f"{space}2{space}", "２", f"Player{space}2"):
        assert parse_vote(f"<answer>{answer}</answer>", 1, 4) == Action("vote", 2)
    assert parse_clue(f"<answer>{space}a {space} red{space}{space} cube{space}</answer>").value == "a red cube"
