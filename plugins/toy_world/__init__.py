"""The toy world: small Qwen2.5-VL models warm-started to speak a game on pictures they can
see, so self-play shows learning on a CPU in minutes (docs/toy-world.md).

A default plugin (loaded in every run) that registers

- model ``toy-world``: the shipped weights in ``plugins/toy_world/model/``, the spy game's
  build on ``clevr_toy`` pictures; ``games.spy`` names it as its default model;
- command ``vzframe model build-toy DIR --game games.X``: build a toy model for any game with a
  teacher (``build.py``, deterministic), with its held-out figures;
- command ``vzframe model heldout DIR --game games.X``: those figures for any model directory
  (``heldout.py``);
- the toy model each loaded game declares (``toy_model = ToyModel(name, images=...)`` on the
  game class, ``vzframe.models.ToyModel``), built once on first use into the cache
  (``games.odd_one_out``: model ``toy-odd-one-out``); ``toy_model_spec(game, name)`` makes the
  same registration for a game plugin that calls it from its own ``register_models``.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vzframe.hookspecs import hookimpl
from vzframe.models import ModelSpec
from vzframe.protocols import optional

if TYPE_CHECKING:
    from plugins.toy_world.build import WarmStart

MODEL_NAME = "toy-world"
TOY_MODELS = "toy-models"
"""The cache folder (``$VZFRAME_CACHE``, else ``~/.cache/vzframe``) where games' toy models are built on first use."""
DEFAULT_BUILD_TIME = "about 30 min on 2 idle CPU cores"
"""How long a build with the default ``WarmStart()`` takes."""


@hookimpl
def register_models(register, games) -> None:
    from plugins.toy_world.build import TOY_MODEL_DIR

    register(ModelSpec(
        MODEL_NAME, TOY_MODEL_DIR, images="clevr_toy",
        description="3.8 M-parameter Qwen2.5-VL warm-started on the spy game (rebuild: vzframe model build-toy DIR)",
    ))
    for name, cls in games.items():  # each game's declared toy model, listed under the game's plugin
        toy = optional(cls, "toy_model")
        if toy is not None:
            plugin = games.plugin(name)
            settings = _warm_start(plugin, name, toy.settings)
            register(toy_model_spec(plugin, toy.name, images=toy.images, settings=settings), game=name)


def _warm_start(plugin: str, game: str, settings: Mapping[str, Any] | None) -> WarmStart | None:
    """The build settings a game's ``ToyModel.settings`` stands for (None: the defaults)."""
    if not settings:
        return None
    from plugins.toy_world.build import WarmStart
    from vzframe.plugins import PluginError

    known = [f.name for f in fields(WarmStart)]
    if unknown := sorted(set(settings) - set(known)):
        raise PluginError(
            f"Plugin {plugin!r}: game {game!r} declares toy_model settings {', '.join(unknown)}, which build-toy "
            f"does not know. Give fields of WarmStart: {', '.join(known)}."
        )
    return WarmStart(**settings)


# ---- a game's own toy model, built on first use ----------------------------------------


def toy_model_spec(
    game: str, name: str, *, images: str | None = None, settings: WarmStart | None = None, description: str | None = None,
) -> ModelSpec:  # fmt: skip
    """Model ``name``: the toy model of game plugin ``game`` (it needs a teacher), on image
    source ``images`` (None: the game's ``default_images``, else ``clevr_toy``, as a run picks),
    built with ``settings`` (default ``WarmStart()``) by the first run that loads it and reused
    after (``ensure_toy_model``). This plugin registers one for each game that declares a
    ``toy_model``; a game plugin may also register one itself::

        register(toy_model_spec("my_package.my_game", "toy-my-game", images="clevr_toy"))
    """
    description = description or (
        f"Qwen2.5-VL warm-started on {game}'s teacher; built on first use ({_budget(settings)}) into the cache, "
        f"or yourself: {_command(game, images, settings)}"
    )
    builder = functools.partial(ensure_toy_model, game, name, images=images, settings=settings)
    return ModelSpec(name, builder, images=images, description=description)


def source_digest(*objects: object) -> str:
    """A hash of the source files that define ``objects`` (classes, modules, or instances of a
    class): what a toy model learns from, so that a changed teacher or game builds anew."""
    import inspect

    files = sorted({inspect.getsourcefile(o if inspect.isclass(o) or inspect.ismodule(o) else type(o)) for o in objects})
    digest = hashlib.sha1()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


