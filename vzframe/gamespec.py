"""A game's reward functions, metrics and outcome, wherever its plugin declares them.

A game declares its own on its class (``reward_fns``, a ``collect_metrics`` and an
``outcome`` staticmethod: ``GameExtras``). A plugin in the 0.1 shape gives them through the
``register_reward_fns``, ``collect_metrics`` and ``game_outcome`` hooks of the game's own
module (or a package above it); that still works until 0.3, with one ``DeprecationWarning``
per game and hook. Hooks of other plugins (metrics across games) are always called, without warning.
Every reader (runs, ``check_game``, ``vzframe eval``, the league, the toy world) goes through
the three functions here.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from vzframe.plugins import PluginError, call_each, call_plugin, check_metrics, game_label
from vzframe.protocols import RewardFn, optional
from vzframe.types import Episode

OLD_HOOKS = {"register_reward_fns": "reward_fns", "collect_metrics": "collect_metrics", "game_outcome": "outcome"}
"""Hook of the 0.1 shape -> the game class member that replaces it."""
_warned: set[tuple[str, str]] = set()  # (game label, hook) already warned about: once per process


def own_hooks(game_cls: type) -> dict[str, str]:
    """``{hook: module}`` for the 0.1-shape hooks that the game's own module, or a package above
    it, defines for a member the game does not declare itself."""
    found: dict[str, str] = {}
    for module in modules_above(game_cls):
        for hook, member in OLD_HOOKS.items():
            if callable(getattr(module, hook, None)) and optional(game_cls, member) in (None, ()):  # type: ignore[call-overload]
                found.setdefault(hook, module.__name__)
    return found


def modules_above(cls: type) -> list[ModuleType]:
    """The (imported) module that defines ``cls``, then each package above it, nearest first:
    where a 0.1-shape game's hooks live.

    >>> from vzframe.types import Episode
    >>> [m.__name__ for m in modules_above(Episode)]
    ['vzframe.types', 'vzframe']
    """
    parts = cls.__module__.split(".")
    found = (sys.modules.get(".".join(parts[:n])) for n in range(len(parts), 0, -1))
    return [m for m in found if m is not None]


def warn_old_shape(game_cls: type) -> None:
    """One ``DeprecationWarning`` per game and hook per process when its plugin still gives its
    own reward functions, metrics or outcome through a hook, saying what to declare instead."""
    label = game_label(game_cls)
    todo = {"register_reward_fns": "reward_fns = (MyReward(), ...)", "collect_metrics": "a collect_metrics staticmethod",
            "game_outcome": "an outcome staticmethod"}  # fmt: skip
    for hook, module in own_hooks(game_cls).items():
        if (label, hook) in _warned:
            continue
        _warned.add((label, hook))
        warnings.warn(
            f"{label} gets its {OLD_HOOKS[hook]} from the {hook} hook in {module}: declare {todo[hook]} on "
            f"{game_cls.__name__} instead and drop the hook; a game's own {hook} hook stops working in 0.3 "
            "(docs/plugins.md, \"The Game protocol\"; CHANGELOG.md, \"Migrating from 0.1\").",
            DeprecationWarning,
            stacklevel=3,
        )


def reward_fns_of(game_cls: type, registry: Mapping[str, Any]) -> dict[str, RewardFn]:
    """Name -> reward function for every name the game's ``phases`` use: the game's own
    ``reward_fns``, else the registered ones (``registry``: name -> fn). Missing names are left out."""
    warn_old_shape(game_cls)
    own = {fn.name: fn for fn in optional(game_cls, "reward_fns")}
    names = dict.fromkeys(n for spec in game_cls.phases.values() for n in spec.rewards)  # type: ignore[attr-defined]
    return {n: own[n] if n in own else registry[n] for n in names if n in own or n in registry}


def metrics_of(game_cls: type, pm: Any, episodes: Sequence[Episode]) -> dict[str, float]:
    """What the game's ``collect_metrics`` and every ``collect_metrics`` hook report on
    ``episodes``, checked and merged; two reporting one metric is an error."""
    warn_old_shape(game_cls)
    own = optional(game_cls, "collect_metrics")
    results = call_each(pm, "collect_metrics", episodes=list(episodes))
    if own is not None and "collect_metrics" not in own_hooks(game_cls):
        label = game_label(game_cls)
        results.insert(0, (label, call_plugin(f"{label} in collect_metrics", own, list(episodes))))
    merged: dict[str, float] = {}
    owners: dict[str, str] = {}
    for plugin, result in results:
        for key, value in check_metrics(plugin, result).items():
            if key in owners:
                raise PluginError(f"Plugins {owners[key]!r} and {plugin!r} both report the metric {key!r}; rename one.")
            owners[key], merged[key] = plugin, value
    return merged


def outcome_of(game_cls: type, pm: Any, episode: Episode) -> list[dict[str, float] | Any]:
    """Every answer to who won ``episode``: the game's ``outcome``, else those of the
    ``game_outcome`` hooks that know the game (not None). The caller checks there is one."""
    warn_old_shape(game_cls)
    own = optional(game_cls, "outcome")
    if own is not None and "game_outcome" not in own_hooks(game_cls):
        return [call_plugin(f"{game_label(game_cls)} in outcome", own, episode)]
    return [r for _, r in call_each(pm, "game_outcome", episode=episode) if r is not None]
