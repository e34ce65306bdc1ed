"""``check_game``'s checks of what a game scores (``vzframe.testing``): its reward functions,
its phases (zero-sum, and groups whose rewards differ so that group-normalised advantages are
not all 0) and its metrics (``collect_metrics``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from vzframe.advantages import group_normalize
from vzframe.gamespec import modules_above
from vzframe.plugins import PluginError, check_metrics, check_rewards, check_zero_sum
from vzframe.protocols import Game
from vzframe.types import Episode


def _check_reward_fn(name: str, fn: Any, episode: Episode, cfg: BaseModel, where: str) -> dict[int, float]:
    stage = getattr(fn, "stage", None)
    indices = {t.index for t in episode.turns if t.stage == stage}
    try:
        rewards = fn(episode, cfg)
    except Exception as exc:
        raise AssertionError(f"{where}: reward fn {name!r} raised {type(exc).__name__}: {exc}") from exc
    for index, value in rewards.items() if isinstance(rewards, dict) else ():
        assert type(value) is float, (
            f"{where}: reward fn {name!r} gave turn {index!r} the {type(value).__name__} reward {value!r}; return "
            "Python floats (float(x)): ints, bools and NumPy scalars are not rewards"
        )
    try:
        return check_rewards(name, rewards, indices)  # the same validation a run applies
    except PluginError as exc:
        raise AssertionError(f"{where}: {exc}") from None


def _check_phase_rewards(game_cls: type[Game], reward_fns: Mapping[str, Any] | None) -> None:
    """Every phase's reward fns are given (when any are) and score the phase's stage."""
    if reward_fns is None:
        return
    for name, fn in reward_fns.items():
        assert getattr(fn, "name", name) == name, f"reward fn registered as {name!r} has .name {fn.name!r}"
    for name, spec in game_cls.phases.items():
        missing = [r for r in spec.rewards if r not in reward_fns]
        assert not missing, f"{game_cls.__name__}.phases[{name!r}] uses reward fns {missing} not in reward_fns"
        for r in spec.rewards:
            fn_stage = getattr(reward_fns[r], "stage", None)
            assert fn_stage == spec.stage, (
                f"{game_cls.__name__}.phases[{name!r}] trains stage {spec.stage!r} with reward fn {r!r} of stage {fn_stage!r}"
            )


def _check_phase_scores(
    game_cls: type[Game], episode: Episode, rewards: dict[str, dict[int, float]] | None, most_scored: Counter[str], where: str
) -> None:
    """A zero-sum phase's rewards (its reward fns summed per turn, as a run scores them) sum
    to 0; count each phase's scored turns (without reward fns: the turns of its stage)."""
    for name, spec in game_cls.phases.items():
        if rewards is None or not spec.rewards:
            most_scored[name] = max(most_scored[name], len(episode.turns_of(spec.stage)))
            continue
        combined: dict[int, float] = {}
        for r in spec.rewards:
            for index, value in rewards[r].items():
                combined[index] = combined.get(index, 0.0) + value
        most_scored[name] = max(most_scored[name], len(combined))
        if spec.zero_sum:
            try:
                check_zero_sum(f"{where}: {game_cls.__name__}", name, combined)  # as a run checks it
            except PluginError as exc:
                raise AssertionError(str(exc)) from None


def _check_phases(game_cls: type[Game], stages: set[str], most_scored: Counter[str]) -> None:
    for name, spec in game_cls.phases.items():
        assert spec.stage in stages, (
            f"{game_cls.__name__}.phases[{name!r}] trains stage {spec.stage!r}, which no episode had "
            f"(stages seen: {sorted(stages)})"
        )
        assert spec.advantage != "group" or most_scored[name] > 1, (
            f"{game_cls.__name__}.phases[{name!r}] uses advantage 'group', but no episode had more than "
            f"{most_scored[name]} scored turn of stage {spec.stage!r}: a group of one is always normalised to "
            "advantage 0, so the phase would train nothing. Use advantage 'role' (reward minus the role's "
            "running baseline)."
        )


