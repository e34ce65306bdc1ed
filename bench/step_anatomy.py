"""Where a training step's time goes: rollout (model generation vs game logic), rewards and
advantages, log-probs + loss + backward, optimizer, weight sync, metrics and logging,
checkpointing. Runs a short real run of the spy game on the tiny model (or --model) and
times each part by wrapping the functions the loop calls; the step total is the loop's own
wall time, so the shares are measured in the same run.

    python bench/step_anatomy.py [--steps 8] [--games 8] [--max-new-tokens 48] [--checkpoint-every 4]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections import defaultdict
from pathlib import Path

SPENT: dict[str, float] = defaultdict(float)


def timed(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--games", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--checkpoint-every", type=int, default=4)
    parser.add_argument("--model")
    args = parser.parse_args()

    import deepspeed.runtime.engine as ds_engine

    from vzframe import checkpoint, runtime
    from vzframe.config import load_config
    from vzframe.rollout import hf
    from vzframe.train import trainer

    timed(runtime, "play", "rollout (all)")
    timed(hf.HFEngine, "generate", "rollout: model generate")
    timed(runtime, "save_images", "saving pictures")
    timed(runtime, "score", "rewards")
    timed(runtime, "estimate_advantages", "advantages")
    timed(trainer.Trainer, "step", "train (all)")
    timed(trainer, "collate", "train: processor encode")
    timed(trainer.Trainer, "_logprobs", "train: reference log-probs")
    timed(ds_engine.DeepSpeedEngine, "backward", "train: backward")
    timed(ds_engine.DeepSpeedEngine, "step", "train: optimizer step")
    timed(hf.HFEngine, "sync_weights", "weight sync")
    timed(runtime, "step_metrics", "metrics")
    timed(runtime, "write_step", "logging (files)")
    timed(checkpoint, "save", "checkpointing")
    timed(runtime.RunDisplay, "update", "display")

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"steps={args.steps}", f"games_per_step={args.games}", f"rollout.max_new_tokens={args.max_new_tokens}",
                     f"checkpoint_every={args.checkpoint_every}", f"output_dir={Path(tmp) / 'run'}"]  # fmt: skip
        if args.model:
            overrides.append(f"model={args.model}")
        config = load_config(None, overrides, ["games.spy", "schedulers.alternate"])
        t0 = time.perf_counter()
        out = runtime.train(config, display=False)
        import json

        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        setup_and_loop = time.perf_counter() - t0
    loop = sum(r["time_step"] for r in rows) + SPENT["logging (files)"] + SPENT["checkpointing"] + SPENT["display"]
    SPENT["rollout: game logic"] = SPENT["rollout (all)"] - SPENT["rollout: model generate"]
    SPENT["train: forward + loss"] = (
        SPENT["train (all)"] - SPENT["train: processor encode"] - SPENT["train: reference log-probs"]
        - SPENT["train: backward"] - SPENT["train: optimizer step"]
    )  # fmt: skip
    model = ["rollout: model generate", "train: reference log-probs", "train: forward + loss", "train: backward", "train: optimizer step"]
    outside = ["rollout: game logic", "saving pictures", "rewards", "advantages", "train: processor encode", "weight sync",
               "metrics", "logging (files)", "checkpointing", "display"]  # fmt: skip
    print(f"{args.steps} steps x {args.games} games, max_new_tokens {args.max_new_tokens}, checkpoint every {args.checkpoint_every}")
    print(f"loop {loop:.2f} s ({loop / args.steps:.3f} s/step); with start-up {setup_and_loop:.2f} s")
    for label in model + outside:
        print(f"  {label:28} {SPENT[label]:8.3f} s  {100 * SPENT[label] / loop:6.2f} %")
    model_share = sum(SPENT[k] for k in model) / loop
    print(f"model compute {100 * model_share:.2f} %, outside model compute {100 * (1 - model_share):.2f} %")
    encode = SPENT["train: processor encode"] / loop
    print(f"  of which image/text preprocessing for training {100 * encode:.2f} %, checkpointing {100 * SPENT['checkpointing'] / loop:.2f} %")


if __name__ == "__main__":
    main()
