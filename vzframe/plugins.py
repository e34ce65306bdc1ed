"""Finding, loading and registering plugins.

A plugin is a module with ``@hookimpl`` functions. Its name (``games.spy``) is looked up
as an entry point in group ``vzframe``; if no entry point has that name it is imported as
a module path (pytest's ``-p`` rule), so a checkout and an installed wheel behave alike.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points, version
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from vzframe import hookspecs
from vzframe.models import ModelSpec

ENTRY_POINT_GROUP = "vzframe"
DEFAULT_PLUGINS = (
    "vzframe.models", "plugins.shapes", "plugins.clevr", "plugins.charts", "plugins.folder", "plugins.toy_world",
)
"""Loaded in every run: the built-in models (``tiny``, ``toy-world``) and image sources."""
OWN_PACKAGES = ("games", "plugins", "schedulers")
"""The top-level packages vzframe's wheel installs beside ``vzframe`` (the names users type,
``games.spy``). Another package of the same name would shadow them: ``own_packages`` imports
them first and reports one that is not vzframe's."""


class PluginError(Exception):
    """A plugin could not be found, loaded or registered; the message says what to do."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    module: str
    hooks: tuple[str, ...]


def installed_plugins() -> dict[str, Any]:
    """Entry points in group ``vzframe``, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _version_of(ep: Any, module: Any) -> str:
    if ep is not None and ep.dist is not None:
        return str(ep.dist.version)
    top = module.__name__.split(".")[0]
    if getattr(module, "__version__", None):
        return str(module.__version__)
    try:
        return version(top)
    except Exception:
        return version("vzframe") if top in ("vzframe", "games", "schedulers", "plugins") else "unknown"


def own_packages() -> None:
    """Import vzframe's own top-level packages (``OWN_PACKAGES``) before any plugin, so a folder
    of the same name in the current directory (which ``load_plugin`` puts on ``sys.path``)
    cannot shadow them, and fail clearly where one already did (``python -m`` from such a
    folder's parent, or another distribution that installs a package of that name)."""
    root = Path(__file__).resolve().parent.parent
    for top in OWN_PACKAGES:
        try:
            module = importlib.import_module(top)
        except ImportError as exc:
            raise PluginError(f"vzframe's package {top!r} does not import ({exc}); reinstall vzframe (pip install -e .).") from exc
        found = [Path(p).resolve() for p in getattr(module, "__path__", [])]
        if root / top not in found:
            raise PluginError(
                f"The package {top!r} was imported from {', '.join(map(str, found)) or module.__file__}, not from "
                f"vzframe's {root / top}: a folder or another distribution named {top!r} shadows the package that holds "
                f"vzframe's built-in plugins. Rename yours (any name but {', '.join(OWN_PACKAGES)} and vzframe; an entry "
                f'point may still call your plugin "{top}.mine"), or run vzframe from another directory '
                "(docs/plugins.md 'Package names')."
            )


def load_plugin(name: str) -> ModuleType:
    """Import plugin ``name`` by entry point, else by module path."""
    own_packages()
    installed = installed_plugins()
    ep = installed.get(name)
    if ep is None and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a plugin beside you is found
    try:
        module = ep.load() if ep is not None else importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if ep is None and exc.name is not None and name.startswith(exc.name):
            known = ", ".join(sorted(installed)) or "none"
            top = name.split(".")[0]
            own = (
                f" {top!r} is vzframe's own package, so a module of yours cannot live in a folder of that name: rename "
                "the folder (docs/plugins.md 'Package names')."
            ) if top in OWN_PACKAGES and (Path.cwd() / top).is_dir() else ""  # fmt: skip
            raise PluginError(
                f"Unknown plugin {name!r}. Installed: {known}. "
                f"See `vzframe plugins`, or give an importable module path.{own}"
            ) from None
        raise PluginError(f"Plugin {name!r} failed to import: {exc}") from exc
    except Exception as exc:
        raise PluginError(f"Plugin {name!r} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def make_plugin_manager(
    names: tuple[str, ...] | list[str] = (), *, on_error: Callable[[str, PluginError], None] | None = None
) -> pluggy.PluginManager:
    """A fresh manager with the default plugins and ``names`` loaded (nothing else).

    A plugin that fails to load raises ``PluginError``, or, with ``on_error``, is passed to
    ``on_error(name, error)`` and skipped."""
    pm = pluggy.PluginManager("vzframe")
    pm.add_hookspecs(hookspecs)
    for name in dict.fromkeys([*DEFAULT_PLUGINS, *names]):
        try:
            module = load_plugin(name)
            if pm.is_registered(module):
                continue
            try:
                pm.register(module, name=name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"Plugin {name!r} is not a valid vzframe plugin: {exc}") from exc
        except PluginError as exc:
            if on_error is None:
                raise
            on_error(name, exc)
    pm.check_pending()
    return pm


