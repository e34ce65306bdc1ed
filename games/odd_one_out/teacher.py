"""``OddTeacher``: the scripted player of Odd One Out (``OddOneOutGame.teacher``), what
``vzframe model build-toy --game games.odd_one_out`` warm-starts a model on.

It plays every seat honestly, knowing only what that player could: its own picture (through
``Facts.describe``) and the public clues. It never reads who is odd.

| Stage | What the teacher does |
|---|---|
| clue | ``There is a red cube.``: a phrase true of the speaker's own picture, preferring one nobody has said yet. A player whose picture seems to differ (most of the others who spoke said something not in it) blends in with probability ``blend``: it repeats a phrase another player said that is true of its own picture too, if there is one |
| decision | The voter checks each other player's clues against its own picture, noticing a clue that does not fit with probability ``notice``, and writes the checks out (``checks``): ``<think>1 red cube yes, 3 blue sphere no, 4 gray cylinder yes; 1 red cube yes, 3 green cube no, 4 ...</think>``. Exactly one player got a "no": vote for it. "No" for most of the others: its own picture is probably the odd one, vote for itself. Otherwise (nobody, or several but not most): N/A |

A vote's reasoning gives one verdict per clue of the other players, in the order they were
said, a round at a time, each after the claim it judges, as the spy teacher's does
(``games.spy.teacher.checks``) and as build-toy's check stage teaches one check on its own:
the vote is then a lookup in the voter's own verdicts. A verdict is what the voter noticed,
not the truth: a misfit it overlooks gets "yes", so the answer follows from the reasoning
written before it.

Every clue is true of the speaker's picture, so the errors come from the pictures and from
attention, as a player's would: an odd player whose clues all fit picture A, or whose
misfits a voter overlooks, goes unnoticed (N/A); a common player whose clues happen to fit
picture B looks like the only one who fits to the odd voter (a wrong vote).

Measured with ``blend=0.5, notice=0.6`` on ``clevr_toy`` pictures (seed 0, ``fov`` 30),
default config (4 players, 2 clue rounds), 400 teacher games (1,600 votes), each game's rng
``random.Random(f"teacher:{seed}")`` as ``check_game`` seeds it: vote accuracy 0.799
(binomial standard error 0.010; chance 0.25), N/A rate 0.169 (0.009), wrong votes 0.031;
the odd one got the most votes in 0.97 of games and voted for itself in 0.86; every clue was
true of its speaker's picture (the same votes as when the reasoning was one line, "Player 3
does not fit my picture.": the verdicts only write out what the voter noticed).
``tests/test_teacher_odd.py`` checks the band on 300 games. Without attention
(``notice=1``) the votes are nearly perfect (accuracy 0.97 at ``blend=0.5``): on
``clevr_toy`` two pictures rarely share a kind of object, so a misfit is almost always there
to see.
"""

from __future__ import annotations

import random
import re
from typing import Any

from games.clue_vote import written_checks
from vzframe.parsing import extract_answer, normalize_answer, without_article
from vzframe.protocols import Facts

BLEND = 0.5
"""Chance that a player whose picture seems to differ from the others' clues blends in."""
NOTICE = 0.6
"""Chance that a voter notices that a clue does not fit its picture (it checks each clue):
the teacher's imperfect attention, which leaves self-play room to learn."""

THINK_DESCRIBE = "I describe my picture."
THINK_BLEND = "Other clues do not fit my picture, so I may be the odd one: I repeat one that fits it too."

_CLUE = re.compile(r"(?:there is |there's |i see )?(.+?)\.?", re.IGNORECASE)


def clue_text(phrase: str) -> str:
    """The answer of a clue that states ``phrase``.

    >>> clue_text("a red cube")
    'There is a red cube.'
    """
    return f"There is {phrase}."


def stated(clue: str) -> str:
    """The phrase a clue states, lower-case (``clue_text`` read back); any other sentence
    comes back whole, lower-case, and matches no phrase.

    >>> stated("There is a Red cube."), stated("a red cube"), stated("There is a red cube. Vote 3.")
    ('a red cube', 'a red cube', 'a red cube. vote 3')
    """
    match = _CLUE.fullmatch(normalize_answer(clue))
    return match.group(1).lower() if match else ""


def _picture(game: Any, player: int) -> Any:
    return game._images[player]


def _heard(game: Any, player: int) -> dict[int, list[str]]:
    """The phrases each *other* player has stated so far, by seat."""
    heard: dict[int, list[str]] = {}
    for _, speaker, clue in game.clues:
        if speaker != player:
            heard.setdefault(speaker, []).append(stated(clue))
    return heard


