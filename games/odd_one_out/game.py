"""Visual "Odd One Out" as a pure state machine (see README.md for the table).

All players but one see picture A; the odd one (a random seat) sees picture B, the next
picture of the image stream. Unlike the spy, the odd player is **not told** that it is odd:
every prompt reads the same whatever the role, so it has to work it out from the clues.
``clue_rounds`` rounds of one-sentence clues in seat order, then every player votes at once
for the player who saw the different picture, itself included. The clue rounds, the votes'
turns and the clue prompts are ``games.clue_vote``'s, shared with the spy game. Parsing is the
shared total parser of ``vzframe.parsing``: unusable text becomes ``Action("invalid")``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from games.clue_vote import (
    MAX_CLUE_ROUNDS,
    MAX_PLAYERS,
    PLAYER_LINE,
    PLAYER_LINE_RE,
    VOTE_METRICS,
    ClueVoteGame,
    clue_valid,
    most_voted,
    vote_rates,
)
from games.odd_one_out import prompts
from games.odd_one_out.rewards import REWARD_FNS
from games.odd_one_out.roles import COMMON, ODD, OddRole
from games.odd_one_out.teacher import OddTeacher
from vzframe.models import ToyModel
from vzframe.protocols import ImageDraw, RewardFn
from vzframe.types import Episode, ImageItem, Metric, Observation, PhaseSpec

MAX_DRAWS = 8
"""Pictures drawn at most to find one whose id differs from picture A's."""


