"""Who plays a game: a ``Policy`` answers a batch of ``Move`` requests with one ``Generation``
each. ``vzframe.rollout.play.play`` drives every game through one, whoever sits in the seats:

- ``EnginePolicy``: a rollout engine (transformers, vLLM, a ``RoleRouter`` of several);
- ``TeacherPolicy``: a game's scripted teacher (``vzframe.protocols.Teacher``);
- ``ScriptedPolicy``: any function of a move, e.g. the kits' adversarial player.

A ``Referee`` watches a play at fixed points (each tick, each observation, each answer, each
step) without taking part: the kits check the game's contract there, held-out play judges clues.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vzframe.plugins import call_plugin, game_label
from vzframe.protocols import Facts, Game, Teacher
from vzframe.rollout import Generation, Sampler, seeds_per_request
from vzframe.types import Observation, Turn


@dataclass(frozen=True)
class Move:
    """One move a policy is asked for: ``player`` of ``game`` (the ``index``-th game of the
    play) must answer ``observation``; ``seed`` is the request's sampling seed
    (``request_seed``; 0 for a policy that takes none)."""

    game: Game
    index: int
    player: int
    observation: Observation
    seed: int


@runtime_checkable
class Policy(Protocol):
    """Answers moves: ``act`` returns one ``Generation`` per move, in their order, all asked on
    the state each player observed (no move of the batch is stepped before ``act`` returns).
    ``seeded``: whether it samples from the moves' seeds (``play`` then draws their base from
    torch's generator, as a run does)."""

    seeded: bool

    def act(self, moves: Sequence[Move]) -> Sequence[Generation]: ...


def text_move(text: str) -> Generation:
    """A move a scripted player wrote: its text, no model tokens."""
    return Generation(text, (), 0)


class EnginePolicy:
    """A rollout engine as a policy: all moves of a tick in one ``generate`` call, each request
    with its own seed where the engine takes seeds (a ``SeededEngine``), so a completion does
    not depend on what else is in the batch. ``seeded=False`` leaves the seeds out (the engine
    then draws from torch's generator; the toy build's held-out figures were made so)."""

    def __init__(self, engine: Sampler, *, seeded: bool = True) -> None:
        self.engine = engine
        self.seeded = seeded and seeds_per_request(engine)

    def act(self, moves: Sequence[Move]) -> list[Generation]:
        observations = [m.observation for m in moves]
        if self.seeded and seeds_per_request(self.engine):
            return self.engine.generate(observations, seeds=[m.seed for m in moves])
        return self.engine.generate(observations)


class TeacherPolicy:
    """A game's teacher in every seat it is asked for: ``teacher.act(game, player, facts,
    rng)`` per move, in order, all from one ``rng`` (so a play is the same for the same rng)."""

    seeded = False

    def __init__(self, teacher: Teacher, facts: Facts, rng: random.Random) -> None:
        self.teacher, self.facts, self.rng = teacher, facts, rng

    def act(self, moves: Sequence[Move]) -> list[Generation]:
        return [text_move(self.answer(m)) for m in moves]

    def answer(self, move: Move) -> str:
        what = f"{game_label(type(move.game))} teacher.act(player={move.player})"
        text = call_plugin(what, self.teacher.act, move.game, move.player, self.facts, self.rng)
        if not isinstance(text, str):
            raise TypeError(f"{what} returned {text!r}, not a str: a teacher's move is the completion text.")
        return text


class ScriptedPolicy:
    """``choose(move) -> str`` as a policy, one move at a time in order."""

    seeded = False

    def __init__(self, choose: Callable[[Move], str]) -> None:
        self.choose = choose

    def act(self, moves: Sequence[Move]) -> list[Generation]:
        return [text_move(self.choose(m)) for m in moves]


def as_policy(player: Policy | Sampler) -> Policy:
    """``player`` itself if it is a ``Policy``, else the engine it is as an ``EnginePolicy``."""
    return player if isinstance(player, Policy) else EnginePolicy(player)


class Referee:
    """Watches a play without taking part: ``play`` calls each method at its point (here they
    do nothing; override what you need). Exceptions raised here pass through unwrapped."""

    def tick(self, index: int, game: Game, acting: tuple[int, ...]) -> None:
        """Game ``index`` said who moves now (``()`` once over), before anyone is observed."""

    def observed(self, move: Move) -> None:
        """A mover's observation, before the policy is asked."""

    def acted(self, move: Move, generation: Generation) -> None:
        """The policy's answer to ``move``, before any move of the tick is stepped (the
        game's state is still the one the mover observed)."""

    def before_step(self, move: Move, generation: Generation) -> None:
        """Right before ``move`` is stepped (the moves of the tick before it already were)."""

    def stepped(self, move: Move, generation: Generation, turn: Turn) -> None:
        """After the game recorded ``turn``."""
