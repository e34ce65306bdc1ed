"""Rewards of Odd One Out: a verifiable vote reward (every player votes, the odd one naming
itself counts as correct) and a zero-sum clue reward from how the *others* voted. Group
normalisation and role baselines are the core's job, not done here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import ClassVar

from games.odd_one_out.game import OddOneOutConfig
from vzframe.types import Action, Episode

Vote = tuple[int, Action]
"""(voter, parsed vote)."""


def vote_reward(action: Action, odd_seat: int, config: OddOneOutConfig) -> float:
    """+1 for a vote for the odd player, -0.5 for N/A, -1 for a wrong or invalid vote (from config).

    >>> cfg = OddOneOutConfig()
    >>> [vote_reward(a, 2, cfg) for a in (Action("vote", 2), Action("na"), Action("vote", 3), Action("invalid"))]
    [1.0, -0.5, -1.0, -1.0]
    """
    if action.kind == "vote" and action.value == odd_seat:
        return float(config.vote_correct)
    if action.kind == "na":
        return float(config.vote_na)
    return float(config.vote_wrong)


def votes_received(votes: Iterable[Vote], num_players: int) -> Counter[int]:
    """Valid votes each player received from the *other* players (self-votes, N/A and invalid
    votes are not counted).

    >>> votes_received([(1, Action("vote", 2)), (2, Action("vote", 2)), (3, Action("na"))], 4)
    Counter({2: 1})
    """
    return Counter(
        a.value
        for voter, a in votes
        if a.kind == "vote" and type(a.value) is int and 1 <= a.value <= num_players and a.value != voter
    )


def clue_rewards(votes: Iterable[Vote], odd_seat: int, num_players: int, config: OddOneOutConfig) -> dict[int, float]:
    """Zero-sum clue rewards per player from one game's votes, counted by ``votes_received``.

    ``Psi = v_odd - mean(v_common)``; odd ``-beta*Psi``; common j
    ``beta/n_c*Psi - lam*(v_j - mean(v_common))`` with ``n_c = num_players - 1``.

    >>> votes = [(1, Action("vote", 4)), (2, Action("vote", 4)), (3, Action("vote", 1)), (4, Action("vote", 4))]
    >>> r = clue_rewards(votes, 4, 4, OddOneOutConfig())
    >>> {p: round(x, 4) for p, x in r.items()}
    {1: -0.0111, 2: 0.0889, 3: 0.0889, 4: -0.1667}
    >>> abs(sum(r.values())) < 1e-12
    True
    """
    counts = votes_received(votes, num_players)
    common = [p for p in range(1, num_players + 1) if p != odd_seat]
    n_c = len(common)
    mean_c = sum(counts[c] for c in common) / n_c
    psi = counts[odd_seat] - mean_c
    rewards = {odd_seat: -config.beta * psi}
    for c in common:
        rewards[c] = config.beta / n_c * psi - config.lam * (counts[c] - mean_c)
    return dict(sorted(rewards.items()))


def _config(config: OddOneOutConfig | None) -> OddOneOutConfig:
    return config if isinstance(config, OddOneOutConfig) else OddOneOutConfig.model_validate(config or {})


class VoteReward:
    """``odd.vote``: the decision reward of each player's vote."""

    name: ClassVar[str] = "odd.vote"
    stage: ClassVar[str] = "decision"

    def __call__(self, episode: Episode, config: OddOneOutConfig) -> dict[int, float]:
        cfg, odd = _config(config), episode.info["odd"]
        return {t.index: vote_reward(t.action, odd, cfg) for t in episode.turns_of("decision")}


class ClueReward:
    """``odd.clue``: the zero-sum clue reward; every clue turn of a player gets its reward."""

    name: ClassVar[str] = "odd.clue"
    stage: ClassVar[str] = "clue"

    def __call__(self, episode: Episode, config: OddOneOutConfig) -> dict[int, float]:
        votes = [(t.player, t.action) for t in episode.turns_of("decision")]
        per_player = clue_rewards(votes, episode.info["odd"], len(episode.roles), _config(config))
        return {t.index: per_player[t.player] for t in episode.turns_of("clue")}


REWARD_FNS = (VoteReward(), ClueReward())