def toy_model_dir(game: str, name: str, *, images: str | None = None, settings: WarmStart | None = None) -> Path:
    """Where ``ensure_toy_model`` builds: ``<cache>/toy-models/<name>-<hash>``, the hash of the
    game, images and settings and of the code the build learns from (the game, its teacher, the
    image source and the builder: ``build.py``, ``targets.py``, ``world.py``, and the tiny model's
    tokenizer corpus, ``vzframe.models.tiny``), so changed settings or a changed teacher build
    anew instead of reusing weights made for others."""
    from plugins.toy_world import build, targets, world
    from plugins.toy_world.build import WarmStart
    from vzframe.models import tiny

    toy = world.toy_world(game, images, teacher_required=False)
    teacher = [toy.teacher] if toy.teacher is not None else []
    code = source_digest(toy.game_cls, *teacher, toy.source_cls, build, targets, world, tiny)
    key = json.dumps({"game": game, "images": images, "warm_start": asdict(settings or WarmStart()), "code": code}, sort_keys=True)
    root = Path(os.environ.get("VZFRAME_CACHE", Path.home() / ".cache" / "vzframe"))  # the tiny model's cache too
    return root / TOY_MODELS / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def ensure_toy_model(
    game: str, name: str, *, images: str | None = None, settings: WarmStart | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> Path:  # fmt: skip
    """Build the toy model once (saying so first) and return its directory; a finished build is
    reused. ``build_toy`` writes atomically, so a half-built directory never counts, and a lock
    file beside it makes a second process wait for the first one's build instead of repeating it."""
    from plugins.toy_world import build

    path = toy_model_dir(game, name, images=images, settings=settings)
    if _finished(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process that is building toy model {name!r} into {path}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not _finished(path):  # else the process we waited for built it
            log(
                f"building toy model {name!r} for {game} once ({_budget(settings)}) into {path}; "
                f"`{_command(game, images, settings)}` does the same. Each progress line says how far the "
                "build is and the time left. To skip it, start from another model: model=DIR (a Qwen2-VL-family "
                "model directory) or model=tiny (random weights, built in seconds; it learns no game)"
            )
            build.build_toy(path, settings or build.WarmStart(), game=game, images=images, log=log)
    return path


def _finished(path: Path) -> bool:
    return (path / "vzframe-toy.json").is_file()


def _budget(settings: WarmStart | None) -> str:
    """How long the build takes: the default budget's time, else the settings that differ from it."""
    changed = _changed(settings)
    return ", ".join(f"{k}={v}" for k, v in changed.items()) if changed else DEFAULT_BUILD_TIME


def _command(game: str, images: str | None, settings: WarmStart | None) -> str:
    """The ``build-toy`` command line that builds the same model (settings without a flag are left out)."""
    flags = {"seed", "look_steps", "caption_steps", "game_steps", "fine_steps", "heldout_games", "check_steps", "check_word_steps",
             "check_replay"}
    args = [f"--images {images}"] * bool(images) + [
        f"--{k.replace('_', '-')} {v}" for k, v in _changed(settings).items() if k in flags
    ]
    return " ".join(["vzframe model build-toy DIR --game", game, *args])


def _changed(settings: WarmStart | None) -> dict:
    """The fields of ``settings`` that differ from ``WarmStart()``'s."""
    from plugins.toy_world.build import WarmStart

    if settings is None:
        return {}
    default = WarmStart()
    return {f.name: getattr(settings, f.name) for f in fields(settings) if getattr(settings, f.name) != getattr(default, f.name)}


@hookimpl
def register_commands(model_subparsers) -> None:
    from plugins.toy_world.build import WarmStart
    from plugins.toy_world.heldout import HELDOUT_GAMES, HELDOUT_SEED

    toy = model_subparsers.add_parser(
        "build-toy",
        help="build a toy base model for a game with a teacher into DIR (defaults: about 30 min on 2 idle CPU cores)",
        description=(
            "Warm-start a 3.8 M-parameter Qwen2.5-VL: its vision tower on the kinds of thing the image source's "
            "describe(item) names, then on captions from describe, then on checks of claims against the picture, then on "
            "the game's teacher playing whole games, and write its held-out figures (valid answers, true clues, "
            "the game's metrics, each with a standard error) into DIR/vzframe-toy.json. With the defaults the "
            "spy game's build takes about 30 minutes on 2 idle CPU cores; the time grows with the steps. "
            "Use it with `vzframe run GAME ... model=DIR`."
        ),
    )
    toy.add_argument("dir")
    toy.add_argument("--game", default="games.spy", help="the game plugin (default games.spy); its game needs a teacher")
    toy.add_argument("--images", default=None,
                     help="image source that can describe its pictures (default: the game's, else clevr_toy)")
    toy.add_argument("--seed", type=int, default=WarmStart.seed)
    toy.add_argument("--look-steps", type=int, default=WarmStart.look_steps,
                     help="look-stage steps of 32 pictures (the vision tower alone)")
    toy.add_argument("--look-pool", type=int, default=WarmStart.look_pool,
                     help="pictures the look stage draws its batches from (encoded once; 16,000 take about 3.6 GB)")
    toy.add_argument("--caption-steps", type=int, default=WarmStart.caption_steps, help="caption-stage steps of 16")
    toy.add_argument("--game-steps", type=int, default=WarmStart.game_steps, help="game-stage steps of 16")
    toy.add_argument("--fine-steps", type=int, default=WarmStart.fine_steps,
                     help="fine-stage steps of 4 (the teacher's games again, at a lower learning rate)")
    toy.add_argument("--check-steps", type=int, default=WarmStart.check_steps,
                     help="check-stage steps of 16: is a player's claim true of the picture? (0: none)")
    toy.add_argument("--check-word-steps", type=int, default=WarmStart.check_word_steps,
                     help="the first check steps, one-word claims only (part of --check-steps)")
    toy.add_argument("--check-replay", type=int, default=WarmStart.check_replay,
                     help="every N-th game and fine step is a check step (0: none)")
    toy.add_argument("--heldout-games", type=int, default=WarmStart.heldout_games,
                     help="held-out games played at the end for the figures (0: none)")
    toy.set_defaults(func=_build_toy)

    heldout = model_subparsers.add_parser(
        "heldout",
        help="held-out figures of a model directory on a game: valid answers, true clues, the game's metrics",
        description=(
            "Play held-out games (pictures no build saw) with the model in every seat, generating as a run does, "
            "and with the game's teacher as a reference; print each figure with a standard error (jackknife over "
            "games). Writes the report as JSON with --json FILE."
        ),
    )
    heldout.add_argument("dir", help="a model directory (or a registered model name)")
    heldout.add_argument("--game", default="games.spy", help="the game plugin (default games.spy)")
    heldout.add_argument("--images", default=None, help="image source (default: the game's, else clevr_toy)")
    heldout.add_argument("--games", type=int, default=HELDOUT_GAMES)
    heldout.add_argument("--seed", type=int, default=HELDOUT_SEED)
    heldout.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: a run's)")
    heldout.add_argument("--json", default=None, help="also write the report to this file")
    heldout.set_defaults(func=_heldout)


def _build_toy(args: argparse.Namespace) -> int:
    from plugins.toy_world.build import WarmStart, build_toy

    settings = WarmStart(
        seed=args.seed, look_steps=args.look_steps, look_pool=args.look_pool, caption_steps=args.caption_steps, game_steps=args.game_steps,
        fine_steps=args.fine_steps, heldout_games=args.heldout_games, check_steps=args.check_steps,
        check_word_steps=args.check_word_steps, check_replay=args.check_replay,
    )
    path = build_toy(args.dir, settings, game=args.game, images=args.images)
    stamp = json.loads((Path(path) / "vzframe-toy.json").read_text())
    print(f"Toy-world Qwen2.5-VL model for game {stamp['game_name']!r} written to {path}; use it with model={path}"
          + (f" images={stamp['image_source']}" if stamp["image_source"] != "clevr_toy" else ""))
    print(f"Time: {stamp['seconds']} s; held-out figures in {Path(path) / 'vzframe-toy.json'}.")
    return 0


def _heldout(args: argparse.Namespace) -> int:
    from plugins.toy_world.heldout import format_figures, heldout_figures
    from vzframe.config import RolloutConfig
    from vzframe.models import model_dir
    from vzframe.plugins import build_registry, make_plugin_manager

    path = model_dir(args.dir, build_registry(make_plugin_manager([])).models)
    rollout = RolloutConfig() if args.temperature is None else RolloutConfig(temperature=args.temperature)
    report = heldout_figures(path, game=args.game, images=args.images, games=args.games, seed=args.seed, rollout=rollout)
    print(format_figures(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0