def _count_groups(game_cls: type[Game], episode: Episode, rewards: dict[str, dict[int, float]], groups: Counter[tuple[str, bool]]) -> None:
    """Group the episode's turns as a run does (``vzframe.advantages``: a turn's reward is the
    sum of every phase's reward fns; a ``group`` phase normalises over the scored turns of its
    stage in one game) and count, per ``group`` phase, groups of 2+ turns and whether their
    rewards differ (else group normalisation makes every advantage 0)."""
    per_turn: dict[int, float] = {}
    for spec in game_cls.phases.values():
        for r in spec.rewards:
            for index, value in rewards[r].items():
                per_turn[index] = per_turn.get(index, 0.0) + value
    for name, spec in game_cls.phases.items():
        scored = [per_turn[t.index] for t in episode.turns_of(spec.stage) if t.index in per_turn]
        if spec.advantage == "group" and spec.rewards and len(scored) > 1:
            groups[name, max(map(abs, group_normalize(scored))) > 0.5] += 1  # normalised: 0, or about 1 and more


GROUPS_TO_TELL = 20
"""A ``group`` phase whose rewards never differ within a game fails only when at least this
many games had 2+ scored turns of its stage. Fewer cannot tell: with ``check_game``'s policies a
healthy game's votes all get the same reward in some games (the spy game and Odd One Out: 22%
of the games played with examples, 44% of the random mixes, 96% of the adversarial ones), so
three games in a row are all alike about 1 time in 10, and 20 games about 1 in 10 million."""


def _check_groups_vary(game_cls: type[Game], groups: Counter[tuple[str, bool]], episodes: int) -> None:
    for name, spec in game_cls.phases.items():
        seen = groups[name, True] + groups[name, False]
        assert seen < GROUPS_TO_TELL or groups[name, True], (
            f"{game_cls.__name__}.phases[{name!r}] uses advantage 'group', but its reward fns {list(spec.rewards)} "
            f"gave all the scored turns of a game the same reward, in each of the {seen} games (of {episodes} played "
            "with example, adversarial and random moves) that had more than one: group-normalised advantages (GRPO) "
            "are then always 0, and the phase trains nothing. Reward each turn for its own move (a voter's own vote, "
            "not the team's result), or use advantage 'role' (reward minus the role's running baseline)."
        )


# ---- metrics ----------------------------------------------------------------------------


def _find_collect_metrics(game_cls: type) -> Callable[..., Any] | None:
    """``collect_metrics`` of the module defining the game (or a base class), or of the
    nearest package above it."""
    for klass in game_cls.__mro__:
        for module in modules_above(klass):
            fn: object = getattr(module, "collect_metrics", None)
            if callable(fn):
                return fn
    return None


def _collect(collect: Callable[..., Any], episodes: list[Episode], where: str) -> Any:
    try:
        return collect(episodes=episodes)  # hooks are called with keyword arguments
    except Exception as exc:
        raise AssertionError(
            f"{where}: collect_metrics(episodes=<{len(episodes)} episodes>) raised {type(exc).__name__}: {exc}"
        ) from exc


def _check_collected(game_cls: type[Game], collect: Callable[..., Any], episodes: list[Episode], where: str) -> dict[str, float]:
    """``collect_metrics(episodes=...)`` reports every declared metric and nothing else."""
    who = game_cls.__name__
    result = _collect(collect, episodes, where)
    if result is None:
        raise AssertionError(f"{where}: collect_metrics returned None for {who}'s own episodes")
    try:
        values = check_metrics(who, result)  # the same validation a run applies
    except PluginError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    declared = game_cls.metrics
    missing = [m for m in declared if m not in values]
    assert not missing, (
        f"{where}: collect_metrics returned {sorted(values)}, without the metrics {missing} that {who}.metrics "
        "declares; a run stops when a declared metric is not reported"
    )
    extra = [m for m in values if m not in declared]
    assert not extra, (
        f"{where}: collect_metrics returned {extra}, which {who}.metrics does not declare; declare them "
        "(Metric(label)) so schedulers and displays can rely on them"
    )
    return values


def _check_metrics_source(game_cls: type[Game], collect: Callable[..., Any] | None, played: list[Episode]) -> dict[str, float]:
    who = game_cls.__name__
    if collect is None:
        assert not game_cls.metrics, (
            f"{who}.metrics declares {sorted(game_cls.metrics)}, but no collect_metrics was found in "
            f"{game_cls.__module__} or a package above it; pass check_game(..., collect_metrics=your_hook)"
        )
        return {}
    _collect(collect, [], who)
    return _check_collected(game_cls, collect, played, f"{who} ({len(played)} episodes together)")
