"""What every built-in scheduler shares: EMAs of decision accuracy and N/A rate, the count of
steps spent in the current phase, checks of phase names, and a JSON-able state.

``RateEmas`` follows ``ema <- alpha * ema + (1 - alpha) * value`` once per optimizer step. Our
choice (not the paper's): the EMA starts at the first observed value rather than at 0, so
the first steps carry no start-at-0 bias; before any step it reads NaN. The EMAs run on
across phase switches (they are never reset). Even schedulers that ignore them (clue-only,
decision-only, alternate) report them, so their runs compare with the hysteresis one. A
scheduler that does not list a rate in ``requires`` (clue-only) runs without it: a step
that lacks it, or gives a value outside [0, 1], leaves that EMA as it was (NaN until seen).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

METRIC_KEYS = ("acc", "na")
"""Batch metrics a scheduler needs, rank-averaged: decision accuracy and N/A rate."""


class EmaConfig(BaseModel):
    """Fields every built-in scheduler has."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    ema_alpha: float = Field(0.9, ge=0.0, lt=1.0)
    """EMA decay per optimizer step: ema <- alpha*ema + (1-alpha)*batch value (0 = no smoothing)."""


class TwoPhaseConfig(EmaConfig):
    """Fields of the schedulers that move between a clue and a decision phase."""

    start: str = "decision"
    """Phase of the first step: clue_phase or decision_phase."""
    clue_phase: str = "clue"
    """The game's phase name for clue self-play."""
    decision_phase: str = "decision"
    """The game's phase name for decision RLVR."""

    @model_validator(mode="after")
    def _check_names(self) -> TwoPhaseConfig:
        if self.clue_phase == self.decision_phase:
            raise ValueError(f"clue_phase and decision_phase must differ; both are {self.clue_phase!r}")
        if self.start not in (self.clue_phase, self.decision_phase):
            raise ValueError(
                f"start={self.start!r} must be clue_phase ({self.clue_phase!r}) "
                f"or decision_phase ({self.decision_phase!r})"
            )
        return self


class RateEmas:
    """EMAs of the batch decision accuracy (``acc``) and N/A rate (``na``). The ``required``
    ones must be in every step's metrics, as rates in [0, 1]; the others are folded in when
    a step reports a rate and skipped otherwise."""

    def __init__(self, alpha: float, required: tuple[str, ...] = METRIC_KEYS) -> None:
        self.alpha = alpha
        self.required = tuple(required)
        self.acc: float | None = None
        self.na: float | None = None

    def update(self, metrics: Mapping[str, float]) -> None:
        missing = [k for k in self.required if k not in metrics]
        if missing:
            raise KeyError(
                f"The scheduler needs metrics {list(self.required)} (decision accuracy and N/A rate of "
                f"the step's votes); missing {missing}, got {sorted(metrics)}. "
                "The game's collect_metrics hook must return them."
            )
        values = {}
        for key in METRIC_KEYS:
            if key not in metrics:
                continue
            value = _rate(metrics[key])
            if value is None:
                if key in self.required:
                    raise ValueError(f"Scheduler metric {key!r} must be a rate in [0, 1]; got {metrics[key]!r}.")
                continue
            values[key] = value
        a = self.alpha
        for key, value in values.items():
            old = getattr(self, key)
            setattr(self, key, value if old is None else a * old + (1 - a) * value)

    def metrics(self) -> dict[str, float]:
        nan = math.nan
        return {"acc_ema": nan if self.acc is None else self.acc, "na_ema": nan if self.na is None else self.na}

    def state_dict(self) -> dict[str, Any]:
        return {"acc": self.acc, "na": self.na}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.acc, self.na = state["acc"], state["na"]


def _rate(value: object) -> float | None:
    """``value`` as a float if it is a rate in [0, 1], else None."""
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 <= rate <= 1.0 else None


def check_phases(scheduler: str, phases: Iterable[str], **chosen: str) -> tuple[str, ...]:
    """Raise if a phase named in the config is not one of the game's; return the game's phases."""
    phases = tuple(phases)
    for key, name in chosen.items():
        if name not in phases:
            raise ValueError(
                f"Scheduler {scheduler!r}: {key}={name!r} is not a phase of this game. "
                f"The game's phases: {', '.join(phases) or 'none'}. Set `{key}` in the scheduler config."
            )
    return phases


class EmaScheduler:
    """Base of the built-in schedulers. A subclass sets ``name`` and ``Config``, calls
    ``super().__init__(config, phases, start)`` and implements ``next_phase()``, which looks
    at ``self.emas`` and ``self.steps_in_phase`` (steps trained in ``self.phase`` so far,
    this one included) and returns the phase of the coming step."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    requires: ClassVar[tuple[str, ...]] = METRIC_KEYS
    """Metrics the game must declare and report (checked before a run starts); ``update``
    raises a KeyError naming any that a step lacks."""
    min_steps: int = 1
    """The fewest steps a phase is trained before ``next_phase`` may leave it (a subclass
    with a minimum sets it in ``__init__`` from its config; ``check_scheduler`` holds it to it)."""

    def __init__(self, config: BaseModel, phases: tuple[str, ...], start: str) -> None:
        self.config = config
        self.phases = tuple(phases)
        self.phase = start
        self.steps_in_phase = 0
        self.emas = RateEmas(config.ema_alpha, required=self.requires)

    def next_phase(self) -> str:
        raise NotImplementedError

    def update(self, step: int, metrics: Mapping[str, float]) -> str:
        """Take the metrics of the step just trained; return the phase of the next step.
        ``step`` is informational: decisions depend only on how many updates were seen."""
        self.emas.update(metrics)
        self.steps_in_phase += 1
        new = self.next_phase()
        if new != self.phase:
            self.phase, self.steps_in_phase = new, 0
        return self.phase

    def metrics(self) -> dict[str, float]:
        return {**self.emas.metrics(), "steps_in_phase": float(self.steps_in_phase)}

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "steps_in_phase": self.steps_in_phase, "emas": self.emas.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["phase"] not in self.phases:
            raise ValueError(
                f"Scheduler {self.name!r}: the saved phase {state['phase']!r} is not a phase of this "
                f"game ({', '.join(self.phases)}). Was the checkpoint made with another game?"
            )
        self.phase = state["phase"]
        self.steps_in_phase = int(state["steps_in_phase"])
        self.emas.load_state_dict(state["emas"])


class FixedPhaseScheduler(EmaScheduler):
    """Base of the ablations that never leave one phase: the one named by the config field
    ``phase_key``. They read no metric to decide (``requires = ()``); the ``acc`` and ``na``
    EMAs are logged when the game reports them, so the runs compare with Iterative-SPO's."""

    phase_key: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BaseModel, *, phases: tuple[str, ...]) -> None:
        phase = getattr(config, self.phase_key)
        super().__init__(config, check_phases(self.name, phases, **{self.phase_key: phase}), phase)

    def next_phase(self) -> str:
        return self.phase
