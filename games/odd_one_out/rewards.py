"""Rewards of Odd One Out: a verifiable vote reward (every player votes, the odd one naming
itself counts as correct) and a zero-sum clue reward from how the *others* voted. Group
normalisation and role baselines are the core's job, not done here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from games.clue_vote import Vote, vote_reward, votes_received, zero_sum_clue_rewards
from vzframe.types import Episode

if TYPE_CHECKING:  # games.odd_one_out.game imports this module (its game's reward_fns)
    from games.odd_one_out.game import OddOneOutConfig

# vote_reward (+1 correct, -0.5 N/A, -1 wrong or invalid, from config) and votes_received
# (valid votes from the *other* players) are games.clue_vote's, shared with the spy game and
# importable from here.


def clue_rewards(votes: Iterable[Vote], odd_seat: int, num_players: int, config: OddOneOutConfig) -> dict[int, float]:
    """Zero-sum clue rewards per player from one game's votes, counted by ``votes_received``.

    ``Psi = v_odd - mean(v_common)``; odd ``-beta*Psi``; common j
    ``beta/n_c*Psi - lam*(v_j - mean(v_common))`` with ``n_c = num_players - 1``.

    >>> from vzframe.types import Action
    >>> votes = [(1, Action("vote", 4)), (2, Action("vote", 4)), (3, Action("vote", 1)), (4, Action("vote", 4))]
    >>> from games.odd_one_out.game import OddOneOutConfig
    >>> r = clue_rewards(votes, 4, 4, OddOneOutConfig())
    >>> {p: round(x, 4) for p, x in r.items()}
    {1: -0.0111, 2: 0.0889, 3: 0.0889, 4: -0.1667}
    >>> abs(sum(r.values())) < 1e-12
    True
    """
    return zero_sum_clue_rewards(votes_received(votes, num_players), odd_seat, num_players, config)


def _config(config: OddOneOutConfig | None) -> OddOneOutConfig:
    from games.odd_one_out.game import OddOneOutConfig

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