def plugin_versions(pm: pluggy.PluginManager) -> dict[str, str]:
    """The version of every plugin in ``pm``: its distribution's, or its module's
    ``__version__``."""
    installed = installed_plugins()
    return {name: _version_of(installed.get(name), module) for name, module in pm.list_name_plugin()}


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, version, module and implemented hooks of every plugin in ``pm``."""
    versions = plugin_versions(pm)
    infos = []
    for name, module in pm.list_name_plugin():
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(module) or ()))
        infos.append(PluginInfo(name, versions.get(name, "unknown"), getattr(module, "__name__", repr(module)), hooks))
    return infos


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name, with the plugin that gave it."""

    games: dict[str, type] = field(default_factory=dict)
    schedulers: dict[str, type] = field(default_factory=dict)
    reward_fns: dict[str, Any] = field(default_factory=dict)
    image_sources: dict[str, type] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, kind: str, name: str, obj: Any, plugin: str) -> None:
        table = getattr(self, kind)
        if name in table:
            raise PluginError(
                f"{kind[:-1].replace('_', ' ')} {name!r} registered twice: by plugin "
                f"{self.owners[(kind, name)]!r} and by {plugin!r}. Load only one of them."
            )
        table[name] = obj
        self.owners[(kind, name)] = plugin


class RegisteredGames(Mapping[str, type]):
    """The games registered so far, name -> class, read-only: the ``games`` that
    ``register_models(register, games)`` receives, with the plugin that registered each."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> type:
        return self._registry.games[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.games)

    def __len__(self) -> int:
        return len(self._registry.games)

    def plugin(self, name: str) -> str:
        """The plugin that registered game ``name``, e.g. ``"games.odd_one_out"``."""
        return self._registry.owners[("games", name)]


REGISTER_HOOKS = {
    "register_games": "games",  # first: register_models is given the registered games
    "register_schedulers": "schedulers",
    "register_reward_fns": "reward_fns",
    "register_image_sources": "image_sources",
    "register_models": "models",
    "register_probes": "probes",
}


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every ``register_*`` hook implementation through pluggy, one plugin at a time, so
    an error names the plugin. Every hook takes one callback, ``register(obj)``, and names
    ``obj`` by its ``name``; ``register_models`` may also take ``games`` (the games registered
    before it) and register a model for one of them, ``register(spec, game=NAME)``."""
    registry = Registry()
    games = RegisteredGames(registry)
    for hook, kind in REGISTER_HOOKS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():  # in the order plugins were loaded

            def register(
                obj: Any, *extra: Any, game: str | None = None, _kind: str = kind, _hook: str = hook,
                _plugin: str = impl.plugin_name,
            ) -> None:  # fmt: skip
                owner = _plugin if game is None else _game_owner(_plugin, _hook, game, games)
                name = getattr(obj, "name", None)
                if extra or not isinstance(name, str) or not name:
                    raise PluginError(
                        f"Plugin {_plugin!r}: {_hook} calls register(obj) with one object that has a str `name` "
                        f"(got register{(obj, *extra)!r}). Give the class a `name` attribute."
                    )
                if _kind == "models" and not isinstance(obj, ModelSpec):
                    raise PluginError(f"Plugin {_plugin!r}: register_models takes register(ModelSpec(...)), not {obj!r}.")
                if _kind == "probes":
                    check_probe(_plugin, obj)
                registry.add(_kind, name, obj, owner)

            args = {"register": register, "games": games}
            call_plugin(f"Plugin {impl.plugin_name!r} in hook {hook}", impl.function, *[args[a] for a in impl.argnames])
    return registry


def _game_owner(plugin: str, hook: str, game: str, games: RegisteredGames) -> str:
    """The plugin a model registered with ``register(spec, game=game)`` is listed under: the game's."""
    if hook != "register_models" or game not in games:
        raise PluginError(
            f"Plugin {plugin!r}: {hook} calls register(obj, game={game!r}); only register_models takes game=NAME, "
            f"the name of a registered game ({', '.join(games) or 'none'})."
        )
    return games.plugin(game)


