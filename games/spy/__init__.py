"""The reference game, visual "Who is the Spy", as a vzframe plugin (see README.md).

Load it with ``vzframe run games.spy``; it registers the game ``spy``, the reward functions
``spy.vote``, ``spy.clue`` and ``spy.format``, and the metrics ``acc``, ``na``, ``invalid``,
``spy_caught`` and ``clue_valid``.
"""

from __future__ import annotations

from collections.abc import Iterable

from games.spy.game import SpyConfig, SpyGame
from games.spy.rewards import REWARD_FNS, num_players, vote_counts
from vzframe.hookspecs import hookimpl
from vzframe.types import Episode

__all__ = ["SpyConfig", "SpyGame", "metrics"]


@hookimpl
def register_games(register) -> None:
    register(SpyGame)


@hookimpl
def register_reward_fns(register) -> None:
    for fn in REWARD_FNS:
        register(fn)


def metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
    """Vote accuracy, N/A and invalid rates, how often the spy is caught, and clue validity.
    Votes are the decision turns: the citizens' votes, or the judge's samples."""
    games = [e for e in episodes if e.game == SpyGame.name]
    if not games:
        return None
    votes = [(t.action, e.info["spy"]) for e in games for t in e.turns_of("decision")]
    clues = [t for e in games for t in e.turns_of("clue")]
    caught = 0
    for e in games:
        counts = vote_counts((t.action for t in e.turns_of("decision")), num_players(e))
        spy_votes = counts[e.info["spy"]]
        caught += all(spy_votes > n for p, n in counts.items() if p != e.info["spy"]) and spy_votes > 0
    n_votes, n_clues = max(len(votes), 1), max(len(clues), 1)
    return {
        "acc": sum(a.kind == "vote" and a.value == spy for a, spy in votes) / n_votes,
        "na": sum(a.kind == "na" for a, _ in votes) / n_votes,
        "invalid": sum(a.kind == "invalid" for a, _ in votes) / n_votes,
        "spy_caught": caught / len(games),
        "clue_valid": sum(t.action.kind == "clue" for t in clues) / n_clues,
    }


@hookimpl
def collect_metrics(episodes) -> dict[str, float] | None:
    return metrics(episodes)
