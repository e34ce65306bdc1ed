"""Ablation: always the clue phase (pure self-play, no decision RLVR). It requires no metric,
so it runs with any game; when the game reports ``acc`` and ``na`` their EMAs are still
tracked and logged, so the run compares with an Iterative-SPO one."""

from __future__ import annotations

from schedulers._ema import EmaConfig, FixedPhaseScheduler
from vzframe.hookspecs import hookimpl


class Config(EmaConfig):
    """Clue-only ablation."""

    clue_phase: str = "clue"
    """The game's phase name for clue self-play; every step trains it."""


class ClueOnlyScheduler(FixedPhaseScheduler):
    """Never leaves ``clue_phase``."""

    name = "clue_only"
    Config = Config
    phase_key = "clue_phase"


@hookimpl
def register_schedulers(register) -> None:
    register(ClueOnlyScheduler)
