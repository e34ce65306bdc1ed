"""Ablation: fixed alternation between the two phases every ``every`` optimizer steps.
``every=1`` starting in decision is the reference code's ``interactive`` mode. The accuracy
and N/A EMAs are tracked and logged but never consulted."""

from __future__ import annotations

from pydantic import Field

from schedulers._ema import EmaScheduler, TwoPhaseConfig, check_phases
from vzframe.hookspecs import hookimpl


class Config(TwoPhaseConfig):
    """Fixed alternation."""

    every: int = Field(1, ge=1)
    """Optimizer steps trained in a phase before switching to the other (1 = every step)."""


class AlternateScheduler(EmaScheduler):
    """Switches phase after every ``every`` steps."""

    name = "alternate"
    Config = Config

    def __init__(self, config: Config, *, phases: tuple[str, ...]) -> None:
        c = config
        phases = check_phases(self.name, phases, clue_phase=c.clue_phase, decision_phase=c.decision_phase)
        super().__init__(config, phases, c.start)
        self.min_steps = c.every

    def next_phase(self) -> str:
        c = self.config
        if self.steps_in_phase < c.every:
            return self.phase
        return c.clue_phase if self.phase == c.decision_phase else c.decision_phase


@hookimpl
def register_schedulers(register) -> None:
    register(AlternateScheduler)
