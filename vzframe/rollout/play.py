"""Playing games: seeds, the picture stream, and ``play``, which runs live games to the end
with every move of a tick generated in one batched call.

Games are plugin code: every call into one goes through ``call_plugin``, so an error names the
game, its class and the method.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vzframe.plugins import call_plugin, game_label
from vzframe.rollout import Generation
from vzframe.types import Episode, ImageItem, Observation


def derive_seed(seed: int, step: int, rank: int, index: int) -> int:
    """Independent, reproducible seeds for every (run, step, rank, game).

    >>> derive_seed(0, 1, 0, 2) == derive_seed(0, 1, 0, 2) != derive_seed(0, 1, 0, 3)
    True
    """
    return int(np.random.SeedSequence([seed, step, rank, index + 1]).generate_state(1)[0])


class ImageCursor:
    """Hands out the image source's pictures in order; ranks take interleaved indices so
    each rank plays different images."""

    def __init__(self, source: Any, *, rank: int, world: int, position: int = 0) -> None:
        self.source, self.rank, self.world, self.position = source, rank, world, position

    def draw(self) -> ImageItem:
        item = self.source.get(self.position * self.world + self.rank)
        self.position += 1
        return item


def new_games(game_cls: type, config: Any, seeds: Sequence[int], images: ImageCursor) -> list[Any]:
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


def play(games: Sequence[Any], engine: Any) -> Rollout:
    """Play all games to the end. Each tick every player who must move in every game is
    observed first (simultaneous moves see the same state), then all are generated in one
    call."""
    generations: list[dict[int, tuple[Observation, Generation]]] = [{} for _ in games]
    tokens, generate_seconds = 0, 0.0

    def call(g: int, what: str, fn: Any, *args: Any) -> Any:
        return call_plugin(f"{game_label(type(games[g]))} in {what}", fn, *args)

    while moves := [(g, player) for g, game in enumerate(games) for player in call(g, "to_act()", game.to_act)]:
        observations = [call(g, f"observe(player={player})", games[g].observe, player) for g, player in moves]
        t0 = time.perf_counter()
        completions = engine.generate(observations)
        generate_seconds += time.perf_counter() - t0
        for (g, player), obs, gen in zip(moves, observations, completions):
            turn = call(g, f"step(player={player})", games[g].step, player, gen.text)
            generations[g][turn.index] = (obs, gen)
            tokens += len(gen.token_ids)
    played = [Played(call(g, "episode()", game.episode), generations[g]) for g, game in enumerate(games)]
    return Rollout(played, tokens, generate_seconds)
