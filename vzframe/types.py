"""The data that flows through a run: plain frozen dataclasses that round-trip through JSON.

An ``Observation`` is what one player sees before it acts; a ``Turn`` records what it did;
an ``Episode`` is one finished game; a ``Sample`` is one turn chosen for training; a
``Batch`` is the samples of one optimizer step. Images travel as ``ImageItem`` (an id, the
picture, its metadata and, from sources that can, a way to render its modified twin); in
JSON only the id is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image


@dataclass(frozen=True)
class ImageItem:
    """One picture with a stable id (written to logs) and its source's metadata."""

    id: str
    image: Image.Image = field(repr=False, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    twin: Callable[[], ImageItem] | None = field(default=None, repr=False, compare=False)
    """Renders this picture's modified twin (the same scene with a few objects changed), for
    games that show one player a subtly different picture; None if the source cannot."""


@dataclass(frozen=True)
class Observation:
    """What one player sees before it acts.

    ``messages`` is a chat in Hugging Face format; each ``{"type": "image"}`` entry in a
    message's content stands for the next picture in ``images``, in order.
    """

    player: int
    role: str
    stage: str
    messages: tuple[dict[str, Any], ...]
    images: tuple[ImageItem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "role": self.role,
            "stage": self.stage,
            "messages": list(self.messages),
            "images": [im.id for im in self.images],
        }

    def prompt_text(self) -> str:
        """The chat flattened to readable text, for logs and reports."""
        lines = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, str):
                parts = [content]
            else:
                parts = ["<image>" if c.get("type") == "image" else c.get("text", "") for c in content]
            lines.append(f"[{message['role']}] " + "".join(parts))
        return "\n".join(lines)


ActionKind = Literal["clue", "vote", "na", "invalid"]


@dataclass(frozen=True)
class Action:
    """A parsed completion. ``invalid`` is a value, never an exception."""

    kind: str
    value: str | int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Turn:
    """One move of one player, as the game recorded it."""

    index: int
    player: int
    role: str
    stage: str
    prompt: str
    images: tuple[str, ...]
    completion: str
    action: Action
    reward: float | None = None
    advantage: float | None = None
    trained: bool = False
    """Whether the step trained on this turn (its stage is the active phase's, and a reward
    function scored it)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        return cls(**{**d, "images": tuple(d["images"]), "action": Action(**d["action"])})


@dataclass(frozen=True)
class Episode:
    """One finished game: who played which role, every turn, and game-specific facts."""

    game: str
    seed: int
    roles: tuple[str, ...]  # roles[i] is the role of player i + 1
    turns: tuple[Turn, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            game=d["game"],
            seed=d["seed"],
            roles=tuple(d["roles"]),
            turns=tuple(Turn.from_dict(t) for t in d["turns"]),
            info=d.get("info", {}),
        )

    def role_of(self, player: int) -> str:
        return self.roles[player - 1]

    def turns_of(self, stage: str) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.stage == stage)


@dataclass(frozen=True)
class Metric:
    """A metric a game reports through ``collect_metrics``, declared in the game's
    ``metrics`` so schedulers' needs are checked before a run starts. ``label`` names it on
    screens; ``headline`` metrics are the ones the progress line shows."""

    label: str
    headline: bool = False


@dataclass(frozen=True)
class PhaseSpec:
    """What a training phase means for a game: which stage's turns carry gradient, the
    reward functions that score them (summed), and how advantages are estimated
    (``group``: normalised over each game's turns of that stage; ``role``: reward minus the
    role's running baseline). ``zero_sum`` declares that the phase's rewards sum to 0 over
    the scored turns of every episode (what one player wins another loses); runs and
    ``check_game`` verify it."""

    stage: str
    rewards: tuple[str, ...]
    advantage: Literal["group", "role"]
    zero_sum: bool = False


@dataclass(frozen=True)
class Sample:
    """One turn chosen for training: the prompt it answered, the tokens it generated and
    its advantage."""

    observation: Observation
    completion_ids: tuple[int, ...]
    advantage: float
    episode: int
    turn: int
    prompt: Any = None
    """The observation as rollout encoded it (``vzframe.rollout.Encoded``), reused by the
    trainer instead of running the processor again; None to encode it anew."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "observation": self.observation.to_dict(),
            "completion_ids": list(self.completion_ids),
            "advantage": self.advantage,
            "episode": self.episode,
            "turn": self.turn,
        }


@dataclass(frozen=True)
class Batch:
    """The samples of one optimizer step, all from the active phase."""

    step: int
    phase: str
    samples: tuple[Sample, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "phase": self.phase, "samples": [s.to_dict() for s in self.samples]}
