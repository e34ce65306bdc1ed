"""Rewards of the spy game, exactly as docs/method.md: a verifiable vote reward and a zero-sum clue
reward. Group normalisation and role baselines are the core's job, not done here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from games.clue_vote import vote_counts, vote_reward, zero_sum_clue_rewards
from vzframe.parsing import extract_answer
from vzframe.types import Action, Episode

if TYPE_CHECKING:  # games.spy.game imports this module (its game's reward_fns)
    from games.spy.game import SpyConfig

# vote_reward (+1 correct, -0.5 N/A, -1 wrong or invalid, from config) and vote_counts (valid
# votes per player) are games.clue_vote's, shared with Odd One Out and importable from here.


def clue_rewards(votes: Iterable[Action], spy_seat: int, num_players: int, config: SpyConfig) -> dict[int, float]:
    """Zero-sum clue rewards per player from one game's decision votes (every valid vote counts).

    ``Psi = v_s - mean(v_c)``; spy ``-beta*Psi``; citizen j ``beta/n_c*Psi - lam*(v_cj - mean(v_c))``.

    >>> from games.spy.game import SpyConfig
    >>> r = clue_rewards([Action("vote", 4), Action("vote", 4), Action("vote", 1)], 4, 4, SpyConfig())
    >>> {p: round(x, 4) for p, x in r.items()}
    {1: -0.0111, 2: 0.0889, 3: 0.0889, 4: -0.1667}
    >>> abs(sum(r.values())) < 1e-12
    True
    """
    return zero_sum_clue_rewards(vote_counts(votes, num_players), spy_seat, num_players, config)


def format_ok(completion: str) -> bool:
    """True for exactly ``<think>…</think><answer>…</answer>`` with only whitespace around.

    >>> format_ok(" <think>a</think>\\n<answer>3</answer> "), format_ok("<answer>3</answer>")
    (True, False)
    """
    text = completion.strip()
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    if any(text.count(tag) != 1 for tag in tags) or not text.startswith("<think>") or not text.endswith("</answer>"):
        return False
    between = text[text.index("</think>") + len("</think>") : text.index("<answer>")]
    return not between.strip() and extract_answer(text) is not None


def format_sign(completion: str, action: Action) -> float:
    """+1 for a well-formed, valid vote, -1 otherwise: the reference's format term before its weight.

    >>> format_sign("<think>a</think><answer>3</answer>", Action("vote", 3)), format_sign("3", Action("invalid"))
    (1.0, -1.0)
    """
    return 1.0 if format_ok(completion) and action.kind != "invalid" else -1.0


def _config(config: SpyConfig | None) -> SpyConfig:
    from games.spy.game import SpyConfig

    return config if isinstance(config, SpyConfig) else SpyConfig.model_validate(config or {})


def num_players(episode: Episode) -> int:
    """Players of a spy game (judges, seated after them, are not players)."""
    return int(episode.info["num_citizens"]) + 1


class VoteReward:
    """``spy.vote``: the decision reward of each vote (a citizen's, or a judge sample's), plus
    the reference's optional terms: ``format_weight * (±1)`` and ``correct_bonus`` if correct."""

    name: ClassVar[str] = "spy.vote"
    stage: ClassVar[str] = "decision"

    def __call__(self, episode: Episode, config: SpyConfig) -> dict[int, float]:
        cfg, spy = _config(config), episode.info["spy"]
        rewards = {}
        for t in episode.turns_of("decision"):
            reward = vote_reward(t.action, spy, cfg)
            if t.action.kind == "vote" and t.action.value == spy:
                reward += cfg.correct_bonus
            rewards[t.index] = reward + cfg.format_weight * format_sign(t.completion, t.action)
        return rewards


class ClueReward:
    """``spy.clue``: the zero-sum clue reward; every clue turn of a player gets its reward."""

    name: ClassVar[str] = "spy.clue"
    stage: ClassVar[str] = "clue"

    def __call__(self, episode: Episode, config: SpyConfig) -> dict[int, float]:
        votes = [t.action for t in episode.turns_of("decision")]
        per_player = clue_rewards(votes, episode.info["spy"], num_players(episode), _config(config))
        return {t.index: per_player[t.player] for t in episode.turns_of("clue")}


class FormatReward:
    """``spy.format`` (off by default): the reference's ``0.3 * (±1)`` format term on votes."""

    name: ClassVar[str] = "spy.format"
    stage: ClassVar[str] = "decision"
    weight: ClassVar[float] = 0.3

    def __call__(self, episode: Episode, config: SpyConfig) -> dict[int, float]:
        return {t.index: self.weight * format_sign(t.completion, t.action) for t in episode.turns_of("decision")}


REWARD_FNS = (VoteReward(), ClueReward(), FormatReward())
