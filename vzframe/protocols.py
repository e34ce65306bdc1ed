"""The four things a plugin can add: a Game, its Roles, RewardFns, and a PhaseScheduler
(plus ImageSources). Structural types: any class with these members qualifies.

A **stage** is a step inside a game (clue, decision); a **phase** is a training regime
chosen by the scheduler (clue self-play, decision RLVR). Each game maps phase names to
stages through ``phases``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, overload, runtime_checkable

from pydantic import BaseModel

from vzframe.models import ToyModel
from vzframe.types import Episode, ImageItem, Metric, Observation, PhaseSpec, Turn

ImageDraw = Callable[[], ImageItem]
"""Hands a game the next picture of the run's image stream."""


@runtime_checkable
class Role(Protocol):
    """A part a player plays. ``brief`` is the instruction the player is given. Read-only:
    a frozen dataclass's fields will do."""

    @property
    def name(self) -> str: ...

    @property
    def brief(self) -> str: ...


@runtime_checkable
class Game(Protocol):
    """A turn-based game as a pure state machine: it never calls a model.

    Constructed as ``cls(config, seed=..., images=...)`` with an instance of ``cls.Config``,
    an integer seed (the game's only source of randomness) and an ``ImageDraw``. The runtime
    asks ``to_act()`` who moves now (several players may move at once, e.g. a vote), gives
    each its ``observe(player)`` to the model, and feeds the completion to ``step``.

    A game may also have the optional members of ``GameExtras`` (``default_model``,
    ``default_images``, ``teacher``, ``example_completions``, ``reward_fns``,
    ``collect_metrics``, ``outcome``); read them with ``optional``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    roles: ClassVar[tuple[Role, ...]]
    phases: ClassVar[Mapping[str, PhaseSpec]]
    metrics: ClassVar[Mapping[str, Metric]]
    """What the game's ``collect_metrics`` reports; a scheduler's ``requires`` is checked
    against it before a run starts."""

    def __init__(self, config: BaseModel, *, seed: int, images: ImageDraw) -> None: ...

    def to_act(self) -> tuple[int, ...]:
        """Players (1-based) who must move now; empty once the game is over."""

    def observe(self, player: int) -> Observation:
        """What ``player`` sees now, as a chat prompt with images."""

    def step(self, player: int, completion: str) -> Turn:
        """Record ``player``'s completion. Untrusted text: never raises on its content."""

    def episode(self) -> Episode:
        """The finished game. Only valid once ``to_act()`` is empty."""


class GameExtras(Protocol):
    """The optional members of a ``Game``, each a class attribute: not part of the structural
    check (``missing_members``), and absent means ``None``. Read them with ``optional``, which
    gives that default, never with ``getattr``."""

    default_model: ClassVar[str | None]
    """The model a run uses when its config names none: a registered name (``register_models``)
    or a directory (``vzframe.models.choose``)."""
    default_images: ClassVar[str | None]
    """The image source a run (and ``build-toy``) uses when its config names none."""
    teacher: ClassVar[Teacher | None]
    """A scripted player for every seat (``Teacher``): what ``build-toy`` warm-starts a model on
    and ``check_game`` plays."""
    example_completions: ClassVar[Callable[[Observation], Sequence[str]] | None]
    """Well-formed completions for an observation (a ``staticmethod``): ``check_game``'s
    scripted policy; without it, it plays adversarial strings only."""
    reward_fns: ClassVar[tuple[RewardFn, ...]]
    """The game's own reward functions, named by its ``phases`` (absent: ``()``, and the
    registered ones, ``register_reward_fns``, are used; read through ``vzframe.gamespec``)."""
    collect_metrics: ClassVar[Callable[[Sequence[Episode]], dict[str, float] | None] | None]
    """The game's metrics of its episodes (a ``staticmethod``): every name of ``metrics``."""
    outcome: ClassVar[Callable[[Episode], dict[str, float] | None] | None]
    """Each role's result in [0, 1] in one episode (a ``staticmethod``): what ``vzframe league``
    rates from."""
    toy_model: ClassVar[ToyModel | None]
    """Its own toy model, declared as data (``ToyModel``): ``plugins.toy_world`` registers it and
    the first run that loads it builds it with ``build-toy``."""


