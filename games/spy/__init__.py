"""The reference game, visual "Who is the Spy", as a vzframe plugin (see README.md).

Load it with ``vzframe run games.spy``; it registers the game ``spy``, the reward functions
``spy.vote``, ``spy.clue`` and ``spy.format``, and the metrics ``acc``, ``na``, ``invalid``,
``spy_caught`` and ``clue_valid``, and each game's outcome (``game_outcome``: the citizens, and
judges, win when the spy is caught).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from games.clue_vote import clue_valid, most_voted, vote_counts, vote_rates
from games.spy.game import SpyConfig, SpyGame
from games.spy.rewards import REWARD_FNS, num_players
from vzframe.hookspecs import hookimpl
from vzframe.protocols import Game, RewardFn
from vzframe.types import Episode

__all__ = ["SpyConfig", "SpyGame", "metrics"]


@hookimpl
def register_games(register: Callable[[type[Game]], None]) -> None:
    register(SpyGame)


@hookimpl
def register_reward_fns(register: Callable[[RewardFn], None]) -> None:
    for fn in REWARD_FNS:
        register(fn)


def metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
    """Vote accuracy, N/A and invalid rates, how often the spy is caught, and clue validity.
    Votes are the decision turns: the citizens' votes, or the judge's samples."""
    games = [e for e in episodes if e.game == SpyGame.name]
    if not games:
        return None
    votes = [(t.action, e.info["spy"]) for e in games for t in e.turns_of("decision")]
    caught = sum(spy_caught(e) for e in games)
    return {**vote_rates(votes), "spy_caught": caught / len(games), "clue_valid": clue_valid(games)}


@hookimpl
def collect_metrics(episodes: Sequence[Episode]) -> dict[str, float] | None:
    return metrics(episodes)


def outcome(episode: Episode) -> dict[str, float] | None:
    """The citizens (and judges) win when the spy gets the most votes, the spy otherwise (a
    tie for most votes does not catch it); None for another game's episode."""
    if episode.game != SpyGame.name:
        return None
    caught = spy_caught(episode)
    return {"spy": 1.0 - caught, "citizen": caught, "judge": caught}


def spy_caught(episode: Episode) -> float:
    """1.0 when the spy got the most votes of one spy game, else 0.0."""
    counts = vote_counts((t.action for t in episode.turns_of("decision")), num_players(episode))
    return float(most_voted(counts, episode.info["spy"]))


@hookimpl
def game_outcome(episode: Episode) -> dict[str, float] | None:
    return outcome(episode)
