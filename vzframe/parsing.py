"""Total parsers of untrusted model output, shared by games.

Every function here accepts any string and returns a value: an unusable completion becomes
``Action("invalid", reason=...)``, never an exception. The answer format is the one the
Vision-Zero games use: ``<think>private reasoning</think><answer>public answer</answer>``,
where the last innermost ``<answer>…</answer>`` counts.

Every function takes time linear in its input: tags are found by one scan, patterns have no
overlapping quantifiers, and a choice longer than ``MAX_CHOICE_CHARS`` is invalid unread.
Every answer is normalised once (``normalize_answer``), so forms that look alike parse alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from vzframe.types import Action

TRUNCATED = " [...]"
"""Appended by ``public_text`` where it cuts a text."""

MAX_CHOICE_CHARS = 64
"""A choice answer (normalised) longer than this is invalid: "Player 3" needs 8 characters."""

_TAGS = {name: re.compile(f"</?{name}>") for name in ("answer", "think")}
_NA = re.compile(r"n ?/ ?a|n\.?a\.?|none|nobody|no ?one|unsure|not ?sure|unknown", re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]{0,64}\|>")
_TOKEN_OPEN, _TOKEN_CLOSE = re.compile(r"<\|+"), re.compile(r"\|+>")
_QUOTES = " .!*\"'`"


def _tagged(text: str, name: str, *, last: bool) -> str | None:
    """Content of the first (or last) innermost ``<name>…</name>`` in one scan, or None."""
    found, opened = None, None
    for tag in _TAGS[name].finditer(text):
        if tag.group().startswith("</"):
            if opened is not None:
                found, opened = (opened, tag.start()), None
                if not last:
                    break
        else:
            opened = tag.end()
    return None if found is None else text[found[0] : found[1]]


def extract_answer(text: str) -> str | None:
    """Content of the last innermost ``<answer>…</answer>``, as written, or None.

    >>> extract_answer("<think>hm</think><answer> 3 </answer>")
    ' 3 '
    >>> extract_answer("<answer>1</answer><answer><answer>2</answer>") , extract_answer("<answer>2")
    ('2', None)
    """
    return _tagged(text, "answer", last=True)


def extract_think(text: str) -> str:
    """Content of the first innermost ``<think>…</think>``, stripped; empty if there is none.

    >>> extract_think("<think> red square </think><answer>x</answer>")
    'red square'
    """
    return (_tagged(text, "think", last=False) or "").strip()


def normalize_answer(text: str) -> str:
    """``text`` without format (zero-width, Unicode category Cf) characters, in NFKC form,
    every run of Unicode whitespace one space, stripped: what every parser reads.

    >>> normalize_answer("\\u200b Ｐｌａｙｅｒ\\xa0\\u2028 ３\\x85")
    'Player 3'
    """
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(unicodedata.normalize("NFKC", visible).split())


def without_article(phrase: str) -> str:
    """``phrase`` without a leading "a", "an" or "the" (words split on whitespace, joined by
    one space; an article alone is kept): what a check repeats of a claim.

    >>> without_article("a red cube"), without_article("an  orange sphere"), without_article("my picture is blank")
    ('red cube', 'orange sphere', 'my picture is blank')
    >>> without_article("a")
    'a'
    """
    words = phrase.split()
    return " ".join(words[1:] if len(words) > 1 and words[0] in ("a", "an", "the") else words)


def _answer(completion: str) -> str | None:
    answer = extract_answer(completion)
    return None if answer is None else normalize_answer(answer)


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_clue(completion: str) -> Action:
    """A clue is the normalised, non-empty text of the last answer tag.

    >>> parse_clue("<think>...</think><answer>A red\\n\\n cube.</answer>")
    Action(kind='clue', value='A red cube.', reason='')
    >>> parse_clue("A red cube.").kind
    'invalid'
    """
    answer = _answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    if not answer:
        return Action("invalid", None, reason="empty answer")
    return Action("clue", answer)


def parse_choice(completion: str, options: int, *, noun: str = "player") -> Action:
    """A choice of one of ``1..options`` (kind ``vote``, value the number), ``na``, or
    ``invalid``. The answer may name the ``noun`` ("Player 3", "picture #2").

    >>> [parse_choice(f"<answer>{a}</answer>", 3, noun="picture").kind for a in ("2", "Picture 3", "n/a", "4", "two")]
    ['vote', 'vote', 'na', 'invalid', 'invalid']
    """
    answer = _answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    content = answer.strip(_QUOTES)
    if len(content) > MAX_CHOICE_CHARS:
        return Action("invalid", None, reason=f"answer over {MAX_CHOICE_CHARS} characters: {_excerpt(content)}")
    if _NA.fullmatch(content):
        return Action("na")
    match = re.fullmatch(rf"(?:{re.escape(noun)} ?)?#? ?([0-9]{{1,6}})", content, re.IGNORECASE)
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
    """``text`` as other players see it: normalised (``normalize_answer``), one line, at most
    ``limit`` chars (then ``marker``), without chat special tokens. ``<|im_end|>``-shaped
    tokens are removed, and then every ``<|`` and ``|>`` loses its bars, so that no such
    token can be left or rebuilt, however the text nests its pieces.

    >>> public_text("a  red\\n cube<|im_end|>", 8)
    'a red cu [...]'
    >>> public_text("cube<|im_<|x|>end|>\\n<|im_<|x|>start|>system", 99)
    'cube<im_end> <im_start>system'
    """
    flat = " ".join(_SPECIAL_TOKEN.sub("", normalize_answer(text)).split())
    flat = _TOKEN_CLOSE.sub(">", _TOKEN_OPEN.sub("<", flat))
    return flat if len(flat) <= limit else flat[:limit].rstrip() + marker


def neutralize_special_tokens(text: str, tokens: Iterable[str]) -> str:
    """``text`` with every occurrence of ``tokens`` removed until none is left, even one that
    a removal would join together, in time linear in ``len(text)`` (times the tokens' lengths).

    One scan keeps the output on a stack that never contains a token: after each character,
    a token ending there is popped, which leaves an earlier, token-free state.

    >>> neutralize_special_tokens("a<|im_<|im_end|>end|>b<s>", ["<|im_end|>", "<s>"])
    'ab'
    """
    tokens = {t for t in tokens if t}
    if not any(t in text for t in tokens):
        return text
    last_chars = {t[-1] for t in tokens}
    lengths = sorted({len(t) for t in tokens})
    out: list[str] = []
    for char in text:
        out.append(char)
        if char in last_chars:
            for n in lengths:
                if n <= len(out) and "".join(out[-n:]) in tokens:
                    del out[-n:]
                    break
    return "".join(out)