OPTIONAL: Mapping[str, object] = MappingProxyType(
    {
        "default_model": None, "default_images": None, "teacher": None, "example_completions": None,
        "reward_fns": (), "collect_metrics": None, "outcome": None, "toy_model": None, "min_steps": 1,
    }
)
"""Every optional protocol member the runtime and the kits read, with what its absence means:
``GameExtras``' members and ``PhaseScheduler.min_steps``."""


@overload
def optional(obj: object, name: Literal["default_model", "default_images"]) -> str | None: ...
@overload
def optional(obj: object, name: Literal["teacher"]) -> Teacher | None: ...
@overload
def optional(obj: object, name: Literal["example_completions"]) -> Callable[[Observation], Sequence[str]] | None: ...
@overload
def optional(obj: object, name: Literal["reward_fns"]) -> tuple[RewardFn, ...]: ...
@overload
def optional(obj: object, name: Literal["collect_metrics"]) -> Callable[[Sequence[Episode]], dict[str, float] | None] | None: ...
@overload
def optional(obj: object, name: Literal["outcome"]) -> Callable[[Episode], dict[str, float] | None] | None: ...
@overload
def optional(obj: object, name: Literal["toy_model"]) -> ToyModel | None: ...
@overload
def optional(obj: object, name: Literal["min_steps"]) -> int: ...
def optional(obj: object, name: str) -> object:
    """``obj``'s optional member ``name`` (a key of ``OPTIONAL``), or what its absence means:
    how every reader gets a game's ``teacher`` or a scheduler's ``min_steps``.

    >>> class Bare:
    ...     name = "bare"
    >>> optional(Bare, "teacher") is None, optional(Bare, "min_steps")
    (True, 1)
    >>> optional(Bare, "name")
    Traceback (most recent call last):
    ...
    KeyError: "'name' is not an optional protocol member; those are default_model, default_images, teacher, example_completions, reward_fns, collect_metrics, outcome, toy_model, min_steps"
    """
    if name not in OPTIONAL:
        raise KeyError(f"{name!r} is not an optional protocol member; those are {', '.join(OPTIONAL)}")
    return getattr(obj, name, OPTIONAL[name])


@runtime_checkable
class RewardFn(Protocol):
    """Scores the turns of one stage of a finished episode.

    Returns ``{turn.index: reward}`` for the turns it scores; the game's config (an instance of
    its own ``Config``) is passed so coefficients live in one place.
    """

    @property
    def name(self) -> str: ...

    @property
    def stage(self) -> str:
        """The stage whose turns it scores."""

    def __call__(self, episode: Episode, config: Any) -> dict[int, float]: ...


@runtime_checkable
class PhaseScheduler(Protocol):
    """Chooses the training phase of the next step from the metrics of this one.

    Constructed as ``cls(config, phases=...)`` with an instance of ``cls.Config`` and the
    phase names the game offers. ``phase`` is the phase the coming step trains.

    Optional member (not part of the structural check): ``min_steps: int``, a class or
    instance attribute, the fewest steps a phase is trained before ``update`` may leave it
    (absent means 1: ``optional(scheduler, "min_steps")``); ``check_scheduler`` holds the
    scheduler to it.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    requires: tuple[str, ...]
    """Metrics the scheduler reads in ``update``; the game must declare them in ``metrics``. A
    class attribute, or set in ``__init__`` when the config names them (``self.requires =
    (config.metric,)``): a run reads it from the built scheduler before the first step."""
    phase: str

    def __init__(self, config: BaseModel, *, phases: tuple[str, ...]) -> None: ...

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

    def __init__(self, config: BaseModel, *, seed: int) -> None: ...

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
                phrases: Sequence[str] = describe(source.get(decoys_from + rng.randrange(1 << 20)))
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
    """The members of ``protocol`` (annotated attributes, read-only properties and methods) that
    ``obj`` lacks: how ``resolve`` checks each plugin against its protocol once, before a run.

    >>> class Half:
    ...     name, Config = "half", None
    ...     def get(self, index): ...
    >>> missing_members(Half(), ImageSource), missing_members(Half(), PhaseScheduler)[:3]
    ([], ['requires', 'phase', 'update'])
    """
    names = [*getattr(protocol, "__annotations__", {})]
    names += [
        n for n, v in vars(protocol).items() if (callable(v) or isinstance(v, property)) and not n.startswith("_") and n not in names
    ]
    return [n for n in names if not hasattr(obj, n)]
