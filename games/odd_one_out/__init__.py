"""Visual "Odd One Out" as a vzframe plugin, written only through the public API (see
README.md).

Load it with ``vzframe run games.odd_one_out``; it registers the game ``odd_one_out``, whose
class declares the reward functions ``odd.vote`` and ``odd.clue``, the metrics ``acc``, ``na``,
``invalid``, ``odd_found``, ``odd_self_found`` and ``clue_valid``
(``OddOneOutGame.collect_metrics``), and each game's outcome (``OddOneOutGame.outcome``). The
game declares its default model ``toy-odd-one-out``, its toy-world model on ``clevr_toy``
(``OddOneOutGame.toy_model``), which ``plugins.toy_world`` registers and the first run that
loads it builds.
"""

from __future__ import annotations

from collections.abc import Callable

from games.odd_one_out.game import OddOneOutConfig, OddOneOutGame
from vzframe.hookspecs import hookimpl

__all__ = ["OddOneOutConfig", "OddOneOutGame", "metrics", "outcome"]

metrics = OddOneOutGame.collect_metrics
"""``OddOneOutGame.collect_metrics``, by its 0.1 name."""
outcome = OddOneOutGame.outcome
"""``OddOneOutGame.outcome``, by its 0.1 name."""


@hookimpl
def register_games(register: Callable[[type], None]) -> None:
    register(OddOneOutGame)
