"""Rollout efficiency: vzframe's rollout (G spy games played to the end, every tick one
batched generate) against a raw batched ``generate`` of exactly the same prompts, seeds and
lengths with the same model, for G = 1, 4, 16, 64; the cost of sampling every request from
its own seed (raw generate with vzframe's sampler against transformers' own, per token); and the speed-up of batching G games over
playing them one observation at a time (the reference implementation's way).

    python bench/rollout.py [--games 1 4 16 64] [--max-new-tokens 32] [--single-up-to 16] [--torch-threads]

Threads follow ``vzframe run``'s policy (``vzframe.dist.thread_policy``: cores split over the
local ranks, idle OpenMP threads sleep); ``--torch-threads`` keeps torch's own defaults instead
(as before vzframe set a policy). ``OMP_NUM_THREADS`` / ``OMP_WAIT_POLICY`` win either way.

Each ratio is measured within one run: the two sides alternate ``--repeats`` times (7) and
each repeat gives one vzframe/raw ratio, printed as min / median / max with a verdict on the
claim "vzframe runs at >= ``--claim`` (0.95) of a raw generate": held when every repeat is at or
above it, refuted when every repeat is below it (a sign test: p = 2^-repeats each way),
otherwise not decided at this many repeats; the raw replay samples each request with the same seed and the same
sampler as the transformers engine (``SeededSampling``: Gumbel-max noise per row, so a
completion does not depend on its batch), so it generates the very same tokens as the
framework did (asserted; ``tests/test_bench_rollout.py`` runs it small).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from vzframe import dist

if "--torch-threads" not in sys.argv:
    dist.configure_threads()  # before torch loads OpenMP, which reads the wait policy once
import torch  # noqa: E402

from vzframe.rollout import default_seeds  # noqa: E402


class Recorder:
    """Wraps an engine: remembers each tick's observations and per-request sampling seeds
    (drawn here as the engine would draw them, ``default_seeds``)."""

    def __init__(self, engine):
        self.engine, self.ticks = engine, []

    def generate(self, observations, seeds=None):
        if seeds is None:
            seeds = default_seeds(len(observations))
        self.ticks.append((list(observations), list(seeds)))
        return self.engine.generate(observations, seeds)


class OneAtATime:
    """The reference implementation's rollout: one observation per generate call."""

    def __init__(self, engine):
        self.engine = engine

    def generate(self, observations):
        return [self.engine.generate([obs])[0] for obs in observations]


def new_games(n: int, seed: int = 0):
    from games.spy.game import SpyConfig, SpyGame
    from plugins.shapes import ShapesSource
    from vzframe.rollout.play import ImageCursor

    cursor = ImageCursor(ShapesSource(ShapesSource.Config(), seed=seed), rank=0, world=1)
    return [SpyGame(SpyConfig(), seed=seed * 1000 + i, images=cursor.draw) for i in range(n)]


