"""Advantage estimators: group normalisation (decision stage, GRPO) and role baselines
(clue stage, Role Advantage Estimation)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

STD_EPS = 1e-8


def group_normalize(rewards: Sequence[float], eps: float = STD_EPS) -> list[float]:
    """``(r - mean) / (std + eps)``; when the group's rewards are all equal, only centre.

    >>> group_normalize([1.0, -1.0])
    [0.99999999, -0.99999999]
    >>> group_normalize([-0.5, -0.5, -0.5])
    [0.0, 0.0, 0.0]
    """
    if not rewards:
        return []
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    if std < 1e-6:
        return [r - mean for r in rewards]
    return [round((r - mean) / (std + eps), 8) for r in rewards]


class RoleBaselines:
    """One running baseline per role: ``b <- alpha * b + (1 - alpha) * mean_reward``, from 0.

    The advantage of a turn is its reward minus its role's baseline *before* this step's
    update, so a turn is never compared with a baseline that already contains it.
    """

    def __init__(self, alpha: float = 0.9) -> None:
        self.alpha = alpha
        self.values: dict[str, float] = {}

    def get(self, role: str) -> float:
        return self.values.get(role, 0.0)

    def advantage(self, role: str, reward: float) -> float:
        return reward - self.get(role)

    def update(self, role_means: Mapping[str, float]) -> None:
        """Fold in this step's mean reward per role (already averaged over ranks)."""
        for role, mean in role_means.items():
            self.values[role] = self.alpha * self.get(role) + (1 - self.alpha) * mean

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "values": dict(self.values)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.alpha = float(state["alpha"])
        self.values = {k: float(v) for k, v in state["values"].items()}
