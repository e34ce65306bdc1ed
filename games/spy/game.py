"""The visual "Who is the Spy" game as a pure state machine (see README.md for the table).

Citizens see a real picture, the spy a blank one of the same size. ``clue_rounds`` rounds of
one-sentence clues in seat order, then every citizen votes at once. Model output is
untrusted: parsing is total and an unusable completion becomes ``Action("invalid")``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from games.spy import prompts
from games.spy.roles import CITIZEN, SPY, SpyRole
from vzframe.protocols import ImageDraw
from vzframe.types import Action, Episode, ImageItem, Observation, PhaseSpec, Turn

_ANSWER = re.compile(r"<answer>((?:(?!</?answer>).)*)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>((?:(?!</?think>).)*)</think>", re.DOTALL)
_NA = re.compile(r"n\s*/\s*a|n\.?a\.?|none|nobody|no\s*one|unsure|not\s*sure|unknown", re.IGNORECASE)
_VOTE = re.compile(r"(?:player\s*)?#?\s*([0-9]{1,6})", re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]{0,64}\|>")
_QUOTES = " \t\r\n.!*\"'`"


class SpyConfig(BaseModel):
    """Settings of one spy game and of its rewards."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    num_citizens: int = Field(3, ge=2)
    """Players who see the real picture; the game has num_citizens + 1 players."""
    clue_rounds: int = Field(2, ge=1)
    """Rounds of clues before the vote; every player speaks once per round, in seat order."""
    blank_color: str = Field("#ffffff", pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")
    """Hex colour (#rgb or #rrggbb) of the spy's blank picture."""
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
    max_clue_chars: int = Field(400, ge=1)
    """A clue longer than this is cut to this many characters in what players see."""


# ---- parsing: total functions of untrusted text -------------------------------------------


def extract_answer(text: str) -> str | None:
    """Content of the last innermost ``<answer>…</answer>``, or None.

    >>> extract_answer("<think>hm</think><answer> 3 </answer>")
    ' 3 '
    >>> extract_answer("<answer>1</answer><answer><answer>2</answer>") , extract_answer("<answer>2")
    ('2', None)
    """
    last = None
    for last in _ANSWER.finditer(text):
        pass
    return None if last is None else last.group(1)


def extract_think(text: str) -> str:
    """Content of the first ``<think>…</think>``, stripped; empty if there is none.

    >>> extract_think("<think> red square </think><answer>x</answer>")
    'red square'
    """
    match = _THINK.search(text)
    return match.group(1).strip() if match else ""


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_clue(completion: str) -> Action:
    """A clue is the stripped, non-empty text of the last answer tag.

    >>> parse_clue("<think>...</think><answer>A red cube.</answer>")
    Action(kind='clue', value='A red cube.', reason='')
    >>> parse_clue("A red cube.").kind
    'invalid'
    """
    answer = extract_answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    if not answer.strip():
        return Action("invalid", None, reason="empty answer")
    return Action("clue", answer.strip())


def parse_vote(completion: str, voter: int, num_players: int) -> Action:
    """A vote for another player 1..N, ``na``, or ``invalid`` (self, no such player, other).

    >>> [parse_vote(f"<answer>{a}</answer>", 1, 4).kind for a in ("3", "Player 2", "N/A", "1", "5")]
    ['vote', 'vote', 'na', 'invalid', 'invalid']
    """
    answer = extract_answer(completion)
    if answer is None:
        return Action("invalid", None, reason="no <answer>...</answer> tag")
    content = answer.strip(_QUOTES)
    if _NA.fullmatch(content):
        return Action("na")
    match = _VOTE.fullmatch(content)
    if match is None:
        return Action("invalid", None, reason=f"not a player number or N/A: {_excerpt(content)}")
    target = int(match.group(1))
    if target == voter:
        return Action("invalid", None, reason=f"voted for self (player {voter})")
    if not 1 <= target <= num_players:
        return Action("invalid", None, reason=f"no player {target} (players are 1..{num_players})")
    return Action("vote", target)


def public_text(text: str, limit: int) -> str:
    """``text`` as other players see it: one line, no chat special tokens, at most ``limit`` chars.

    >>> public_text("a  red\\n cube<|im_end|>", 8)
    'a red cu [...]'
    """
    flat = " ".join(_SPECIAL_TOKEN.sub("", text).split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + prompts.TRUNCATED


# ---- the game ---------------------------------------------------------------------------


class SpyGame:
    """One game of visual "Who is the Spy". Construct with ``SpyGame(config, seed=, images=)``."""

    name: ClassVar[str] = "spy"
    Config: ClassVar[type[SpyConfig]] = SpyConfig
    roles: ClassVar[tuple[SpyRole, ...]] = (SPY, CITIZEN)
    phases: ClassVar[Mapping[str, PhaseSpec]] = MappingProxyType(
        {
            "decision": PhaseSpec("decision", ("spy.vote",), "group"),
            "clue": PhaseSpec("clue", ("spy.clue",), "role"),
        }
    )

    def __init__(self, config: SpyConfig | Mapping[str, Any] | None = None, *, seed: int, images: ImageDraw):
        self.config = config if isinstance(config, SpyConfig) else SpyConfig.model_validate(config or {})
        self.seed = seed
        self.num_players = self.config.num_citizens + 1
        self.spy = random.Random(seed).randint(1, self.num_players)
        citizen_image = images()
        if not isinstance(citizen_image, ImageItem):
            raise TypeError(f"images() must return a vzframe.types.ImageItem, got {type(citizen_image).__name__}")
        color, (w, h) = self.config.blank_color, citizen_image.image.size
        self._citizen_image = citizen_image
        blank = ImageItem(f"blank:{color}:{w}x{h}", Image.new("RGB", (w, h), color), {"blank": True, "color": color})
        self._images = {p: blank if p == self.spy else citizen_image for p in self.seats}
        self._clue_order = [(r, p) for r in range(1, self.config.clue_rounds + 1) for p in self.seats]
        self._clue_pos = 0
        self._voters = [p for p in self.seats if p != self.spy]
        self._clues: list[tuple[int, int, str]] = []  # (round, player, what others see)
        self._reasoning: dict[int, list[tuple[int, str]]] = {p: [] for p in self.seats}
        self._turns: list[Turn] = []

    @property
    def seats(self) -> range:
        return range(1, self.num_players + 1)

    def role_of(self, player: int) -> SpyRole:
        return SPY if player == self.spy else CITIZEN

    @property
    def stage(self) -> str | None:
        if self._clue_pos < len(self._clue_order):
            return "clue"
        return "decision" if self._voters else None

    def to_act(self) -> tuple[int, ...]:
        """The next speaker during clues; every citizen yet to vote during the decision."""
        if self.stage == "clue":
            return (self._clue_order[self._clue_pos][1],)
        return tuple(self._voters)

    def observe(self, player: int) -> Observation:
        """The system rules and role brief, then the player's picture, clues, own reasoning and task."""
        if player not in self.seats:
            raise ValueError(f"No player {player!r}; players are 1..{self.num_players}.")
        role, stage = self.role_of(player), self.stage or "decision"
        system = prompts.rules(self.num_players, self.config.clue_rounds) + "\n\n" + role.brief
        lines = [
            prompts.PLAYER_LINE.format(player=player, num_players=self.num_players),
            prompts.ROLE_LINE[role.name],
            "",
            prompts.CLUES_HEADER,
        ]
        current_round = 0
        for rnd, speaker, clue in self._clues:
            if rnd != current_round:
                current_round = rnd
                lines.append(prompts.ROUND_HEADER.format(round=rnd))
            lines.append(prompts.CLUE_LINE.format(player=speaker, clue=clue))
        if not self._clues:
            lines.append(prompts.NO_CLUES)
        if self._reasoning[player]:
            lines += ["", prompts.OWN_REASONING_HEADER]
            lines += [prompts.OWN_REASONING_LINE.format(round=r, text=t) for r, t in self._reasoning[player]]
        if stage == "clue":
            rnd = self._clue_order[self._clue_pos][0]
            task = prompts.CLUE_TASK.format(round=rnd, clue_rounds=self.config.clue_rounds)
        else:
            task = prompts.DECISION_TASK
        lines += ["", task]
        messages = (
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\n".join(lines)}]},
        )
        return Observation(player, role.name, stage, messages, (self._images[player],))

    def step(self, player: int, completion: str) -> Turn:
        """Record ``player``'s completion; raises ValueError only if ``player`` may not act now."""
        acting = self.to_act()
        if player not in acting:
            raise ValueError(f"Player {player!r} cannot act now; to_act() is {acting}.")
        if not isinstance(completion, str):
            raise TypeError(f"completion must be str, got {type(completion).__name__}")
        observation = self.observe(player)
        if observation.stage == "clue":
            rnd = self._clue_order[self._clue_pos][0]
            action = parse_clue(completion)
            shown = public_text(action.value, self.config.max_clue_chars) if action.kind == "clue" else ""
            self._clues.append((rnd, player, shown or prompts.NO_CLUE))
            self._clue_pos += 1
            think = extract_think(completion)
            think = public_text(think, len(think))
            if think:
                self._reasoning[player].append((rnd, think))
        else:
            action = parse_vote(completion, player, self.num_players)
            self._voters.remove(player)
        turn = Turn(
            index=len(self._turns),
            player=player,
            role=observation.role,
            stage=observation.stage,
            prompt=observation.prompt_text(),
            images=tuple(im.id for im in observation.images),
            completion=completion,
            action=action,
        )
        self._turns.append(turn)
        return turn

    def episode(self) -> Episode:
        """The finished game; ``info`` holds the spy's seat and the citizens' image id."""
        if self.to_act():
            raise RuntimeError(
                f"SpyGame.episode() called before the game is over: players {self.to_act()} must still "
                "act. Step until to_act() is empty."
            )
        return Episode(
            game=self.name,
            seed=self.seed,
            roles=tuple(self.role_of(p).name for p in self.seats),
            turns=tuple(self._turns),
            info={
                "spy": self.spy,
                "image": self._citizen_image.id,
                "spy_image": self._images[self.spy].id,
                "num_citizens": self.config.num_citizens,
                "clue_rounds": self.config.clue_rounds,
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
        match = prompts.PLAYER_LINE_RE.search(text)
        num_players = int(match.group(2)) if match else observation.player + 1
        others = [p for p in range(1, num_players + 1) if p != observation.player]
        votes = [f"<think>Player {p}'s clues fit the picture least.</think><answer>{p}</answer>" for p in others]
        return [*votes, "<think>I cannot tell.</think><answer>N/A</answer>", f"<answer>Player {others[0]}</answer>"]