def raw_replay(model, processor, ticks, config, seeded: bool = True) -> tuple[float, int]:
    """The same prompts through processor + model.generate directly, with the same sampler
    and per-request seeds (``SeededSampling``), so the same tokens. ``seeded=False``:
    transformers' own sampling from torch's global generator instead (other tokens), to
    price the per-request sampler."""
    from vzframe.rollout.hf import SeededSampling

    seconds, tokens = 0.0, 0
    eos = model.generation_config.eos_token_id
    for observations, seeds in ticks:
        texts = [processor.apply_chat_template(list(o.messages), add_generation_prompt=True, tokenize=False) for o in observations]
        images = [im.image for o in observations for im in o.images]
        t0 = time.perf_counter()
        processor.tokenizer.padding_side = "left"
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
        with torch.no_grad():
            sampler = dict(do_sample=False, logits_processor=[SeededSampling(seeds, config.temperature, config.top_p)],
                           temperature=None, top_p=None, top_k=None) if seeded else \
                dict(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=0)  # fmt: skip
            out = model.generate(**inputs, max_new_tokens=config.max_new_tokens, eos_token_id=eos,
                                 pad_token_id=processor.tokenizer.pad_token_id, suppress_tokens=None, **sampler)  # fmt: skip
        seconds += time.perf_counter() - t0
        new = out[:, inputs["input_ids"].shape[1] :]
        for row in new.tolist():
            tokens += row.index(eos) + 1 if eos in row else len(row)
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--single-up-to", type=int, default=16, help="largest G also played one observation at a time")
    parser.add_argument("--repeats", type=int, default=7, help="alternating measurements; min / median / max reported")
    parser.add_argument("--claim", type=float, default=0.95, help="the vzframe/raw ratio the verdict tests")
    parser.add_argument("--model", help="model directory (default: the tiny built-in model)")
    parser.add_argument("--torch-threads", action="store_true", help="torch's default threads, not vzframe's policy")
    args = parser.parse_args()

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vzframe.config import RolloutConfig
    from vzframe.models.tiny import ensure_default_model
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.play import play

    path = args.model or str(ensure_default_model())
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    config = RolloutConfig(temperature=0.8, max_new_tokens=args.max_new_tokens)
    engine = HFEngine(model, processor, config)
    engine.suppress = []  # the raw baseline suppresses nothing either: same sampling, same tokens
    play(new_games(2), engine)  # warm-up

    wait = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"threads {torch.get_num_threads()}, OMP_WAIT_POLICY {wait}, max_new_tokens {args.max_new_tokens}, tokens/s (higher is better)")
    print(f"alternating repeats: {args.repeats}; vzframe/raw per repeat as min / median / max; verdict on vzframe/raw >= {args.claim}")
    print(f"{'G':>4} {'vzframe':>10} {'raw':>10} {'min':>6} {'median':>6} {'max':>6} {'raw, HF sampling':>16} {'sampler cost':>12} {'one-at-a-time':>14} {'batching x':>10}  verdict")
    for g in args.games:
        vz_times, raw_times, hf_rates = [], [], []
        for _ in range(args.repeats):  # alternate the two sides so a noisy moment hits both
            recorder = Recorder(engine)
            torch.manual_seed(g)
            t0 = time.perf_counter()
            tokens = play(new_games(g), recorder).tokens
            vz_times.append(time.perf_counter() - t0)
            raw_s, raw_tokens = raw_replay(model, processor, recorder.ticks, config)
            assert raw_tokens == tokens, f"replay generated {raw_tokens} tokens, the framework {tokens}"
            raw_times.append(raw_s)
            hf_s, hf_tokens = raw_replay(model, processor, recorder.ticks, config, seeded=False)
            hf_rates.append(hf_tokens / hf_s)  # other tokens, so compared per token
        vz_rate, raw_rate = tokens / statistics.median(vz_times), raw_tokens / statistics.median(raw_times)
        ratios = [raw_t / vz_t for vz_t, raw_t in zip(vz_times, raw_times)]  # same tokens both sides
        hf_rate = statistics.median(hf_rates)
        single = ""
        if g <= args.single_up_to:
            torch.manual_seed(g)
            t0 = time.perf_counter()
            single_tokens = play(new_games(g), OneAtATime(engine)).tokens
            single_rate = single_tokens / (time.perf_counter() - t0)
            single = f"{single_rate:14.1f} {vz_rate / single_rate:10.2f}"
        spread = f"{min(ratios):6.3f} {statistics.median(ratios):6.3f} {max(ratios):6.3f}"
        print(f"{g:>4} {vz_rate:10.1f} {raw_rate:10.1f} {spread} {hf_rate:16.1f} {raw_rate / hf_rate:12.3f} {single:25s}  {verdict(ratios, args.claim)}")


def verdict(ratios: list[float], claim: float) -> str:
    """Sign test of "the ratio is at least ``claim``" over alternating repeats."""
    above = sum(r >= claim for r in ratios)
    if above == len(ratios):
        return f"held ({above}/{len(ratios)} repeats >= {claim})"
    if above == 0:
        return f"refuted (0/{len(ratios)} repeats >= {claim})"
    return f"not decided ({above}/{len(ratios)} repeats >= {claim})"


if __name__ == "__main__":
    main()
