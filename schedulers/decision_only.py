"""Ablation: always the decision phase (pure RLVR on the votes, no clue self-play). The
accuracy and N/A EMAs are still tracked and logged, so the run compares with an
Iterative-SPO one."""

from __future__ import annotations

from schedulers._ema import EmaConfig, EmaScheduler, check_phases
from vzframe.hookspecs import hookimpl


class Config(EmaConfig):
    """Decision-only ablation."""

    decision_phase: str = "decision"
    """The game's phase name for decision RLVR; every step trains it."""


class DecisionOnlyScheduler(EmaScheduler):
    """Never leaves ``decision_phase``."""

    name = "decision_only"
    Config = Config

    def __init__(self, config: Config, *, phases: tuple[str, ...]) -> None:
        phases = check_phases(self.name, phases, decision_phase=config.decision_phase)
        super().__init__(config, phases, config.decision_phase)

    def next_phase(self) -> str:
        return self.phase


@hookimpl
def register_schedulers(register) -> None:
    register(DecisionOnlyScheduler)
