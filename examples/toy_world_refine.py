"""Refine a toy base model: its fine stage again, from a fresh optimiser, on a new seed of the
teacher's games (docs/toy-world.md "Refining a base: the order of the teacher's games decides").

    python examples/toy_world_refine.py plugins/toy_world/model runs/toy-refined-7 --seed 7
    python examples/toy_world_refine.py MODEL_DIR OUT_DIR --seed S [--steps 1000] [--game games.spy] [--heldout-games 128]

``--steps`` steps of ``build-toy``'s fine stage (4 teacher observations a step, lr 5e-4 with its
warm-up and cosine schedule, every fifth step a check step, 30% of clue turns kept), the game's
teacher playing on pictures seeded ``--seed`` (the build uses 0, 10000 and 20000; the held-out
games 31337). The vision tower stays as it is. ``OUT_DIR`` gets the weights, the source's
tokenizer and processor, and its ``vzframe-toy.json`` with a ``refined`` entry (from where,
seed, steps, loss curve) and the held-out figures of the refined model in place of the
source's. About 3 minutes on 2 idle cores, plus a minute of held-out games; deterministic for a
seed on the same software and thread count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a toy model directory (vzframe model build-toy)")
    parser.add_argument("out", help="where the refined model goes (a new directory)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the teacher's games (not 0, 10000, 20000 or 31337)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--game", default="games.spy", help="the game plugin the model was built for")
    parser.add_argument("--heldout-games", type=int, default=128, help="held-out games for the figures (0: none)")
    args = parser.parse_args()
    source, out = Path(args.model), Path(args.out)
    stamp_file = source / "vzframe-toy.json"
    if not stamp_file.is_file():
        raise SystemExit(f"{source}: no vzframe-toy.json; refine a model made by `vzframe model build-toy`.")
    if out.exists():
        raise SystemExit(f"{out} exists; give a new directory.")
    if args.steps < 1:
        raise SystemExit(f"--steps must be >= 1; got {args.steps}.")

    import torch
    from transformers import AutoProcessor

    from plugins.toy_world.build import WarmStart, supervised
    from plugins.toy_world.heldout import format_figures, heldout_figures
    from plugins.toy_world.world import toy_world
    from vzframe.models.tiny import written_atomically
    from vzframe.train.trainer import load_model

    world = toy_world(args.game)
    stamp = json.loads(stamp_file.read_text())
    with written_atomically(out, prefix=".refine-") as tmp:  # a run killed half-way leaves no OUT_DIR
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        processor = AutoProcessor.from_pretrained(source)
        model = load_model(str(source), bf16=False)
        torch.manual_seed(0)
        # the fine stage alone: one check step (the check optimiser's) starts the check stream, the
        # look stage is skipped but counted so the vision tower stays frozen
        settings = WarmStart(seed=args.seed, look_steps=1, caption_steps=0, check_steps=1, check_word_steps=0, game_steps=0,
                             fine_steps=args.steps, heldout_games=0)  # fmt: skip
        t0 = time.perf_counter()
        history = supervised(model, processor, settings, world, log=_every_250)
        model.to(torch.bfloat16).save_pretrained(tmp)
        stamp["refined"] = {"from": args.model, "seed": args.seed, "steps": args.steps,
                            "history": [h for h in history if h["stage"] == "fine"], "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        stamp.pop("heldout", None)
        if args.heldout_games:
            stamp["heldout"] = heldout_figures(tmp, games=args.heldout_games, world=world)
            stamp["heldout"]["model"]["path"] = "."
            print(format_figures(stamp["heldout"]))
        (tmp / "vzframe-toy.json").write_text(json.dumps(stamp, indent=1))
    print(f"refined model written to {out}; use it with model={out}")


def _every_250(line: str) -> None:
    """Print the stage's log lines of every 250th step (and warnings)."""
    step = line.partition(" step ")[2].partition("/")[0]
    if not step.isdigit() or int(step) % 250 == 0:
        print(line, flush=True)


if __name__ == "__main__":
    main()
