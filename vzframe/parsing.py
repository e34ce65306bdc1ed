"""Total parsers of untrusted model output, shared by games.

Every function here accepts any string and returns a value: an unusable completion becomes
``Action("invalid", reason=...)``, never an exception. The answer format is the one the
Vision-Zero games use: ``<think>private reasoning</think><answer>public answer</answer>``,
where the last innermost ``<answer>…</answer>`` counts.
"""

from __future__ import annotations

import re

from vzframe.types import Action

TRUNCATED = " [...]"
"""Appended by ``public_text`` where it cuts a text."""

_ANSWER = re.compile(r"<answer>((?:(?!</?answer>).)*)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>((?:(?!</?think>).)*)</think>", re.DOTALL)
_NA = re.compile(r"n\s*/\s*a|n\.?a\.?|none|nobody|no\s*one|unsure|not\s*sure|unknown", re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]{0,64}\|>")
_QUOTES = " \t\r\n.!*\"'`"


def extract_answer(text: str) -> str | None:
    """Content of the last innermost ``<answer>…</answer>``, or None.

    >>> extract_answer("<think>hm</think><answer> 3 </answer>")
    ' 3 '
    >>> extract_answer("<answer>1</answer><answer><answer>2</answer>") , extract_answer("<answer>2")
    ('2', None)
    """
    last = None
    for last in _ANSWER.finditer(text):
        pass
    return None if last is None else last.group(1)


def extract_think(text: str) -> str:
    """Content of the first ``<think>…</think>``, stripped; empty if there is none.

    >>> extract_think("<think> red square </think><answer>x</answer>")
    'red square'
    """
    match = _THINK.search(text)
    return match.group(1).strip() if match else ""


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_clue(completion: str) -> Action:
    """A clue is the stripped, non-empty text of the last answer tag.

    >>> parse_clue("<think>...</think><answer>A red cube.</answer>")
    Action(kind='clue', value='A red cube.', reason='')
    >>> parse_clue("A red cube.").kind
    'invalid'
    """
    answer = extract_answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    if not answer.strip():
        return Action("invalid", None, reason="empty answer")
    return Action("clue", answer.strip())


def parse_choice(completion: str, options: int, *, noun: str = "player") -> Action:
    """A choice of one of ``1..options`` (kind ``vote``, value the number), ``na``, or
    ``invalid``. The answer may name the ``noun`` ("Player 3", "picture #2").

    >>> [parse_choice(f"<answer>{a}</answer>", 3, noun="picture").kind for a in ("2", "Picture 3", "n/a", "4", "two")]
    ['vote', 'vote', 'na', 'invalid', 'invalid']
    """
    answer = extract_answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    content = answer.strip(_QUOTES)
    if _NA.fullmatch(content):
        return Action("na")
    match = re.fullmatch(rf"(?:{re.escape(noun)}\s*)?#?\s*([0-9]{{1,6}})", content, re.IGNORECASE)
    if match is None:
        return Action("invalid", None, reason=f"not a {noun} number or N/A: {_excerpt(content)}")
    target = int(match.group(1))
    if not 1 <= target <= options:
        return Action("invalid", None, reason=f"no {noun} {target} ({noun}s are 1..{options})")
    return Action("vote", target)


def parse_vote(completion: str, voter: int, num_players: int, *, allow_self: bool = False) -> Action:
    """A vote for a player 1..N, ``na``, or ``invalid`` (no such player, anything else, and a
    vote for yourself unless ``allow_self``).

    >>> [parse_vote(f"<answer>{a}</answer>", 1, 4).kind for a in ("3", "Player 2", "N/A", "1", "5")]
    ['vote', 'vote', 'na', 'invalid', 'invalid']
    >>> parse_vote("<answer>1</answer>", 1, 4, allow_self=True)
    Action(kind='vote', value=1, reason='')
    """
    action = parse_choice(completion, num_players)
    if action.kind == "vote" and action.value == voter and not allow_self:
        return Action("invalid", None, reason=f"voted for self (player {voter})")
    return action


def public_text(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """``text`` as other players see it: one line, no chat special tokens, at most ``limit``
    chars (then ``marker``).

    >>> public_text("a  red\\n cube<|im_end|>", 8)
    'a red cu [...]'
    """
    flat = " ".join(_SPECIAL_TOKEN.sub("", text).split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + marker