def check_probe(plugin: str, probe: Any) -> None:
    """Refuse a registered probe that lacks what ``vzframe.probes.Probe`` declares."""
    from vzframe.probes import Probe
    from vzframe.protocols import missing_members

    missing = missing_members(probe, Probe)
    if isinstance(probe, type) or missing:
        raise PluginError(
            f"Plugin {plugin!r}: register_probes got {probe!r}, which lacks {', '.join(missing) or 'an instance'}. "
            "Register an instance with name, label, format, sources, items(source, n, seed) and score(item, answer) "
            "(docs/plugins.md 'Probes')."
        )
    if not isinstance(probe.sources, tuple) or not all(isinstance(s, str) for s in probe.sources):
        raise PluginError(f"Plugin {plugin!r}: probe {probe.name!r} has sources {probe.sources!r}; give a tuple of image source names.")


def check_rewards(fn_name: str, rewards: Any, turn_indices: set[int]) -> dict[int, float]:
    """Reject malformed output of a reward function instead of training on it."""
    if not isinstance(rewards, dict):
        raise PluginError(f"Reward function {fn_name!r} returned {type(rewards).__name__}; expected dict[int, float].")
    for index, value in rewards.items():
        if index not in turn_indices:
            raise PluginError(
                f"Reward function {fn_name!r} scored turn {index!r}, which is not a turn of its stage "
                f"(valid: {sorted(turn_indices)})."
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise PluginError(f"Reward function {fn_name!r} gave turn {index} a non-finite reward {value!r}.")
    return {int(k): float(v) for k, v in rewards.items()}


def check_zero_sum(game_label: str, phase: str, rewards: dict[int, float], tol: float = 1e-6) -> None:
    """Raise unless the rewards of one episode's scored turns (``{turn index: reward}``, the
    phase's reward functions summed) sum to 0, as a phase declared ``zero_sum`` promises.
    ``tol`` is relative to the rewards' size: ``|sum| <= tol * max(1, sum of |reward|)``.

    >>> check_zero_sum("Game 'spy'", "clue", {0: 0.25, 1: -0.25})
    >>> try:
    ...     check_zero_sum("Game 'spy'", "clue", {0: 0.5, 1: 0.5})
    ... except PluginError as exc:
    ...     print(exc)
    Game 'spy': phase 'clue' is declared zero-sum, but an episode's rewards sum to +1 over 2 turns ({0: 0.5, 1: 0.5}). Fix its reward functions, or declare the phase with zero_sum=False.
    """
    total = math.fsum(rewards.values())
    scale = max(1.0, math.fsum(abs(r) for r in rewards.values()))
    if not math.isfinite(total) or abs(total) > tol * scale:
        shown = dict(list(rewards.items())[:8])
        more = f" and {len(rewards) - 8} more" if len(rewards) > 8 else ""
        raise PluginError(
            f"{game_label}: phase {phase!r} is declared zero-sum, but an episode's rewards sum to {total:+.6g} "
            f"over {len(rewards)} turns ({shown}{more}). Fix its reward functions, or declare the phase with "
            "zero_sum=False."
        )


def game_label(cls: type) -> str:
    """How errors name a game: its name and its class, e.g. "Game 'spy' (games.spy.game.SpyGame)"."""
    return f"Game {getattr(cls, 'name', '?')!r} ({cls.__module__}.{cls.__qualname__})"


def call_plugin(what: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, where ``fn`` is plugin code: any exception becomes a
    ``PluginError`` that starts with ``what`` (e.g. "Game 'spy' (games.spy.game.SpyGame) in
    step(player=2)") and says where in the plugin it was raised."""
    try:
        return fn(*args, **kwargs)
    except PluginError:
        raise  # already names the plugin
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)[1:]
        where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        raise PluginError(f"{what} raised {type(exc).__name__}: {exc}{where}") from exc


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook`` in pluggy's order, one plugin at a time, so an
    exception names the plugin and the hook. Returns ``(plugin name, result)`` pairs."""
    results = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        args = [kwargs[name] for name in impl.argnames]
        result = call_plugin(f"Plugin {impl.plugin_name!r} in hook {hook}", impl.function, *args)
        results.append((impl.plugin_name, result))
    return results


def check_metrics(plugin: str, metrics: Any) -> dict[str, float]:
    """Reject malformed output of ``collect_metrics``: it must be None or ``{str: number}``."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise PluginError(
            f"Plugin {plugin!r}: collect_metrics returned {type(metrics).__name__}; expected dict[str, float] or None."
        )
    for key, value in metrics.items():
        if not isinstance(key, str) or not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise PluginError(
                f"Plugin {plugin!r}: collect_metrics returned {key!r}: {value!r}; metrics are str names with float values."
            )
    return {k: float(v) for k, v in metrics.items()}