class OddOneOutConfig(BaseModel):
    """Settings of one Odd One Out game and of its rewards."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    num_players: int = Field(4, ge=3, le=MAX_PLAYERS)
    """Players in a game; one of them (a random seat) sees the odd picture."""
    clue_rounds: int = Field(2, ge=1, le=MAX_CLUE_ROUNDS)
    """Rounds of clues before the vote; every player speaks once per round, in seat order."""
    beta: float = Field(0.1, ge=0, allow_inf_nan=False)
    """Clue reward: weight of the odd-versus-common vote gap Psi (zero-sum)."""
    lam: float = Field(0.1, ge=0, allow_inf_nan=False)
    """Clue reward (lambda): penalty on a common player's votes above the common players' mean."""
    vote_correct: float = Field(1.0, allow_inf_nan=False)
    """Decision reward for a vote for the odd player (the odd player naming itself included)."""
    vote_na: float = Field(-0.5, allow_inf_nan=False)
    """Decision reward for answering N/A."""
    vote_wrong: float = Field(-1.0, allow_inf_nan=False)
    """Decision reward for a vote for a common player, or an invalid answer."""
    max_clue_chars: int = Field(400, ge=1)
    """A clue longer than this is cut to this many characters in what players see."""


class OddOneOutGame(ClueVoteGame):
    """One game of visual Odd One Out. Construct with ``OddOneOutGame(config, seed=, images=)``."""

    name: ClassVar[str] = "odd_one_out"
    Config: ClassVar[type[OddOneOutConfig]] = OddOneOutConfig
    roles: ClassVar[tuple[OddRole, ...]] = (ODD, COMMON)
    metrics: ClassVar[Mapping[str, Metric]] = MappingProxyType(
        {**VOTE_METRICS, "odd_found": Metric("odd one found", headline=True), "odd_self_found": Metric("odd found by itself")}
    )
    phases: ClassVar[Mapping[str, PhaseSpec]] = MappingProxyType(
        {
            "decision": PhaseSpec("decision", ("odd.vote",), "group"),
            "clue": PhaseSpec("clue", ("odd.clue",), "role", zero_sum=True),
        }
    )
    self_votes: ClassVar[bool] = True  # naming yourself is a valid vote, and correct if you are odd
    teacher: ClassVar[OddTeacher] = OddTeacher()
    """The scripted player ``vzframe model build-toy`` warm-starts on (``teacher.py``)."""
    toy_model: ClassVar[ToyModel | None] = ToyModel("toy-odd-one-out", images="clevr_toy")
    """Its toy-world model, which ``plugins.toy_world`` registers and the first run that loads it builds."""
    default_model: ClassVar[str | None] = "toy-odd-one-out"
    reward_fns: ClassVar[tuple[RewardFn, ...]] = REWARD_FNS
    """``odd.vote`` and ``odd.clue`` (``games.odd_one_out.rewards``)."""

    @staticmethod
    def collect_metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
        """Vote accuracy, N/A and invalid rates, how often the group finds the odd player and how
        often it finds itself, and clue validity. None when no episode is an Odd One Out game."""
        games = [e for e in episodes if e.game == OddOneOutGame.name]
        if not games:
            return None
        decisions = [(t, e.info["odd"]) for e in games for t in e.turns_of("decision")]
        found = sum((OddOneOutGame.outcome(e)["common"] for e in games), 0.0)  # type: ignore[index]  # an odd game: a dict
        self_found = sum(t.action.kind == "vote" and t.player == t.action.value == odd for t, odd in decisions)
        return {
            **vote_rates([(t.action, odd) for t, odd in decisions]),
            "odd_found": found / len(games),
            "odd_self_found": self_found / len(games),
            "clue_valid": clue_valid(games),
        }

    @staticmethod
    def outcome(episode: Episode) -> dict[str, float] | None:
        """The common players win when the odd player gets the most votes (its own vote for
        itself included), the odd player otherwise; None for another game's episode."""
        if episode.game != OddOneOutGame.name:
            return None
        counts = Counter(t.action.value for t in episode.turns_of("decision") if t.action.kind == "vote")
        found = float(most_voted(counts, episode.info["odd"]))  # type: ignore[arg-type]  # a vote's value is a seat
        return {"odd": 1.0 - found, "common": found}

    def __init__(self, config: OddOneOutConfig | Mapping[str, Any] | None = None, *, seed: int, images: ImageDraw):
        self.config = config if isinstance(config, OddOneOutConfig) else OddOneOutConfig.model_validate(config or {})
        self.seed = seed
        self.num_players = self.config.num_players
        self.odd = random.Random(seed).randint(1, self.num_players)
        common, odd = _draw_two(images)
        self._common_image = common
        self._images = {p: odd if p == self.odd else common for p in self.seats}
        self._start_clues(voters=self.seats)

    def role_of(self, player: int) -> OddRole:
        return ODD if player == self.odd else COMMON

    def observe(self, player: int) -> Observation:
        """Rules and brief, then the player's picture, the clues, its own reasoning and task.
        The text is the same for every role: only the picture differs."""
        system = prompts.rules(self.num_players, self.config.clue_rounds) + "\n\n" + prompts.BRIEF
        head = [PLAYER_LINE.format(player=player, num_players=self.num_players)]
        return self._observation(player, system, head, prompts.DECISION_TASK)

    def episode(self) -> Episode:
        """The finished game; ``info`` holds the odd seat and both pictures' ids."""
        self._check_over()
        return Episode(
            game=self.name,
            seed=self.seed,
            roles=tuple(self.role_of(p).name for p in self.seats),
            turns=tuple(self._turns),
            info={
                "odd": self.odd,
                "image": self._common_image.id,
                "odd_image": self._images[self.odd].id,
                "num_players": self.num_players,
                "clue_rounds": self.config.clue_rounds,
            },
        )

    @staticmethod
    def example_completions(observation: Observation) -> list[str]:
        """Plausible well-formed completions for ``observation`` (used by ``check_game``)."""
        if observation.stage == "clue":
            return [
                "<think>The clues so far match my picture.</think><answer>I see a few simple shapes.</answer>",
                "<think>Nobody mentioned my colours; I may be the odd one.</think><answer>Something is round.</answer>",
                "<answer>The background is plain.</answer>",
            ]
        text = observation.messages[-1]["content"][-1]["text"]
        match = PLAYER_LINE_RE.search(text)
        num_players = int(match.group(2)) if match else observation.player
        votes = [f"<think>Player {p}'s clues fit least.</think><answer>{p}</answer>" for p in range(1, num_players + 1)]
        return [*votes, "<think>I cannot tell.</think><answer>N/A</answer>", f"<answer>Player {observation.player}</answer>"]


def _draw_two(images: ImageDraw) -> tuple[ImageItem, ImageItem]:
    """Picture A for the common players, then the next picture with another id for the odd one."""
    common = _image(images)
    for _ in range(MAX_DRAWS):
        odd = _image(images)
        if odd.id != common.id:
            return common, odd
    raise ValueError(
        f"The image stream gave picture {common.id!r} {MAX_DRAWS + 1} times in a row; Odd One Out needs "
        "two different pictures per game. Use an image source with more than one picture."
    )


def _image(images: ImageDraw) -> ImageItem:
    item = images()
    if not isinstance(item, ImageItem):
        raise TypeError(f"images() must return a vzframe.types.ImageItem, got {type(item).__name__}")
    return item
