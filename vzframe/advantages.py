"""Advantage estimators: group normalisation (decision stage, GRPO) and role baselines
(clue stage, Role Advantage Estimation)."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vzframe import dist
from vzframe.plugins import PluginError, check_rewards, check_zero_sum
from vzframe.types import Episode, PhaseSpec

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vzframe.protocols import RewardFn

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


def score(
    episodes: list[Episode], phases: Mapping[str, PhaseSpec], reward_fns: Mapping[str, Sequence[RewardFn]], game_config: BaseModel
) -> list[Episode]:
    """Fill in every turn's reward: the sum of its phase's reward functions (``reward_fns``:
    phase -> functions). A phase declared ``zero_sum`` must sum to 0 in every episode."""
    scored = []
    for ep in episodes:
        rewards: dict[int, float] = {}
        for phase, spec in phases.items():
            stage_turns = {t.index for t in ep.turns_of(spec.stage)}
            phase_rewards: dict[int, float] = {}
            for fn in reward_fns[phase]:
                try:
                    out = fn(ep, game_config)
                except Exception as exc:
                    raise PluginError(f"Reward function {fn.name!r} raised on a {ep.game} episode: {type(exc).__name__}: {exc}") from exc
                for index, value in check_rewards(fn.name, out, stage_turns).items():
                    phase_rewards[index] = phase_rewards.get(index, 0.0) + value
            if getattr(spec, "zero_sum", False):
                check_zero_sum(f"Game {ep.game!r}", phase, phase_rewards)
            for index, value in phase_rewards.items():
                rewards[index] = rewards.get(index, 0.0) + value
        turns = tuple(dataclasses.replace(t, reward=rewards.get(t.index)) for t in ep.turns)
        scored.append(dataclasses.replace(ep, turns=turns))
    return scored


def estimate_advantages(
    episodes: list[Episode], phases: Mapping[str, PhaseSpec], baselines: RoleBaselines
) -> tuple[list[Episode], dict[str, float]]:
    """Group-normalise ``group`` stages within each game; subtract the role baseline in
    ``role`` stages, then fold this step's rank-averaged role means into the baselines.
    Returns the episodes with advantages and those role means."""
    group_stages = {s.stage for s in phases.values() if s.advantage == "group"}
    role_stages = {s.stage for s in phases.values() if s.advantage == "role"}
    sums: dict[str, float] = defaultdict(float)
    for ep in episodes:
        for role in set(ep.roles):
            sums[f"{role}/sum"] += 0.0
            sums[f"{role}/n"] += 0.0
        for t in ep.turns:
            if t.stage in role_stages and t.reward is not None:
                sums[f"{t.role}/sum"] += t.reward
                sums[f"{t.role}/n"] += 1
    totals = dist.all_reduce_sum(sums)
    role_means = {k[:-4]: totals[k] / totals[k[:-4] + "/n"] for k in totals if k.endswith("/sum") and totals[k[:-4] + "/n"]}

    out = []
    for ep in episodes:
        advantages: dict[int, float] = {}
        for stage in group_stages:
            scored = [(t.index, t.reward) for t in ep.turns_of(stage) if t.reward is not None]
            advantages.update(zip((i for i, _ in scored), group_normalize([r for _, r in scored])))
        for t in ep.turns:
            if t.stage in role_stages and t.reward is not None:
                advantages[t.index] = baselines.advantage(t.role, t.reward)
        out.append(dataclasses.replace(ep, turns=tuple(dataclasses.replace(t, advantage=advantages.get(t.index)) for t in ep.turns)))
    baselines.update(role_means)
    return out, role_means
