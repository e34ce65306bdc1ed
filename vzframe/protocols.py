"""The four things a plugin can add: a Game, its Roles, RewardFns, and a PhaseScheduler
(plus ImageSources). Structural types: any class with these members qualifies.

A **stage** is a step inside a game (clue, decision); a **phase** is a training regime
chosen by the scheduler (clue self-play, decision RLVR). Each game maps phase names to
stages through ``phases``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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

    Optional member (not part of the structural check): ``min_steps: int``, a class or
    instance attribute, the fewest steps a phase is trained before ``update`` may leave it
    (absent means 1); ``check_scheduler`` holds the scheduler to it.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    requires: tuple[str, ...]
    """Metrics the scheduler reads in ``update``; the game must declare them in ``metrics``. A
    class attribute, or set in ``__init__`` when the config names them (``self.requires =
    (config.metric,)``): a run reads it from the built scheduler before the first step."""
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


@dataclass(frozen=True)
class Facts:
    """What a teacher may know about pictures, from the run's image source.

    ``describe(item)`` lists what a picture shows as short noun phrases (``("a red cube",
    "a small blue sphere")``), each true of it; ``decoy(rng)`` is one such phrase of some
    *other* picture of the same source: what a player who cannot see can plausibly invent.
    """

    describe: Callable[[ImageItem], tuple[str, ...]]
    decoy: Callable[[random.Random], str]

    @classmethod
    def of(cls, source: Any, *, decoys_from: int = 1 << 30) -> Facts:
        """Facts from an image source with ``describe`` (a ``DescribingSource``): decoys are
        phrases of the source's pictures at indices from ``decoys_from`` on, far from the
        pictures games draw. A source without ``describe`` raises ``TypeError`` naming it."""
        describe = getattr(source, "describe", None)
        if not callable(describe):
            raise TypeError(
                f"image source {getattr(source, 'name', type(source).__name__)!r} cannot describe its pictures "
                "(it has no describe(item)), so no teacher can play on it. Use one that can (clevr, clevr_toy, "
                "charts) or add describe(item) to the source (docs/plugins.md)."
            )

        def decoy(rng: random.Random) -> str:
            for _ in range(8):
                phrases = describe(source.get(decoys_from + rng.randrange(1 << 20)))
                if phrases:
                    return rng.choice(phrases)
            raise ValueError(f"image source {getattr(source, 'name', '?')!r} described 8 pictures as empty")

        return cls(describe, decoy)


@runtime_checkable
class Teacher(Protocol):
    """Optional part of a game: a scripted policy that plays every seat well.

    A game offers one as the class attribute ``teacher`` (an instance). It may read the
    game's hidden state (roles, pictures) and, through ``Facts``, the pictures' metadata;
    it never calls a model. ``vzframe model build-toy --game NAME`` warm-starts a small
    model on its moves, and ``vzframe.testing.check_game`` plays whole games with it.
    A teacher should show the behaviours self-play later reweighs (bluffing and admitting,
    abstaining when the evidence does not single anyone out), not only the best move.
    """

    def act(self, game: Any, player: int, facts: Facts, rng: random.Random) -> str:
        """The completion ``player`` (who is in ``game.to_act()``) gives now, in the game's
        action format. All randomness comes from ``rng``; it reads ``game`` and changes
        nothing of it, hidden state and pictures included (``check_game`` compares)."""

    def clue_truth(self, game: Any, player: int, completion: str, facts: Facts) -> bool | None:
        """Whether ``completion``, ``player``'s next move, states something true of the
        picture that player sees; ``None`` when the move is not a statement about it (a vote,
        a player who sees no picture). A player whose role asks for a false claim is judged
        on its picture too, not on how well it plays its role. How build-toy measures clue
        truthfulness; it changes nothing of ``game`` either."""


class DescribingSource(ImageSource, Protocol):
    """An image source that can say what its pictures show (from ``meta``): what
    ``Facts.describe`` is built from. Optional: a folder of photos cannot."""

    def describe(self, item: ImageItem) -> tuple[str, ...]: ...


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
