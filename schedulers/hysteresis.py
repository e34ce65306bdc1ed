"""Iterative-SPO: switch between clue self-play and decision RLVR with hysteresis.

After every optimizer step the scheduler updates EMAs of the batch decision accuracy
``acc`` and N/A rate ``na`` (``ema <- alpha*ema + (1-alpha)*value``; vzframe's choices: an
EMA starts at the first observed value, not 0, and is never reset at a switch), then, once
at least ``k_min`` steps were trained in the current phase:

- decision phase -> clue when ``acc_ema >= tau_acc_up`` **and** ``na_ema <= tau_na_down``
  (the spy is too easy to catch: clues must get harder);
- clue phase -> decision when ``1 - acc_ema >= tau_err_up`` **or** ``na_ema >= tau_na_up``
  (the spy is too hard to catch: voters must get better).

=================  ========  ==========================================================
threshold          default   source
=================  ========  ==========================================================
``tau_acc_up``     0.9       the paper
``tau_na_down``    0.1       vzframe's own (the paper does not publish it)
``tau_err_up``     0.4       vzframe's own
``tau_na_up``      0.5       vzframe's own
``k_min``          10        vzframe's own
``ema_alpha``      0.9       vzframe's own
``start``          decision  vzframe's own
=================  ========  ==========================================================

The reference code does not implement this scheduler (it alternates every step: see the
``alternate`` scheduler). The runtime all-reduces ``acc`` and ``na`` before ``update`` so
every rank picks the same phase.
"""

from __future__ import annotations

from pydantic import Field

from schedulers._ema import EmaScheduler, TwoPhaseConfig, check_phases
from vzframe.hookspecs import hookimpl


class Config(TwoPhaseConfig):
    """Iterative-SPO thresholds and phase names."""

    tau_acc_up: float = Field(0.9, ge=0.0, le=1.0)
    """Decision -> clue needs acc_ema >= this (the paper's value)."""
    tau_na_down: float = Field(0.1, ge=0.0, le=1.0)
    """Decision -> clue also needs na_ema <= this (vzframe default)."""
    tau_err_up: float = Field(0.4, ge=0.0, le=1.0)
    """Clue -> decision when the error 1 - acc_ema >= this (vzframe default)."""
    tau_na_up: float = Field(0.5, ge=0.0, le=1.0)
    """Clue -> decision when na_ema >= this (vzframe default)."""
    k_min: int = Field(10, ge=1)
    """Fewest optimizer steps trained in a phase before it may switch (vzframe default)."""


class HysteresisScheduler(EmaScheduler):
    """Iterative-SPO (see the module docstring)."""

    name = "hysteresis"
    Config = Config

    def __init__(self, config: Config, *, phases: tuple[str, ...]) -> None:
        c = config
        phases = check_phases(self.name, phases, clue_phase=c.clue_phase, decision_phase=c.decision_phase)
        super().__init__(config, phases, c.start)
        self.min_steps = c.k_min

    def next_phase(self) -> str:
        c, acc, na = self.config, self.emas.acc, self.emas.na
        if self.steps_in_phase < c.k_min:
            return self.phase
        if self.phase == c.decision_phase and acc >= c.tau_acc_up and na <= c.tau_na_down:
            return c.clue_phase
        if self.phase == c.clue_phase and (1 - acc >= c.tau_err_up or na >= c.tau_na_up):
            return c.decision_phase
        return self.phase


@hookimpl
def register_schedulers(register) -> None:
    register(HysteresisScheduler)
