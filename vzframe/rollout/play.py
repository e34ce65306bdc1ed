"""Playing games: seeds, the picture stream, ``play``, which runs live games to the end with
every move of a tick generated in one batched call, and ``play_async``, which lets every game
go at its own pace on an engine with continuous batching (vLLM).

Games are plugin code: every call into one goes through ``call_plugin``, so an error names the
game, its class and the method.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np
from pydantic import BaseModel

from vzframe.plugins import call_plugin, game_label
from vzframe.protocols import Game, ImageSource
from vzframe.rollout import AsyncEngine, Generation, Sampler, seeds_per_request
from vzframe.types import Episode, ImageItem, Observation


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


def play(games: Sequence[Game], engine: Sampler) -> Rollout:
    """Play all games to the end. Each tick every player who must move in every game is
    observed first (simultaneous moves see the same state), then all are generated in one
    call. A ``SeededEngine`` gets ``request_seed``'s seed for every request, the same as in
    ``play_async``."""
    generations: list[dict[int, tuple[Observation, Generation]]] = [{} for _ in games]
    tokens, generate_seconds = 0, 0.0
    seeded = engine if seeds_per_request(engine) else None
    base = _seed_base() if seeded is not None else 0
    requests = [count() for _ in games]

    def call(g: int, what: str, fn: Any, *args: Any) -> Any:
        return call_plugin(f"{game_label(type(games[g]))} in {what}", fn, *args)

    while moves := [(g, player) for g, game in enumerate(games) for player in call(g, "to_act()", game.to_act)]:
        observations = [call(g, f"observe(player={player})", games[g].observe, player) for g, player in moves]
        t0 = time.perf_counter()
        if seeded is None:
            completions = engine.generate(observations)
        else:
            completions = seeded.generate(observations, seeds=[request_seed(base, g, next(requests[g])) for g, _ in moves])
        generate_seconds += time.perf_counter() - t0
        for (g, player), obs, gen in zip(moves, observations, completions):
            turn = call(g, f"step(player={player})", games[g].step, player, gen.text)
            generations[g][turn.index] = (obs, gen)
            tokens += len(gen.token_ids)
    played = [Played(call(g, "episode()", game.episode), generations[g]) for g, game in enumerate(games)]
    return Rollout(played, tokens, generate_seconds)


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
    base = _seed_base()
    requests = [count() for _ in games]
    waiting: dict[int, list[list[Any]]] = {}  # game -> its movers: [player, observation, generation or None]

    def call(g: int, what: str, fn: Any, *args: Any) -> Any:
        return call_plugin(f"{game_label(type(games[g]))} in {what}", fn, *args)

    def submit(g: int) -> float:
        """Observe and submit everyone who must move in game ``g`` now (no one once it is
        over); the seconds spent in the engine."""
        movers = [[p, call(g, f"observe(player={p})", games[g].observe, p), None] for p in call(g, "to_act()", games[g].to_act)]
        if movers:
            waiting[g] = movers
        t0 = time.perf_counter()
        for i, (_, obs, _) in enumerate(movers):
            engine.add_request((g, i), obs, seed=request_seed(base, g, next(requests[g])))
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
                waiting[g][i][2] = completion
                if any(gen is None for _, _, gen in waiting[g]):
                    continue
                for player, obs, gen in waiting.pop(g):
                    turn = call(g, f"step(player={player})", games[g].step, player, gen.text)
                    generations[g][turn.index] = (obs, gen)
                    tokens += len(gen.token_ids)
                generate_seconds += submit(g)
    except BaseException:
        engine.cancel()  # a game raised: leave no request behind for the next play
        raise
    played = [Played(call(g, "episode()", game.episode), generations[g]) for g, game in enumerate(games)]
    return Rollout(played, tokens, generate_seconds)
