"""Ablation: always the decision phase (pure RLVR on the votes, no clue self-play). It
requires no metric, so it runs with any game; when the game reports ``acc`` and ``na`` their
EMAs are still tracked and logged, so the run compares with an Iterative-SPO one."""

from __future__ import annotations

from schedulers._ema import EmaConfig, FixedPhaseScheduler
from vzframe.hookspecs import hookimpl


class Config(EmaConfig):
    """Decision-only ablation."""

    decision_phase: str = "decision"
    """The game's phase name for decision RLVR; every step trains it."""


class DecisionOnlyScheduler(FixedPhaseScheduler):
    """Never leaves ``decision_phase``."""

    name = "decision_only"
    Config = Config
    phase_key = "decision_phase"


@hookimpl
def register_schedulers(register) -> None:
    register(DecisionOnlyScheduler)
