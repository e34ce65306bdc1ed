"""Describe, then vote: the part that social picture games like ``games.spy`` and
``games.odd_one_out`` share. A library, not a plugin: out-of-tree games may import it too.

In such a game one player, the odd one (the spy), sees a different picture. ``clue_rounds``
rounds of clues follow in seat order 1..N, each ``<think>private</think><answer>one-sentence
clue</answer>``: every clue is public, a player's reasoning is shown to that player only.
Then the game's voters name the odd one at once. Here:

- the prompt lines of the clue stage (``PLAYER_LINE``, ``CLUES_HEADER``, ``CLUE_TASK``, ...);
  each game's ``prompts.py`` re-exports them next to its own wording;
- ``Role``, and ``ClueVoteGame``, the small base holding the state machine: clue turns in seat
  order across rounds, the public clues, each player's own reasoning, the voters still to vote;
- vote counting, ``vote_reward`` and the zero-sum clue reward, and the metrics both games log.

A game subclasses ``ClueVoteGame``: its ``__init__`` sets ``config`` (with ``clue_rounds`` and
``max_clue_chars``), ``num_players`` and ``_images`` (seat -> picture), then calls
``_start_clues(voters)``; it writes ``role_of``, ``observe`` (one call to ``_observation``),
``episode`` (after ``_check_over``) and ``example_completions``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from vzframe.parsing import extract_think, parse_clue, parse_vote, public_text
from vzframe.types import Action, Episode, ImageItem, Metric, Observation, Turn

# ---- prompt lines ------------------------------------------------------------------------

PLAYER_LINE = "You are Player {player} of {num_players}."
PLAYER_LINE_RE = re.compile(r"You are Player (\d+) of (\d+)\.")
"""Parses ``PLAYER_LINE`` back; used by the games' ``example_completions``."""

CLUES_HEADER = "Clues so far:"
NO_CLUES = "(no clues yet)"
ROUND_HEADER = "Round {round}:"
CLUE_LINE = "Player {player}: {clue}"
NO_CLUE = "(no clue)"
TRUNCATED = " [...]"

OWN_REASONING_HEADER = "Your own earlier reasoning (private):"
OWN_REASONING_LINE = "Round {round}: {text}"

CLUE_TASK = (
    "Round {round} of {clue_rounds}: it is your turn to give a clue. Think privately, then give "
    "one sentence about your picture. Reply exactly in this format: "
    "<think>your reasoning</think><answer>one-sentence clue</answer>"
)


