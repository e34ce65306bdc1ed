"""Asynchronous play (continuous batching, ``play_async``) against tick play (``play``) on
the vLLM engine: the same spy games, the same per-request seeds, so both generate the same
completions and only the scheduling differs.

    python bench/vllm_async.py [--games 12] [--max-new-tokens 256] [--repeats 3] [--lengths spread|model]

The toy-world model ends every turn after about 20 tokens, where real models write from tens
to a thousand. ``--lengths spread`` (the default) gives each request a length drawn from its
own seed, log-uniform between 16 and ``--max-new-tokens`` (median 64 of 256), and generates
exactly that many tokens (``ignore_eos``); ``--lengths model`` keeps the model's own lengths.

Needs vLLM (its CPU build runs on a CPU machine: see .ci/vllm-cpu-env.sh); threads follow
``vzframe run``'s policy (``vzframe.dist.thread_policy``). Each repeat plays a fresh set of
games twice, tick and async, in alternating order, each after a weight sync (as in training,
which empties the prefix cache). Prints generated tokens/s of each mode (min / median / max),
the async/tick ratio of each repeat (min / median / max), engine steps (batched forward
passes), the spread of completion lengths, and the prefix cache's hit rate (share of prompt
tokens it served).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from vzframe import dist

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
dist.configure_threads()  # `vzframe run`'s thread policy, before torch loads OpenMP (it reads the wait policy once)


def games(n_games: int, repeat: int):
    from games.spy.game import SpyConfig, SpyGame
    from plugins.shapes import ShapesSource
    from vzframe.rollout.play import ImageCursor, derive_seed

    cursor = ImageCursor(ShapesSource(ShapesSource.Config(), seed=repeat), rank=0, world=1)
    return [SpyGame(SpyConfig(), seed=derive_seed(0, repeat, 0, i), images=cursor.draw) for i in range(n_games)]


def spread_lengths(engine, top: int) -> None:
    """Make every request of ``engine`` generate exactly L tokens, L = 16 * (top / 16) ** u with
    u uniform in [0, 1) drawn from the request's seed: the same L in tick and async play."""
    make = engine._params

    def params(seeds):
        out = make(seeds)
        for p, seed in zip(out, seeds):
            p.max_tokens = round(16 * (top / 16) ** random.Random(seed).random())
            p.ignore_eos = True
        return out

    engine._params = params


def count_steps(engine) -> list[int]:
    """``counter[0]`` counts the vLLM engine's steps (one batched forward pass each)."""
    inner, counter = engine.llm.llm_engine, [0]
    step = inner.step

    def counted():
        counter[0] += 1
        return step()

    inner.step = counted
    return counter


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each mode, alternating")
    parser.add_argument("--lengths", choices=["spread", "model"], default="spread", help="completion lengths (see above)")
    parser.add_argument("--model", default="plugins/toy_world/model", help="model directory (default: the toy-world model)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vzframe.config import RolloutConfig
    from vzframe.rollout.play import play, play_async
    from vzframe.rollout.vllm import VLLMEngine

    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=torch.float32).eval()
    config = RolloutConfig(
        engine="vllm", temperature=args.temperature, max_new_tokens=args.max_new_tokens, vllm_gpu_memory_utilization=0.1
    )
    engine = VLLMEngine(model, processor, config, seed=0, model_path=args.model)
    if args.lengths == "spread":
        spread_lengths(engine, args.max_new_tokens)
    modes = {"tick": play, "async": play_async}
    counter = count_steps(engine)

    torch.manual_seed(0)
    play_async(games(2, 10**6), engine)  # warm-up, not measured

    rates: dict[str, list[float]] = {m: [] for m in modes}
    hits: dict[str, list[float]] = {m: [] for m in modes}
    steps: dict[str, list[int]] = {m: [] for m in modes}
    ratios, lengths, same, total = [], [], 0, 0
    for r in range(args.repeats):
        order = list(modes) if r % 2 == 0 else list(modes)[::-1]
        texts = {}
        for mode in order:
            engine.sync_weights(model)  # as after an optimizer step: empties the prefix cache
            live = games(args.games, r)
            prompt0, cached0, steps0 = engine.prompt_tokens, engine.cached_prompt_tokens, counter[0]
            torch.manual_seed(r)
            t0 = time.perf_counter()
            rollout = modes[mode](live, engine)
            seconds = time.perf_counter() - t0
            rates[mode].append(rollout.tokens / seconds)
            hits[mode].append((engine.cached_prompt_tokens - cached0) / max(engine.prompt_tokens - prompt0, 1))
            steps[mode].append(counter[0] - steps0)
            texts[mode] = [t.completion for ep in rollout.episodes for t in ep.turns]
            if mode == "tick":
                lengths += [len(gen.token_ids) for p in rollout.games for _, gen in p.generations.values()]
            print(f"repeat {r} {mode:5s}: {rollout.tokens:6d} tokens in {seconds:6.2f} s = {rates[mode][-1]:8.1f} tokens/s, "
                  f"{steps[mode][-1]} engine steps, prefix cache hit rate {hits[mode][-1]:.1%}", flush=True)  # fmt: skip
        ratios.append(rates["async"][-1] / rates["tick"][-1])
        same += sum(a == b for a, b in zip(texts["tick"], texts["async"]))
        total += len(texts["tick"])

    n = args.repeats
    print(f"\n{args.games} spy games, max_new_tokens {args.max_new_tokens}, lengths: {args.lengths}, temperature {args.temperature}, "
          f"{n} alternating repeats of each mode, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY')}")  # fmt: skip
    print(f"completion tokens (tick runs): min / median / max {spread(lengths, '{:.0f}')}, "
          f"{sum(x == args.max_new_tokens for x in lengths) / len(lengths):.0%} hit max_new_tokens")  # fmt: skip
    for mode in modes:
        print(f"{mode:5s} tokens/s min / median / max: {spread(rates[mode], '{:.1f}')}; "
              f"engine steps {spread(steps[mode], '{:.0f}')}; prefix cache hit rate {spread(hits[mode], '{:.1%}')}")  # fmt: skip
    print(f"ratio async / tick per repeat, min / median / max: {spread(ratios)}")
    print(f"identical completions, async vs tick: {same} of {total}")


if __name__ == "__main__":
    main()
