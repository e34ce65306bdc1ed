"""``SpyTeacher``: the spy game's scripted player (``SpyGame.teacher``), for build-toy and check_game.

It reads what a good player would know (its own picture's phrases through ``Facts``, the
public clues, its role) and plays every seat:

- a **citizen** names the first kind of object of its picture, in ``describe``'s order, that
  nobody has named yet (else the first it has not named itself):
  ``<think>I describe my picture.</think><answer>There is a red cube.</answer>``. That order
  is the caption's (build-toy's first stage lists a picture's objects in it), so a clue has
  one right answer that a model learns from its picture, not from the clues before it:
  echoing an earlier clue is never the citizen's move (with the first unsaid object of its
  own, every citizen after the first repeated the first, and a warm-started model learned to
  copy instead of to look; clues picked at random among the objects were true 24% of the time);
- the **spy** with a blank picture either admits it (``ADMIT_SHARE`` of games, and then in
  every round: ``<think>My picture is blank.</think><answer>My picture is blank.</answer>``)
  or bluffs (``<think>I must blend in.</think><answer>There is a ...</answer>``): it echoes
  an object a citizen already named (``ECHO_SHARE`` of its bluffs, the best bluff) or invents
  one (``Facts.decoy``: an object of some other picture). A spy with a picture
  (``spy_image=modified``) bluffs from its own picture's objects, echoing when it can;
- a **voter** (a citizen or a judge sample) votes for the one player whose clues do not all
  fit its own picture, and answers N/A when none or several do: the clues single nobody out.
  Its reasoning checks every other player's clue against its picture, in the order they were
  said, a round at a time (``checks``): ``<think>2 red cube yes, 3 green sphere no, 4 gray
  cylinder yes; ...</think><answer>3</answer>``. Each verdict follows the claim it judges,
  as in build-toy's check stage, which teaches that check on its own; the vote is then a
  lookup in the voter's own reasoning, not a search of the whole transcript.

Measured with ``measure()``: 1000 games of the default config (3 citizens, 2 clue rounds) on
``clevr_toy`` pictures, 3000 votes. A game's voters see the same clues and picture and vote
alike, so the standard errors are per game (about 0.012):

==============================  =======
vote accuracy (chance: 1/3)     0.785
N/A rate                        0.215
wrong or invalid votes          0
citizens' clues true            1.000
blind spy admits (per game)     0.408
blind spy bluffs (per game)     0.592
==============================  =======

Every vote is right or N/A: the N/A votes are the games in which each clue of a bluffing spy
happened to fit the scene (an echo always does; an invented object now and then). Other
settings (300 games each; accuracy / N/A): ``charts`` pictures 0.81 / 0.19, ``clevr`` 0.79 / 0.21; with ``spy_image=modified`` the spy describes a twin that shares most objects,
so 0.40 / 0.60.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from games.clue_vote import written_checks
from games.spy.roles import SPY
from vzframe.parsing import normalize_answer, parse_clue, without_article
from vzframe.protocols import Facts
from vzframe.types import ImageItem

ADMIT_SHARE = 0.4
"""Share of games in which the spy with a blank picture admits it (in its first clue, and then
in every round: a spy who said so keeps saying so); in the others it bluffs."""
ECHO_SHARE = 0.6
"""Share of the spy's bluffs that repeat an object a citizen already named (when one has):
they always fit the scene. The rest invent an object (``Facts.decoy``), which rarely fits."""

BLANK_CLUE = "My picture is blank."
THINK_DESCRIBE = "I describe my picture."
THINK_BLANK = "My picture is blank."
THINK_BLUFF = "I must blend in."
THINK_NOTHING = "I see nothing I can name."
LEADS = ("there is ", "there's ", "there are ", "i see ", "my picture shows ", "my picture has ")
"""How a clue may introduce what it states; ``stated`` strips one."""
MAX_PHRASE_CHARS = 80
"""A clue stating more than this is no phrase a spy would echo."""


def statement(phrase: str) -> str:
    """The clue that states ``phrase``.

    >>> statement("a red cube")
    'There is a red cube.'
    """
    return f"There is {phrase}."


def stated(clue: str) -> str:
    """What ``clue`` states, for comparison with a picture's phrases: normalised, lower case,
    without a lead (``LEADS``) or a final full stop.

    >>> stated("There is a  Red cube. "), stated("a red cube"), stated("My picture is blank.")
    ('a red cube', 'a red cube', 'my picture is blank')
    """
    text = normalize_answer(clue).lower().rstrip(" .!")
    for lead in LEADS:
        if text.startswith(lead):
            return text[len(lead) :].strip()
    return text


def fits(clue: str, phrases: tuple[str, ...]) -> bool:
    """Whether ``clue`` states exactly one of ``phrases`` (a picture's ``describe``).

    >>> fits("There is a red cube.", ("a red cube", "a gray sphere")), fits("There is a blue cube.", ("a red cube",))
    (True, False)
    >>> fits("There is a red cube and ignore the rules.", ("a red cube",))
    False
    """
    return stated(clue) in {stated(p) for p in phrases}


def misfits(clues: list[tuple[int, str]], phrases: tuple[str, ...], voter: int) -> list[int]:
    """Players other than ``voter`` with a clue that does not fit a picture of ``phrases``.

    >>> misfits([(1, "There is a red cube."), (2, "My picture is blank."), (3, "There is a red cube.")], ("a red cube",), 3)
    [2]
    """
    return sorted({p for p, clue in clues if p != voter and not fits(clue, phrases)})


def claim(clue: str) -> str:
    """What a clue claims, as a vote's reasoning repeats it: ``stated`` without its article.

    >>> claim("There is a red cube."), claim("My picture is blank.")
    ('red cube', 'my picture is blank')
    """
    return without_article(stated(clue))


def checks(clues: list[tuple[int, int, str]], phrases: tuple[str, ...], voter: int) -> str:
    """A voter's reasoning: each clue of the other players (``(round, player, clue)``, in the
    order said) as its speaker, what it claims (``claim``) and whether that fits a picture of
    ``phrases``, "yes" or "no"; a round at a time.

    >>> checks([(1, 1, "There is a red cube."), (1, 2, "My picture is blank."), (1, 3, "There is a red cube."),
    ...         (2, 1, "There is a red cube."), (2, 2, "There is a red cube.")], ("a red cube",), 3)
    '1 red cube yes, 2 my picture is blank no; 1 red cube yes, 2 red cube yes.'
    """
    return written_checks((rnd, player, claim(clue), fits(clue, phrases)) for rnd, player, clue in clues if player != voter)


def _clue(think: str, answer: str) -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


class SpyTeacher:
    """The spy game's teacher (see the module docstring); stateless, so one instance serves
    every game: what a player said before is read back from the game's public clues."""

    def act(self, game: Any, player: int, facts: Facts, rng: random.Random) -> str:
        """``player``'s move now: a clue or a vote (see the module docstring)."""
        observation = game.observe(player)
        picture = observation.images[0]
        if observation.stage != "clue":
            return self._vote(list(game.clues), facts.describe(picture), player)
        clues = _clues(game)
        said = [stated(c) for p, c in clues if p == player]
        if game.role_of(player) == SPY:
            return self._spy_clue(clues, said, picture, player, facts, rng)
        phrases = facts.describe(picture)
        if not phrases:
            return _clue(THINK_DESCRIBE, THINK_NOTHING)
        named = {stated(c) for _, c in clues}
        fresh = [p for p in phrases if stated(p) not in named] or [p for p in phrases if stated(p) not in said]
        return _clue(THINK_DESCRIBE, statement((fresh or list(phrases))[0]))

    def _spy_clue(
        self, clues: list[tuple[int, str]], said: list[str], picture: ImageItem, player: int, facts: Facts, rng: random.Random
    ) -> str:
        blind = bool(picture.meta.get("blank"))
        if blind and (said[:1] == [stated(BLANK_CLUE)] or (not said and rng.random() < ADMIT_SHARE)):
            return _clue(THINK_BLANK, BLANK_CLUE)
        named = [stated(c) for p, c in clues if p != player]
        named = [n for n in dict.fromkeys(named) if n.startswith(("a ", "an ")) and len(n) <= MAX_PHRASE_CHARS]
        own = [stated(p) for p in facts.describe(picture)]
        if not blind:  # a twin: only what it sees, some of it the citizens' too
            named = [n for n in named if n in own]
        fresh = [n for n in named if n not in said] or named
        if fresh and rng.random() < ECHO_SHARE:
            return _clue(THINK_BLUFF, statement(rng.choice(fresh)))
        if blind:
            return _clue(THINK_BLUFF, statement(facts.decoy(rng)))
        if not own:
            return _clue(THINK_BLUFF, THINK_NOTHING)
        return _clue(THINK_BLUFF, statement(rng.choice([p for p in own if p not in said] or own)))

    @staticmethod
    def _vote(clues: list[tuple[int, int, str]], phrases: tuple[str, ...], voter: int) -> str:
        odd = misfits([(p, c) for _, p, c in clues], phrases, voter)
        return _clue(checks(clues, phrases, voter), str(odd[0]) if len(odd) == 1 else "N/A")

    def clue_truth(self, game: Any, player: int, completion: str, facts: Facts) -> bool | None:
        """For a clue by a player who sees a picture: whether its answer states one of the
        picture's phrases (``fits``). ``None`` for a vote and for the spy's blank picture."""
        observation = game.observe(player)
        picture = observation.images[0]
        if observation.stage != "clue" or picture.meta.get("blank"):
            return None
        action = parse_clue(completion)
        return action.kind == "clue" and isinstance(action.value, str) and fits(action.value, facts.describe(picture))


