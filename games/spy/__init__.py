"""The reference game, visual "Who is the Spy", as a vzframe plugin (see README.md).

Load it with ``vzframe run games.spy``; it registers the game ``spy``, whose class declares
the reward functions ``spy.vote``, ``spy.clue`` and ``spy.format``, the metrics ``acc``,
``na``, ``invalid``, ``spy_caught`` and ``clue_valid`` (``SpyGame.collect_metrics``), and each
game's outcome (``SpyGame.outcome``: the citizens, and judges, win when the spy is caught).
"""

from __future__ import annotations

from collections.abc import Callable

from games.spy.game import SpyConfig, SpyGame, spy_caught
from vzframe.hookspecs import hookimpl
from vzframe.protocols import Game

__all__ = ["SpyConfig", "SpyGame", "metrics", "outcome", "spy_caught"]

metrics = SpyGame.collect_metrics
"""``SpyGame.collect_metrics``, by its 0.1 name."""
outcome = SpyGame.outcome
"""``SpyGame.outcome``, by its 0.1 name."""


@hookimpl
def register_games(register: Callable[[type[Game]], None]) -> None:
    register(SpyGame)
