"""Playing games: seeds, the picture stream, ``play_moves`` (the one play driver) and
``play``, which run live games to the end with every move of a tick answered by one call of a
``Policy`` (a rollout engine, a teacher, a scripted player), and ``play_async``, which lets
every game go at its own pace on an engine with continuous batching (vLLM).

Training, evaluation, the league, held-out play, the toy build and the kits all play through
these, so they share the seeding and the error wrapping: games are plugin code, and every call
into one goes through ``call_plugin``, so an error names the game, its class and the method.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np
from pydantic import BaseModel

from vzframe.plugins import call_plugin, game_label
from vzframe.protocols import Game, ImageSource
from vzframe.rollout import AsyncEngine, Generation, Sampler
from vzframe.rollout.policy import Move, Policy, Referee, as_policy
from vzframe.types import Episode, ImageItem, Observation, Turn


def derive_seed(seed: int, step: int, rank: int, index: int) -> int:
    """Independent, reproducible seeds for every (run, step, rank, game).

    >>> derive_seed(0, 1, 0, 2) == derive_seed(0, 1, 0, 2) != derive_seed(0, 1, 0, 3)
    True
    """
    return int(np.random.SeedSequence([seed, step, rank, index + 1]).generate_state(1)[0])


def request_seed(base: int, game: int, request: int) -> int:
    """The sampling seed of a game's ``request``-th observation (counted in ``to_act()``
    order), so that sampling depends neither on batching nor on the order requests finish.

    >>> request_seed(7, 0, 1) == request_seed(7, 0, 1) != request_seed(7, 1, 0)
    True
    """
    return int(np.random.SeedSequence([base, game, request]).generate_state(1)[0])


def _seed_base() -> int:
    """One draw of torch's generator, which the runtime seeds from (run seed, step, rank)."""
    import torch

    return int(torch.randint(0, 2**31 - 1, ()))


class ImageCursor:
    """Hands out the image source's pictures in order; ranks take interleaved indices so
    each rank plays different images."""

    def __init__(self, source: ImageSource, *, rank: int, world: int, position: int = 0) -> None:
        self.source, self.rank, self.world, self.position = source, rank, world, position

    def draw(self) -> ImageItem:
        item = self.source.get(self.position * self.world + self.rank)
        self.position += 1
        return item


def new_games(game_cls: type[Game], config: BaseModel, seeds: Sequence[int], images: ImageCursor) -> list[Game]:
    """One live game per seed, each drawing its pictures from ``images``."""
    return [call_plugin(f"{game_label(game_cls)} in __init__", game_cls, config, seed=s, images=images.draw) for s in seeds]


def held_out_games(game_cls: type[Game], config: BaseModel, source: ImageSource, games: int, seed: int) -> list[Game]:
    """``games`` games seeded from ``seed`` on ``source``'s pictures in order (a source seeded
    with ``seed`` gives held-out pictures): the same list every time, for evaluation, the
    league and held-out play."""
    seeds = [derive_seed(seed, 0, 0, i) for i in range(games)]
    return new_games(game_cls, config, seeds, ImageCursor(source, rank=0, world=1))


@dataclass(frozen=True)
class Played:
    """A finished game and, for each of its turns, what the model saw and generated."""

    episode: Episode
    generations: dict[int, tuple[Observation, Generation]]  # turn index -> what the model saw and wrote


@dataclass(frozen=True)
class Rollout:
    """The result of ``play``: the games in order, generated tokens, seconds in the engine."""

    games: list[Played]
    tokens: int
    generate_seconds: float

    @property
    def episodes(self) -> list[Episode]:
        return [p.episode for p in self.games]

    def observations(self) -> list[Observation]:
        return [obs for p in self.games for obs, _ in p.generations.values()]


class _Table:
    """The games of one play and every call into them, each through ``call_plugin`` so an
    error names the game, its class and the method (with an excerpt of the completion)."""

    def __init__(self, games: Sequence[Game]) -> None:
        self.games = games

    def call(self, g: int, what: str, fn: Any, *args: Any) -> Any:
        return call_plugin(f"{game_label(type(self.games[g]))} in {what}", fn, *args)

    def to_act(self, g: int) -> tuple[int, ...]:
        acting: tuple[int, ...] = self.call(g, "to_act()", self.games[g].to_act)
        return acting

    def move(self, g: int, player: int, seed: int) -> Move:
        observation = self.call(g, f"observe(player={player})", self.games[g].observe, player)
        return Move(self.games[g], g, player, observation, seed)

    def step(self, move: Move, text: str) -> Turn:
        turn: Turn = self.call(move.index, f"step(player={move.player}, {_excerpt(text)})", move.game.step, move.player, text)
        return turn

    def episodes(self) -> list[Episode]:
        return [self.call(g, "episode()", game.episode) for g, game in enumerate(self.games)]


