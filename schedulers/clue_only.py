"""Ablation: always the clue phase (pure self-play, no decision RLVR). It requires no metric,
so it runs with any game; when the game reports ``acc`` and ``na`` their EMAs are still
tracked and logged, so the run compares with an Iterative-SPO one."""

from __future__ import annotations

from schedulers._ema import EmaConfig, EmaScheduler, check_phases
from vzframe.hookspecs import hookimpl


class Config(EmaConfig):
    """Clue-only ablation."""

    clue_phase: str = "clue"
    """The game's phase name for clue self-play; every step trains it."""


class ClueOnlyScheduler(EmaScheduler):
    """Never leaves ``clue_phase``."""

    name = "clue_only"
    Config = Config
    requires = ()  # never reads a metric to decide; acc/na EMAs are logged when present

    def __init__(self, config: Config, *, phases: tuple[str, ...]) -> None:
        phases = check_phases(self.name, phases, clue_phase=config.clue_phase)
        super().__init__(config, phases, config.clue_phase)

    def next_phase(self) -> str:
        return self.phase


@hookimpl
def register_schedulers(register) -> None:
    register(ClueOnlyScheduler)