def misfits(heard: dict[int, list[str]], mine: tuple[str, ...]) -> list[int]:
    """Players with a clue that is not a phrase of ``mine`` (the voter's own picture).

    >>> misfits({1: ["a red cube"], 3: ["a red cube", "a blue sphere"]}, ("a red cube",))
    [3]
    """
    own = {p.lower() for p in mine}
    return sorted(p for p, phrases in heard.items() if any(s not in own for s in phrases))


def claim(clue: str) -> str:
    """What a clue claims, as a vote's reasoning repeats it: ``stated`` without its article.

    >>> claim("There is a red cube."), claim("There is an orange sphere.")
    ('red cube', 'orange sphere')
    """
    return without_article(stated(clue))


def checks(clues: list[tuple[int, int, str]], voter: int, noticed: set[tuple[int, int]]) -> str:
    """A voter's reasoning: each clue of the other players (``(round, player, clue)``, in the
    order said) as its speaker, what it claims (``claim``) and the voter's verdict, "no" if
    the voter noticed that it does not fit its picture (``noticed`` holds ``(player, k)`` for
    that player's ``k``-th clue, from 0) and "yes" otherwise; a round at a time.

    >>> clues = [(1, 1, "There is a red cube."), (1, 2, "There is a red cube."), (1, 3, "There is a blue sphere."),
    ...          (2, 1, "There is a red cube."), (2, 2, "There is a green cube."), (2, 3, "There is a blue sphere.")]
    >>> checks(clues, 2, {(3, 1)})  # player 3's second clue noticed, its first overlooked
    '1 red cube yes, 3 blue sphere yes; 1 red cube yes, 3 blue sphere no.'
    >>> checks([(1, 1, "There is a red cube.")], 1, set())
    '.'
    """
    count: dict[int, int] = {}
    verdicts = []
    for rnd, player, clue in clues:
        if player != voter:
            k = count[player] = count.get(player, -1) + 1
            verdicts.append((rnd, player, claim(clue), (player, k) not in noticed))
    return written_checks(verdicts)


class OddTeacher:
    """The Odd One Out teacher (see the module docstring); deterministic given ``rng``."""

    def __init__(self, blend: float = BLEND, notice: float = NOTICE) -> None:
        self.blend, self.notice = blend, notice

    def act(self, game: Any, player: int, facts: Facts, rng: random.Random) -> str:
        mine = facts.describe(_picture(game, player))
        heard = _heard(game, player)
        if game.stage == "clue":
            return self._clue(game, player, mine, heard, rng)
        return self._vote(game, player, mine, heard, rng)

    def _clue(self, game: Any, player: int, mine: tuple[str, ...], heard: dict[int, list[str]], rng: random.Random) -> str:
        if not mine:
            raise ValueError(f"the image source described player {player}'s picture as empty: nothing true to say")
        odd_looking = misfits(heard, mine)
        if 2 * len(odd_looking) > len(heard) and rng.random() < self.blend:
            said_by_others = {s for phrases in heard.values() for s in phrases}
            shared = [p for p in mine if p.lower() in said_by_others]
            if shared:
                return f"<think>{THINK_BLEND}</think><answer>{clue_text(rng.choice(shared))}</answer>"
        said = {stated(clue) for _, _, clue in game.clues}
        fresh = [p for p in mine if p.lower() not in said] or list(mine)
        return f"<think>{THINK_DESCRIBE}</think><answer>{clue_text(rng.choice(fresh))}</answer>"

    def _vote(self, game: Any, player: int, mine: tuple[str, ...], heard: dict[int, list[str]], rng: random.Random) -> str:
        noticed = self._noticed(heard, mine, rng)
        odd = sorted({p for p, _ in noticed})
        if len(odd) == 1:
            answer = str(odd[0])
        elif heard and 2 * len(odd) > len(heard):
            answer = str(player)
        else:
            answer = "N/A"
        return f"<think>{checks(list(game.clues), player, noticed)}</think><answer>{answer}</answer>"

    def _noticed(self, heard: dict[int, list[str]], mine: tuple[str, ...], rng: random.Random) -> set[tuple[int, int]]:
        """The clues, as ``(player, k)`` (that player's ``k``-th, from 0), that the voter notices
        do not fit its picture: one draw per misfit, player by player in seat order, not in the
        order said that ``checks`` writes, so the votes and the figures measured draw alike."""
        own = {p.lower() for p in mine}
        return {
            (p, k)
            for p, phrases in sorted(heard.items())
            for k, s in enumerate(phrases)
            if s not in own and rng.random() < self.notice
        }

    def clue_truth(self, game: Any, player: int, completion: str, facts: Facts) -> bool | None:
        """True iff ``completion`` is a clue whose answer states a phrase of ``player``'s own
        picture (and nothing else); None during the vote."""
        if game.stage != "clue":
            return None
        answer = extract_answer(completion)
        own = {p.lower() for p in facts.describe(_picture(game, player))}
        return answer is not None and stated(answer) in own
