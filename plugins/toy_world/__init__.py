"""The toy world: a small Qwen2.5-VL warm-started to speak the spy game on ``clevr_toy``
scenes, so self-play shows learning on a CPU in minutes (docs/toy-world.md).

A default plugin (loaded in every run) that registers

- model ``toy-world``: the shipped weights in ``plugins/toy_world/model/``, made for the
  ``clevr_toy`` image source; ``games.spy`` names it as its default model;
- command ``vzframe model build-toy DIR``: rebuild them (``build.py``, deterministic).
"""

from __future__ import annotations

import argparse

from vzframe.hookspecs import hookimpl
from vzframe.models import ModelSpec

MODEL_NAME = "toy-world"


@hookimpl
def register_models(register) -> None:
    from plugins.toy_world.build import TOY_MODEL_DIR

    register(ModelSpec(
        MODEL_NAME, TOY_MODEL_DIR, images="clevr_toy",
        description="3.8 M-parameter Qwen2.5-VL warm-started on the spy game (rebuild: vzframe model build-toy DIR)",
    ))


@hookimpl
def register_commands(model_subparsers) -> None:
    from plugins.toy_world.build import WarmStart

    toy = model_subparsers.add_parser(
        "build-toy", help="build the toy world's base model into DIR (warm-started; about 17 min on 2 CPU cores)"
    )
    toy.add_argument("dir")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--caption-steps", type=int, default=WarmStart.caption_steps)
    toy.add_argument("--game-steps", type=int, default=WarmStart.game_steps)
    toy.set_defaults(func=_build_toy)


def _build_toy(args: argparse.Namespace) -> int:
    from plugins.toy_world.build import WarmStart, build_toy

    settings = WarmStart(seed=args.seed, caption_steps=args.caption_steps, game_steps=args.game_steps)
    path = build_toy(args.dir, settings)
    print(f"Toy-world Qwen2.5-VL model written to {path}; use it with model={path}")
    return 0
