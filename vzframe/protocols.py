"""The four things a plugin can add: a Game, its Roles, RewardFns, and a PhaseScheduler
(plus ImageSources). Structural types: any class with these members qualifies.

A **stage** is a step inside a game (clue, decision); a **phase** is a training regime
chosen by the scheduler (clue self-play, decision RLVR). Each game maps phase names to
stages through ``phases``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from vzframe.types import Episode, ImageItem, Metric, Observation, PhaseSpec, Turn

ImageDraw = Callable[[], ImageItem]
"""Hands a game the next picture of the run's image stream."""


@runtime_checkable
class Role(Protocol):
    """A part a player plays. ``brief`` is the instruction the player is given."""

    name: str
    brief: str


@runtime_checkable
class Game(Protocol):
    """A turn-based game as a pure state machine: it never calls a model.

    Constructed as ``cls(config, seed=..., images=...)`` with an instance of ``cls.Config``,
    an integer seed (the game's only source of randomness) and an ``ImageDraw``. The runtime
    asks ``to_act()`` who moves now (several players may move at once, e.g. a vote), gives
    each its ``observe(player)`` to the model, and feeds the completion to ``step``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    roles: ClassVar[tuple[Role, ...]]
    phases: ClassVar[Mapping[str, PhaseSpec]]
    metrics: ClassVar[Mapping[str, Metric]]
    """What the game's ``collect_metrics`` hook reports; a scheduler's ``requires`` is checked
    against it before a run starts."""

    def to_act(self) -> tuple[int, ...]:
        """Players (1-based) who must move now; empty once the game is over."""

    def observe(self, player: int) -> Observation:
        """What ``player`` sees now, as a chat prompt with images."""

    def step(self, player: int, completion: str) -> Turn:
        """Record ``player``'s completion. Untrusted text: never raises on its content."""

    def episode(self) -> Episode:
        """The finished game. Only valid once ``to_act()`` is empty."""


@runtime_checkable
class RewardFn(Protocol):
    """Scores the turns of one stage of a finished episode.

    Returns ``{turn.index: reward}`` for the turns it scores; the game's config is passed so
    coefficients live in one place.
    """

    name: str
    stage: str

    def __call__(self, episode: Episode, config: BaseModel) -> dict[int, float]: ...


@runtime_checkable
class PhaseScheduler(Protocol):
    """Chooses the training phase of the next step from the metrics of this one.

    Constructed as ``cls(config, phases=...)`` with an instance of ``cls.Config`` and the
    phase names the game offers. ``phase`` is the phase the coming step trains.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    requires: ClassVar[tuple[str, ...]]
    """Metrics the scheduler reads in ``update``; the game must declare them in ``metrics``."""
    phase: str

    def update(self, step: int, metrics: Mapping[str, float]) -> str:
        """Take this step's (rank-averaged) metrics; return the phase of the next step."""

    def metrics(self) -> dict[str, float]:
        """The scheduler's own statistics to log (e.g. the EMAs it decides on)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class ImageSource(Protocol):
    """A deterministic, indexable stream of pictures: ``get(i)`` is the same for the same
    config and ``i``. Constructed as ``cls(config, seed=...)``. A source that can render a
    picture's modified twin sets ``ImageItem.twin``."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def get(self, index: int) -> ImageItem: ...


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` (annotated attributes and methods) that ``obj`` lacks: how
    ``resolve`` checks each plugin against its protocol once, before a run.

    >>> class Half:
    ...     name, Config = "half", None
    ...     def get(self, index): ...
    >>> missing_members(Half(), ImageSource), missing_members(Half(), PhaseScheduler)[:3]
    ([], ['requires', 'phase', 'update'])
    """
    names = [*getattr(protocol, "__annotations__", {})]
    names += [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_") and n not in names]
    return [n for n in names if not hasattr(obj, n)]
