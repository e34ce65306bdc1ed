"""Visual "Odd One Out" as a vzframe plugin, written only through the public hooks (see
README.md).

Load it with ``vzframe run games.odd_one_out``; it registers the game ``odd_one_out``, the
reward functions ``odd.vote`` and ``odd.clue``, the metrics ``acc``, ``na``, ``invalid``,
``odd_found``, ``odd_self_found`` and ``clue_valid``, and each game's outcome
(``game_outcome``). The game declares its default model ``toy-odd-one-out``, its toy-world
model on ``clevr_toy`` (``OddOneOutGame.toy_model``), which ``plugins.toy_world`` registers and
the first run that loads it builds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from games.clue_vote import clue_valid, most_voted, vote_rates
from games.odd_one_out.game import OddOneOutConfig, OddOneOutGame
from games.odd_one_out.rewards import REWARD_FNS
from vzframe.hookspecs import hookimpl
from vzframe.types import Episode

__all__ = ["OddOneOutConfig", "OddOneOutGame", "metrics"]


@hookimpl
def register_games(register) -> None:
    register(OddOneOutGame)


@hookimpl
def register_reward_fns(register) -> None:
    for fn in REWARD_FNS:
        register(fn)


def metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
    """Vote accuracy, N/A and invalid rates, how often the group finds the odd player and how
    often it finds itself, and clue validity. None when no episode is an Odd One Out game."""
    games = [e for e in episodes if e.game == OddOneOutGame.name]
    if not games:
        return None
    decisions = [(t, e.info["odd"]) for e in games for t in e.turns_of("decision")]
    found = sum(outcome(e)["common"] for e in games)
    self_found = sum(t.action.kind == "vote" and t.player == t.action.value == odd for t, odd in decisions)
    return {
        **vote_rates([(t.action, odd) for t, odd in decisions]),
        "odd_found": found / len(games),
        "odd_self_found": self_found / len(games),
        "clue_valid": clue_valid(games),
    }


@hookimpl
def collect_metrics(episodes) -> dict[str, float] | None:
    return metrics(episodes)


def outcome(episode: Episode) -> dict[str, float] | None:
    """The common players win when the odd player gets the most votes (its own vote for
    itself included), the odd player otherwise; None for another game's episode."""
    if episode.game != OddOneOutGame.name:
        return None
    counts = Counter(t.action.value for t in episode.turns_of("decision") if t.action.kind == "vote")
    found = float(most_voted(counts, episode.info["odd"]))
    return {"odd": 1.0 - found, "common": found}


@hookimpl
def game_outcome(episode) -> dict[str, float] | None:
    return outcome(episode)