def picture_messages(system: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chat of an observation: the ``system`` message, then one picture and ``text``."""
    return (
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},
    )


MAX_PLAYERS = 12
"""Most players a clue-and-vote game allows: every observation repeats all clues so far, so the
context grows with players x rounds and the batch with players; beyond this a prompt no longer
fits the reference recipe's context."""
MAX_CLUE_ROUNDS = 8
"""Most clue rounds, for the same reason."""


# ---- the game ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A part a player plays; ``brief`` goes into the player's system message."""

    name: str
    brief: str


class ClueVoteGame:
    """Clue rounds in seat order, then every voter answers at once (see the module docstring
    for what a subclass provides)."""

    self_votes: ClassVar[bool] = False
    """Whether a voter may name itself; if not, such a vote is ``invalid``."""

    config: Any
    num_players: int
    _images: dict[int, ImageItem]

    if TYPE_CHECKING:  # what a subclass writes (module docstring)

        def role_of(self, player: int) -> Role: ...

        def observe(self, player: int) -> Observation: ...

    @property
    def clues(self) -> tuple[tuple[int, int, str], ...]:
        """Every clue so far as the other players saw it: ``(round, player, text)``, the
        game's public record (what a teacher may read)."""
        return tuple(self._clues)

    def _start_clues(self, voters: Iterable[int]) -> None:
        """Every player speaks once per round in seat order; then ``voters`` vote."""
        self._clue_order = [(r, p) for r in range(1, self.config.clue_rounds + 1) for p in self.seats]
        self._clue_pos = 0
        self._voters = list(voters)
        self._clues: list[tuple[int, int, str]] = []  # (round, player, what others see)
        self._reasoning: dict[int, list[tuple[int, str]]] = {p: [] for p in self.seats}  # (round, own <think>)
        self._turns: list[Turn] = []

    @property
    def seats(self) -> range:
        return range(1, self.num_players + 1)

    @property
    def stage(self) -> str | None:
        if self._clue_pos < len(self._clue_order):
            return "clue"
        return "decision" if self._voters else None

    def to_act(self) -> tuple[int, ...]:
        """The next speaker during clues; every voter yet to vote during the decision."""
        if self.stage == "clue":
            return (self._clue_order[self._clue_pos][1],)
        return tuple(self._voters)

    def _observation(self, player: int, system: str, head: list[str], decision_task: str) -> Observation:
        """``player``'s view: ``system``, then its picture and text: ``head``, the clues so far,
        its own earlier reasoning, and the task (this round's clue, or ``decision_task``)."""
        if player not in self.seats:
            raise ValueError(f"No player {player!r}; players are 1..{self.num_players}.")
        stage = self.stage or "decision"
        lines = [*head, "", *self._clue_lines()]
        if self._reasoning[player]:
            lines += ["", OWN_REASONING_HEADER]
            lines += [OWN_REASONING_LINE.format(round=r, text=t) for r, t in self._reasoning[player]]
        if stage == "clue":
            task = CLUE_TASK.format(round=self._clue_order[self._clue_pos][0], clue_rounds=self.config.clue_rounds)
        else:
            task = decision_task
        lines += ["", task]
        messages = picture_messages(system, "\n".join(lines))
        return Observation(player, self.role_of(player).name, stage, messages, (self._images[player],))

    def _clue_lines(self) -> list[str]:
        """Every public clue so far, by round."""
        lines, current_round = [CLUES_HEADER], 0
        for rnd, speaker, clue in self._clues:
            if rnd != current_round:
                current_round = rnd
                lines.append(ROUND_HEADER.format(round=rnd))
            lines.append(CLUE_LINE.format(player=speaker, clue=clue))
        return lines if self._clues else [*lines, NO_CLUES]

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
            clue = action.value if action.kind == "clue" and isinstance(action.value, str) else None
            shown = public_text(clue, self.config.max_clue_chars, TRUNCATED) if clue is not None else ""
            self._clues.append((rnd, player, shown or NO_CLUE))
            self._clue_pos += 1
            think = extract_think(completion)
            think = public_text(think, len(think))
            if think:
                self._reasoning[player].append((rnd, think))
        else:
            action = parse_vote(completion, player, self.num_players, allow_self=self.self_votes)
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

    def _check_over(self) -> None:
        """Raise unless the game is over; ``episode()`` calls it first."""
        if self.to_act():
            raise RuntimeError(
                f"{type(self).__name__}.episode() called before the game is over: players {self.to_act()} must "
                "still act. Step until to_act() is empty."
            )


# ---- votes and rewards -------------------------------------------------------------------

Vote = tuple[int, Action]
"""(voter, parsed vote)."""


class RewardConfig(Protocol):
    """The reward settings a game's config carries (``SpyConfig``, ``OddOneOutConfig``)."""

    beta: float
    lam: float
    vote_correct: float
    vote_na: float
    vote_wrong: float


def vote_reward(action: Action, odd_seat: int, config: RewardConfig) -> float:
    """+1 for a vote for the odd player (the spy), -0.5 for N/A, -1 for a wrong or invalid vote
    (``config.vote_correct``, ``vote_na``, ``vote_wrong``).

    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(vote_correct=1.0, vote_na=-0.5, vote_wrong=-1.0)
    >>> [vote_reward(a, 2, cfg) for a in (Action("vote", 2), Action("na"), Action("vote", 3), Action("invalid"))]
    [1.0, -0.5, -1.0, -1.0]
    """
    if action.kind == "vote" and action.value == odd_seat:
        return float(config.vote_correct)
    if action.kind == "na":
        return float(config.vote_na)
    return float(config.vote_wrong)


def vote_counts(votes: Iterable[Action], num_players: int) -> Counter[int]:
    """Valid votes received per player; N/A and invalid votes are not counted.

    >>> vote_counts([Action("vote", 2), Action("vote", 2), Action("na"), Action("invalid")], 4)
    Counter({2: 2})
    """
    return Counter(
        a.value
        for a in votes
        if a.kind == "vote" and type(a.value) is int and 1 <= a.value <= num_players
    )


def votes_received(votes: Iterable[Vote], num_players: int) -> Counter[int]:
    """Valid votes each player received from the *other* players (self-votes, N/A and invalid
    votes are not counted).

    >>> votes_received([(1, Action("vote", 2)), (2, Action("vote", 2)), (3, Action("na"))], 4)
    Counter({2: 1})
    """
    return vote_counts((a for voter, a in votes if a.value != voter), num_players)


def zero_sum_clue_rewards(counts: Counter[int], odd_seat: int, num_players: int, config: RewardConfig) -> dict[int, float]:
    """Clue rewards per player from the votes each received (``counts``); they sum to zero.

    ``Psi = v_odd - mean(v_c)`` over the n_c others; odd ``-beta*Psi``; every other player j
    ``beta/n_c*Psi - lam*(v_j - mean(v_c))``.

    >>> from types import SimpleNamespace
    >>> r = zero_sum_clue_rewards(Counter({4: 2, 1: 1}), 4, 4, SimpleNamespace(beta=0.1, lam=0.1))
    >>> {p: round(x, 4) for p, x in r.items()}
    {1: -0.0111, 2: 0.0889, 3: 0.0889, 4: -0.1667}
    """
    others = [p for p in range(1, num_players + 1) if p != odd_seat]
    n_c = len(others)
    mean_c = sum(counts[c] for c in others) / n_c
    psi = counts[odd_seat] - mean_c
    rewards = {odd_seat: -config.beta * psi}
    for c in others:
        rewards[c] = config.beta / n_c * psi - config.lam * (counts[c] - mean_c)
    return dict(sorted(rewards.items()))


# ---- metrics -----------------------------------------------------------------------------


VOTE_METRICS = {
    "acc": Metric("vote accuracy", headline=True),
    "na": Metric("N/A rate", headline=True),
    "invalid": Metric("invalid votes"),
    "clue_valid": Metric("valid clues"),
}
"""What ``vote_rates`` and ``clue_valid`` report, as a game's ``metrics`` declares them."""


def vote_rates(votes: Sequence[tuple[Action, int]]) -> dict[str, float]:
    """``acc``, ``na`` and ``invalid``: the shares of (vote, odd seat) pairs that name the odd
    seat, answer N/A, or are invalid.

    >>> vote_rates([(Action("vote", 2), 2), (Action("na"), 2), (Action("vote", 1), 2), (Action("invalid"), 3)])
    {'acc': 0.25, 'na': 0.25, 'invalid': 0.25}
    """
    n = max(len(votes), 1)
    return {
        "acc": sum(a.kind == "vote" and a.value == odd for a, odd in votes) / n,
        "na": sum(a.kind == "na" for a, _ in votes) / n,
        "invalid": sum(a.kind == "invalid" for a, _ in votes) / n,
    }


def most_voted(counts: Counter[int], seat: int) -> bool:
    """True if ``seat`` got at least one vote and strictly more than anybody else.

    >>> most_voted(Counter({2: 2, 1: 1}), 2), most_voted(Counter({2: 1, 1: 1}), 2), most_voted(Counter(), 2)
    (True, False, False)
    """
    return counts[seat] > 0 and all(counts[seat] > n for p, n in counts.items() if p != seat)


def clue_valid(episodes: Iterable[Episode]) -> float:
    """The share of clue turns that gave a valid clue."""
    clues = [t for e in episodes for t in e.turns_of("clue")]
    return sum(t.action.kind == "clue" for t in clues) / max(len(clues), 1)


def written_checks(verdicts: Iterable[tuple[int, int, str, bool]]) -> str:
    """A voter's checked reasoning, as the shipped teachers write it: one ``player claim
    yes|no`` per ``(round, player, claim, verdict)``, in the order given, a round at a time.

    >>> written_checks([(1, 1, "red cube", True), (1, 2, "blue sphere", False), (2, 1, "red cube", True)])
    '1 red cube yes, 2 blue sphere no; 1 red cube yes.'
    >>> written_checks([])
    '.'
    """
    rounds: dict[int, list[str]] = {}
    for rnd, player, claim, fits in verdicts:
        rounds.setdefault(rnd, []).append(f"{player} {claim} {'yes' if fits else 'no'}")
    return "; ".join(", ".join(said) for said in rounds.values()) + "."