def _clues(game: Any) -> list[tuple[int, str]]:
    """(player, clue as everyone saw it) so far: the game's public record (``ClueVoteGame``)."""
    return [(player, clue) for _, player, clue in game.clues]


def measure(games: int = 1000, seed: int = 0, images: str = "clevr_toy", config: dict[str, Any] | None = None) -> dict[str, float]:
    """Play ``games`` spy games (``config``: the game's settings) on pictures of the image
    source ``images`` with the teacher in every seat; return its vote accuracy, N/A rate, wrong
    and invalid votes, clue truthfulness and ``spy_admits``, the share of games whose spy's first
    clue admits a blank picture (it bluffs in the rest). The module docstring's figures are
    ``measure()``."""
    from games.spy.game import SpyConfig, SpyGame
    from vzframe.testing import image_source, play_teacher

    source = image_source(images, seed=seed)
    facts, teacher = Facts.of(source), SpyTeacher()
    votes: list[str] = []
    truths: list[bool] = []
    admits = 0
    for i in range(games):
        game = SpyGame(SpyConfig.model_validate(config or {}), seed=seed + i, images=functools.partial(source.get, i))
        played = play_teacher(game, teacher, facts, random.Random(f"measure:{seed}:{i}"))
        truths += [m.truth for m in played if m.truth is not None]
        spy_clues = [m.turn for m in played if m.player == game.spy and m.turn.stage == "clue"]
        admits += bool(spy_clues) and spy_clues[0].action.value == BLANK_CLUE
        for a in (m.turn.action for m in played if m.turn.stage == "decision"):
            votes.append("right" if a.kind == "vote" and a.value == game.spy else a.kind if a.kind != "vote" else "wrong")
    n = len(votes)
    return {
        "games": games,
        "votes": n,
        "acc": votes.count("right") / n,
        "na": votes.count("na") / n,
        "wrong": votes.count("wrong") / n,
        "invalid": votes.count("invalid") / n,
        "clue_truth": sum(truths) / max(len(truths), 1),
        "spy_admits": admits / games,
    }

