"""The visual "Who is the Spy" game as a pure state machine (see README.md for the table).

Citizens see a real picture, the spy a blank one of the same size (or, with ``spy_image:
modified``, the picture's modified twin). ``clue_rounds`` rounds of one-sentence clues in seat
order, then every citizen votes at once (or, with ``decision: judge``, ``judge_samples``
samples of one judge who sees the citizens' picture). The clue rounds, the voters' turns
and the clue prompts are ``games.clue_vote``'s, shared with Odd One Out. Model output is
untrusted: parsing (shared, in ``vzframe.parsing``) is total and an unusable completion
becomes ``Action("invalid")``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from PIL import Image
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
    picture_messages,
    vote_counts,
    vote_rates,
)
from games.spy import prompts
from games.spy.rewards import REWARD_FNS, num_players
from games.spy.roles import CITIZEN, JUDGE, SPY, SpyRole
from games.spy.teacher import SpyTeacher
from vzframe.config import ConfigError
from vzframe.parsing import parse_clue, parse_vote  # noqa: F401  (re-exported: callers use game.parse_vote)
from vzframe.protocols import ImageDraw, RewardFn, Role
from vzframe.types import Episode, ImageItem, Metric, Observation, PhaseSpec


class SpyConfig(BaseModel):
    """Settings of one spy game and of its rewards."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    num_citizens: int = Field(3, ge=2, le=MAX_PLAYERS - 1)
    """Players who see the real picture (2 to 11); the game has num_citizens + 1 players."""
    clue_rounds: int = Field(2, ge=1, le=MAX_CLUE_ROUNDS)
    """Rounds of clues before the vote; every player speaks once per round, in seat order."""
    spy_image: Literal["blank", "modified"] = "blank"
    """The spy's picture: `blank` (the paper) or `modified`, the citizens' picture with a few
    objects changed (the reference's CLEVR pairs; needs a source with twins, e.g. images=clevr)."""
    blank_color: str = Field("#ffffff", pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")
    """Hex colour (#rgb or #rrggbb) of the spy's blank picture (spy_image=blank)."""
    decision: Literal["vote", "judge"] = "vote"
    """Who finds the spy: `vote` (the paper: every citizen votes) or `judge` (the reference:
    one judge who sees the citizens' picture and all clues, sampled judge_samples times)."""
    judge_samples: int = Field(8, ge=2, le=64)
    """decision=judge: samples of the judge; their votes are the decision group (at least 2: a
    group of one always has advantage 0)."""
    beta: float = Field(0.1, ge=0, allow_inf_nan=False)
    """Clue reward: weight of the spy-versus-citizens vote gap Psi (zero-sum)."""
    lam: float = Field(0.1, ge=0, allow_inf_nan=False)
    """Clue reward (lambda): penalty on a citizen's votes above the citizens' mean."""
    vote_correct: float = Field(1.0, allow_inf_nan=False)
    """Decision reward for a vote for the spy."""
    vote_na: float = Field(-0.5, allow_inf_nan=False)
    """Decision reward for answering N/A."""
    vote_wrong: float = Field(-1.0, allow_inf_nan=False)
    """Decision reward for a vote for a citizen, or an invalid answer."""
    format_weight: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Decision reward: +w for an exact <think>…</think><answer>…</answer> vote, -w otherwise
    (the reference uses 0.3; 0 turns it off)."""
    correct_bonus: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Decision reward: extra reward for a vote for the spy (the reference uses 0.99; 0 turns it off)."""
    max_clue_chars: int = Field(400, ge=1)
    """A clue longer than this is cut to this many characters in what players see."""


# ---- the game ---------------------------------------------------------------------------


class SpyGame(ClueVoteGame):
    """One game of visual "Who is the Spy". Construct with ``SpyGame(config, seed=, images=)``."""

    name: ClassVar[str] = "spy"
    default_model: ClassVar[str | None] = "toy-world"  # plugins.toy_world: warm-started on this game (clevr_toy)
    Config: ClassVar[type[BaseModel]] = SpyConfig  # as the Game protocol declares it: mypy holds class variables to their exact type
    roles: ClassVar[tuple[Role, ...]] = (SPY, CITIZEN, JUDGE)
    teacher: ClassVar[SpyTeacher] = SpyTeacher()
    """The scripted player build-toy warm-starts on and check_game plays (``games.spy.teacher``)."""
    metrics: ClassVar[Mapping[str, Metric]] = MappingProxyType({
        **VOTE_METRICS, "spy_caught": Metric("spy caught", headline=True),
        "bluff_acc": Metric("vote accuracy, spy bluffs"), "bluff_caught": Metric("spy caught, spy bluffs"),
    })  # fmt: skip
    """``bluff_*``: the same figures over the games whose spy never said its picture is blank
    (``spy_bluffed``), where a vote is right only if the voter checked the clues against its
    picture; NaN when no game of the batch had a bluffing spy (every declared metric is reported
    at every step, on every rank)."""
    phases: ClassVar[Mapping[str, PhaseSpec]] = MappingProxyType(
        {
            "decision": PhaseSpec("decision", ("spy.vote",), "group"),
            "clue": PhaseSpec("clue", ("spy.clue",), "role", zero_sum=True),
        }
    )
    reward_fns: ClassVar[tuple[RewardFn, ...]] = REWARD_FNS
    """``spy.vote``, ``spy.clue`` and ``spy.format`` (``games.spy.rewards``)."""

    @staticmethod
    def collect_metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
        """Vote accuracy, N/A and invalid rates, how often the spy is caught, and clue validity.
        Votes are the decision turns: the citizens' votes, or the judge's samples."""
        games = [e for e in episodes if e.game == SpyGame.name]
        if not games:
            return None
        votes = [(t.action, e.info["spy"]) for e in games for t in e.turns_of("decision")]
        caught = sum(spy_caught(e) for e in games)
        out = {**vote_rates(votes), "spy_caught": caught / len(games), "clue_valid": clue_valid(games)}
        bluffs = [e for e in games if spy_bluffed(e)]
        votes = [(t.action, e.info["spy"]) for e in bluffs for t in e.turns_of("decision")]
        nan = float("nan")  # no bluff game in the batch: no figure (the report and the jackknife skip NaN)
        out["bluff_acc"] = vote_rates(votes)["acc"] if votes else nan
        out["bluff_caught"] = sum(spy_caught(e) for e in bluffs) / len(bluffs) if bluffs else nan
        return out

    @staticmethod
    def outcome(episode: Episode) -> dict[str, float] | None:
        """The citizens (and judges) win when the spy gets the most votes, the spy otherwise (a
        tie for most votes does not catch it); None for another game's episode."""
        if episode.game != SpyGame.name:
            return None
        caught = spy_caught(episode)
        return {"spy": 1.0 - caught, "citizen": caught, "judge": caught}

    def __init__(self, config: SpyConfig | Mapping[str, Any] | None = None, *, seed: int, images: ImageDraw):
        self.config = config if isinstance(config, SpyConfig) else SpyConfig.model_validate(config or {})
        self.seed = seed
        self.num_players = self.config.num_citizens + 1
        self.spy = random.Random(seed).randint(1, self.num_players)
        citizen_image = images()
        if not isinstance(citizen_image, ImageItem):
            raise TypeError(f"images() must return a vzframe.types.ImageItem, got {type(citizen_image).__name__}")
        self._citizen_image = citizen_image
        spy_image = self._spy_image(citizen_image)
        self._images = {p: spy_image if p == self.spy else citizen_image for p in self.seats}
        judging = self.config.decision == "judge"
        # judges sit after the players: seats N+1..N+k, one per sample of the judge
        self._judges = range(self.num_players + 1, self.num_players + 1 + self.config.judge_samples * judging)
        self._start_clues(voters=self._judges if judging else [p for p in self.seats if p != self.spy])

    def _spy_image(self, citizen_image: ImageItem) -> ImageItem:
        """A blank picture of the same size, or the citizens' picture's modified twin."""
        if self.config.spy_image == "modified":
            if citizen_image.twin is None:
                raise ConfigError(
                    "spy_image=modified needs an image source that renders twins, e.g. images=clevr "
                    f"(picture {citizen_image.id!r} has none). Or use game.spy_image=blank."
                )
            twin = citizen_image.twin()
            if not isinstance(twin, ImageItem):
                raise TypeError(f"{citizen_image.id!r}.twin() must return an ImageItem, got {type(twin).__name__}")
            return twin
        color, (w, h) = self.config.blank_color, citizen_image.image.size
        return ImageItem(f"blank:{color}:{w}x{h}", Image.new("RGB", (w, h), color), {"blank": True, "color": color})

    def role_of(self, player: int) -> SpyRole:
        if player in self._judges:
            return JUDGE
        return SPY if player == self.spy else CITIZEN

    def observe(self, player: int) -> Observation:
        """The system rules and role brief, then the player's picture, clues, own reasoning and task."""
        if player in self._judges:
            return self._observe_judge(player)
        role = self.role_of(player)
        system = prompts.rules(self.num_players, self.config.clue_rounds, self.config.decision) + "\n\n" + role.brief
        head = [PLAYER_LINE.format(player=player, num_players=self.num_players), prompts.ROLE_LINE[role.name]]
        return self._observation(player, system, head, prompts.DECISION_TASK)

    def _observe_judge(self, judge: int) -> Observation:
        """The judge's view: the citizens' picture, every clue, and the question."""
        system = prompts.judge_rules(self.num_players, self.config.clue_rounds) + "\n\n" + JUDGE.brief
        lines = [
            prompts.JUDGE_LINE.format(num_players=self.num_players),
            prompts.ROLE_LINE[JUDGE.name],
            "",
            *self._clue_lines(),
            "",
            prompts.JUDGE_TASK,
        ]
        messages = picture_messages(system, "\n".join(lines))
        return Observation(judge, JUDGE.name, "decision", messages, (self._citizen_image,))

    def episode(self) -> Episode:
        """The finished game; ``info`` holds the spy's seat, both image ids and the game's size
        (and ``judges``, the number of judge samples, seated after the players, if any)."""
        self._check_over()
        return Episode(
            game=self.name,
            seed=self.seed,
            roles=tuple(self.role_of(p).name for p in (*self.seats, *self._judges)),
            turns=tuple(self._turns),
            info={
                "spy": self.spy,
                "image": self._citizen_image.id,
                "spy_image": self._images[self.spy].id,
                "num_citizens": self.config.num_citizens,
                "clue_rounds": self.config.clue_rounds,
                **({"judges": len(self._judges)} if self._judges else {}),
            },
        )

    @staticmethod
    def example_completions(observation: Observation) -> list[str]:
        """Plausible well-formed completions for ``observation`` (used by ``check_game``)."""
        if observation.stage == "clue":
            return [
                "<think>I should describe my picture without giving too much away.</think>"
                "<answer>There are a few simple shapes in the picture.</answer>",
                "<think>The others mentioned colours; I will agree.</think><answer>Something is colourful.</answer>",
                "<answer>The background is plain.</answer>",
            ]
        text = observation.messages[-1]["content"][-1]["text"]
        if judge := prompts.JUDGE_LINE_RE.search(text):
            others = list(range(1, int(judge.group(1)) + 1))
        else:
            match = PLAYER_LINE_RE.search(text)
            num_players = int(match.group(2)) if match else observation.player + 1
            others = [p for p in range(1, num_players + 1) if p != observation.player]
        votes = [f"<think>Player {p}'s clues fit the picture least.</think><answer>{p}</answer>" for p in others]
        return [*votes, "<think>I cannot tell.</think><answer>N/A</answer>", f"<answer>Player {others[0]}</answer>"]


def spy_caught(episode: Episode) -> float:
    """1.0 when the spy got the most votes of one spy game, else 0.0."""
    counts = vote_counts((t.action for t in episode.turns_of("decision")), num_players(episode))
    return float(most_voted(counts, episode.info["spy"]))


def spy_bluffed(episode: Episode) -> bool:
    """Whether the spy of one spy game bluffed: none of its clues says "blank" (the teacher's
    admission is "My picture is blank."; a spy that says so in any round gave itself away)."""
    spy = episode.info["spy"]
    return not any(t.player == spy and "blank" in str(t.action.value).lower() for t in episode.turns_of("clue"))
