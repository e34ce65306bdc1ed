"""The roles of the spy game: one spy, the rest citizens, and (with ``decision: judge``) judges."""

from __future__ import annotations

from dataclasses import dataclass

from games.clue_vote import Role
from games.spy import prompts


@dataclass(frozen=True)
class SpyRole(Role):
    """A part a player plays in the spy game; ``brief`` goes into the player's system message."""


SPY = SpyRole("spy", prompts.SPY_BRIEF)
CITIZEN = SpyRole("citizen", prompts.CITIZEN_BRIEF)
JUDGE = SpyRole("judge", prompts.JUDGE_BRIEF)