def _excerpt(text: str, limit: int = 40) -> str:
    """A completion as an error message quotes it: short, with its length when cut.

    >>> _excerpt("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (100 chars)'"
    """
    return repr(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")


@dataclass(frozen=True)
class Moved:
    """A move once stepped: what was asked, what the policy answered, what the game recorded."""

    move: Move
    generation: Generation
    turn: Turn


class Clock:
    """Seconds a play spent in its policy."""

    seconds = 0.0


def play_moves(
    games: Sequence[Game], player: Policy | Sampler, *, referee: Referee | None = None,
    order: random.Random | None = None, clock: Clock | None = None,
) -> Iterator[Moved]:  # fmt: skip
    """Play all games to the end, yielding every move once it is stepped: the one play driver.

    Each tick, every player who must move in every game is observed first (simultaneous
    moves see the same state), then one ``act`` call of the policy answers all of them, then
    the moves are stepped in ``to_act()`` order (or in an order drawn from ``order``, as the
    kits do to show that simultaneous moves do not depend on it). A seeded policy gets
    ``request_seed``'s seed for every request, the same as in ``play_async``. ``referee``
    watches each point (``Referee``); ``clock`` adds up the seconds spent in the policy."""
    policy = as_policy(player)
    referee = referee or Referee()
    clock = clock or Clock()
    table = _Table(games)
    base = _seed_base() if policy.seeded else 0
    requests = [count() for _ in games]
    while True:
        movers = []
        for g, game in enumerate(games):
            acting = table.to_act(g)
            referee.tick(g, game, acting)
            movers += [(g, p) for p in acting]
        if not movers:
            return
        moves = [table.move(g, p, request_seed(base, g, next(requests[g])) if policy.seeded else 0) for g, p in movers]
        for move in moves:
            referee.observed(move)
        t0 = time.perf_counter()
        answers = list(policy.act(moves))
        clock.seconds += time.perf_counter() - t0
        if len(answers) != len(moves):
            raise RuntimeError(f"{type(policy).__name__}.act answered {len(answers)} of {len(moves)} moves; it must answer each.")
        for move, answer in zip(moves, answers):
            referee.acted(move, answer)
        steps = list(range(len(moves)))
        if order is not None:
            order.shuffle(steps)
        for i in steps:
            move, answer = moves[i], answers[i]
            referee.before_step(move, answer)
            turn = table.step(move, answer.text)
            referee.stepped(move, answer, turn)
            yield Moved(move, answer, turn)


def play(
    games: Sequence[Game], player: Policy | Sampler, *, referee: Referee | None = None, order: random.Random | None = None
) -> Rollout:
    """Play all games to the end (``play_moves``) with ``player``, a ``Policy`` or a rollout
    engine (``EnginePolicy``), and collect what each game's turns saw and generated."""
    generations: list[dict[int, tuple[Observation, Generation]]] = [{} for _ in games]
    tokens, clock = 0, Clock()
    for moved in play_moves(games, player, referee=referee, order=order, clock=clock):
        generations[moved.move.index][moved.turn.index] = (moved.move.observation, moved.generation)
        tokens += len(moved.generation.token_ids)
    played = [Played(episode, generations[g]) for g, episode in enumerate(_Table(games).episodes())]
    return Rollout(played, tokens, clock.seconds)


def play_async(games: Sequence[Game], engine: AsyncEngine) -> Rollout:
    """Play all games to the end on an engine with continuous batching (an ``AsyncEngine``,
    e.g. vLLM's): a game's next moves are submitted as soon as its last ones are
    parsed, so no game waits for another game's longest completion.

    Inside a game the order is ``play``'s: everyone in ``to_act()`` is observed from the same
    state and submitted, and once all of them have completed they are stepped in ``to_act()``
    order (the game cannot go on before that anyway). Every request is seeded by
    ``request_seed``, so the completions, and the rollout, are the same as ``play``'s on the
    same engine with the same torch seed, up to the engine's floating-point differences
    between batch shapes."""
    generations: list[dict[int, tuple[Observation, Generation]]] = [{} for _ in games]
    tokens, generate_seconds = 0, 0.0
    table = _Table(games)
    base = _seed_base()
    requests = [count() for _ in games]
    waiting: dict[int, list[tuple[Move, Generation | None]]] = {}  # game -> its movers and their answers so far

    def submit(g: int) -> float:
        """Observe and submit everyone who must move in game ``g`` now (no one once it is
        over); the seconds spent in the engine."""
        moves = [table.move(g, p, request_seed(base, g, next(requests[g]))) for p in table.to_act(g)]
        if moves:
            waiting[g] = [(m, None) for m in moves]
        t0 = time.perf_counter()
        for i, move in enumerate(moves):
            engine.add_request((g, i), move.observation, seed=move.seed)
        return time.perf_counter() - t0

    try:
        for g in range(len(games)):
            generate_seconds += submit(g)
        while waiting:
            t0 = time.perf_counter()
            finished = engine.finished()
            generate_seconds += time.perf_counter() - t0
            if not finished:
                raise RuntimeError(f"The engine has no request left, but games {sorted(waiting)} wait for one.")
            for (g, i), completion in finished:
                waiting[g][i] = (waiting[g][i][0], completion)
                if any(answer is None for _, answer in waiting[g]):
                    continue
                for move, answer in waiting.pop(g):
                    assert answer is not None
                    turn = table.step(move, answer.text)
                    generations[g][turn.index] = (move.observation, answer)
                    tokens += len(answer.token_ids)
                generate_seconds += submit(g)
    except BaseException:
        engine.cancel()  # a game raised: leave no request behind for the next play
        raise
    played = [Played(episode, generations[g]) for g, episode in enumerate(table.episodes())]
    return Rollout(played, tokens, generate_seconds)
