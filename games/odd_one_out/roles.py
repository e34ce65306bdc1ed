"""The two roles of Odd One Out. Both get the same brief: a player is never told its role,
which is recorded only for training (role baselines) and logs."""

from __future__ import annotations

from dataclasses import dataclass

from games.clue_vote import Role
from games.odd_one_out import prompts


@dataclass(frozen=True)
class OddRole(Role):
    """A part a player plays in Odd One Out; ``brief`` goes into the player's system message."""


ODD = OddRole("odd", prompts.BRIEF)
COMMON = OddRole("common", prompts.BRIEF)
