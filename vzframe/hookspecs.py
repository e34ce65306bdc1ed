"""Every hook a vzframe plugin can implement. Hooks are called with keyword arguments; an
implementation may take any subset of a hook's parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # annotations only: the hooks' module imports nothing heavy
    import argparse
    from pathlib import Path

    from vzframe.config import RunConfig
    from vzframe.plugins import RegisteredGames
    from vzframe.probes import Probe
    from vzframe.protocols import Game, ImageSource, PhaseScheduler, RewardFn
    from vzframe.types import Episode

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

hookspec = pluggy.HookspecMarker("vzframe")
hookimpl = pluggy.HookimplMarker("vzframe")


@hookspec
def register_games(register: Callable[[type[Game]], None]) -> None:
    """Register Game classes: ``register(cls)``, named by ``cls.name``."""


@hookspec
def register_schedulers(register: Callable[[type[PhaseScheduler]], None]) -> None:
    """Register PhaseScheduler classes: ``register(cls)``, named by ``cls.name``; chosen by naming the plugin."""


@hookspec
def register_reward_fns(register: Callable[[RewardFn], None]) -> None:
    """Register reward functions: ``register(fn)``, named by ``fn.name``. A game declares its own
    as ``reward_fns`` on its class; this hook is for reward functions of another plugin's game
    (a game's own module using it is deprecated until 0.3)."""


@hookspec
def register_image_sources(register: Callable[[type[ImageSource]], None]) -> None:
    """Register ImageSource classes: ``register(cls)``, named by ``cls.name``; chosen with ``images=NAME``."""


@hookspec
def register_probes(register: Callable[[Probe], None]) -> None:
    """Register probes, zero-label questions that test transfer: ``register(probe)``, named by
    ``probe.name`` (``vzframe.probes.Probe``); scored by ``vzframe probe`` and ``probe_every``."""


@hookspec
def register_models(register: Callable[..., None], games: RegisteredGames) -> None:
    """Register models by name: ``register(ModelSpec(name, path_or_builder, images=...))``; chosen with ``model=NAME``.
    ``games``: the registered games, name -> class (``games.plugin(name)``: the plugin that registered one);
    ``register(spec, game=NAME)`` lists a model made for game NAME under that game's plugin."""


@hookspec
def register_commands(subparsers: Subparsers, model_subparsers: Subparsers) -> None:
    """Add ``vzframe`` subcommands: ``subparsers.add_parser(...)`` (or ``vzframe model`` ones:
    ``model_subparsers.add_parser(...)``), then ``set_defaults(func=...)``."""


@hookspec
def on_run_start(config: RunConfig, output_dir: Path, start_step: int) -> None:
    """Called before the first step; ``start_step`` > 0 when a run resumes from a checkpoint."""


@hookspec
def on_episode_end(step: int, episode: Episode) -> None:
    """Called for each finished game, with its rewards and advantages filled in."""


@hookspec
def on_step_end(step: int, metrics: dict[str, float | str]) -> None:
    """Called after each optimizer step with the step's metrics as written to metrics.jsonl."""


@hookspec
def on_phase_change(step: int, old: str, new: str) -> None:
    """Called when the scheduler switches phase; ``new`` trains from step ``step + 1``."""


@hookspec
def collect_metrics(episodes: Sequence[Episode]) -> dict[str, float] | None:
    """Return metrics of this step's episodes (e.g. ``acc``, ``na``); results are merged with the
    game's own ``collect_metrics`` staticmethod. This hook is for measuring another plugin's game,
    or every game (a game's own module using it is deprecated until 0.3)."""


@hookspec
def game_outcome(episode: Episode) -> dict[str, float] | None:
    """Who won one finished game of your game: each role's result in [0, 1] (1 won, 0 lost,
    0.5 a draw), e.g. ``{"spy": 0.0, "citizen": 1.0}``; None for another plugin's game.
    ``vzframe league`` rates models from it. A game declares its own as an ``outcome``
    staticmethod; this hook is for judging another plugin's game (a game's own module using it
    is deprecated until 0.3)."""
