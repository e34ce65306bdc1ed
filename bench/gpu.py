"""GPU benchmark, offline: random-weight Qwen2.5-VL models at the shapes of the 3B and 7B
checkpoints, built on the device (nothing is downloaded), measured in bf16 on one GPU.

    bench/gpu.sh                                    # = python bench/gpu.py --json gpu-bench.json
    python bench/gpu.py [--models 3b,7b] [--peak-tflops 989] [--json OUT] [--budget-s 450]
    python bench/gpu.py --tiny --json OUT           # CPU smoke test (tests/test_bench_gpu.py)

Per model shape, each figure the median of ``--repeats`` timed runs after one warm-up (min and
max are in the JSON):

- **rollout**: tokens/s of ``vzframe.rollout.hf.HFEngine.generate`` on a batch of real spy-game
  observations (``--batch`` games played up to their first clue turn, one 448x448 picture
  each), ``--new-tokens`` per completion (``min_new_tokens`` = ``max_new_tokens``, so the count
  is exact; the processor's encoding is inside the timed call, as in a run).
- **zero2**, **zero3**: one ``vzframe.train.trainer.Trainer.step`` on ``--train-samples``
  Samples made of those observations and the rollout's completions (micro-batches of
  ``--micro-batch``): tokens/s (prompt + completion tokens, padding not counted) and MFU.
- **lora**: one ZeRO-2 step with ``train.lora`` (rank 16 on the language model's projections,
  KL on: the reference is the model with its adapters off) on the whole model (every layer:
  what fits one GPU), tokens/s and MFU counted as 4 x text parameters x tokens (no weight
  gradients for frozen weights), and its sync of the merged weights.
- **sync**: the time to gather every parameter and copy it into a destination buffer on the
  same device, as ``VLLMEngine.sync_weights`` hands them over (``full_parameters``: gathered
  one at a time under ZeRO-3), in seconds and GB/s; measured on the unsharded rollout model
  and on each trainer's module.

Choices, and why:

- Shapes are those of Qwen/Qwen2.5-VL-{3B,7B}-Instruct's config.json (``MODELS``), including
  the real vocabularies: 151,936 tied for 3B, 152,064 untied for 7B. The tokenizer and
  processor are ``vzframe.models.tiny``'s (a BPE trained offline, a real Qwen2.5-VL image
  processor), so picture tokens are real (448x448 -> 256) but text prompts tokenize
  differently from Qwen's tokenizer; sampled ids above the small tokenizer decode to nothing.
- Memory: DeepSpeed bf16 training holds about 16 bytes per parameter on one GPU (bf16 weights
  and gradients, fp32 master weights, Adam's two moments), plus about 8 more at the optimizer
  step (an fp32 copy of the gradients, AdamW's temporaries); ZeRO-3 the same, since one rank
  has nothing to shard with (its step works in 1e9-element sub-groups). 3B (3.75 B
  parameters): ~90 GB at the step, ~80 GB during backward with ~20 GB of activations
  (micro-batch 4 of ~820-token sequences); fits a 139 GB H200. 7B (8.29 B) would need ~200
  GB, so its training steps and their syncs use a 7B-shaped model with 8 of its 28 decoder
  layers (same widths, vocabulary and vision tower, 3.63 B parameters, ~87 GB;
  ``--train-layers 7b=N``); its rollout and the unsharded sync use all 28. MFU is reported for
  the model trained, not extrapolated. On a smaller GPU lower ``--train-layers`` (e.g.
  ``3b=12,7b=2`` for 80 GB) or ``--micro-batch``; ``--gradient-checkpointing`` trades time for
  activation memory.
- The KL coefficient is 0, so no frozen reference model is loaded or run (a run with the
  default 0.04 adds its forward, about a third of a step's compute, and under ZeRO-2 its
  weights); one update per batch.
- MFU = model FLOPs / step time / peak, model FLOPs = 6 x parameters x tokens each part
  sees: decoder layers x text tokens, the LM head x the positions the loss keeps (completion
  + 1), vision blocks x patches, the patch merger x merged patches. Attention score FLOPs are
  not counted (a few percent at ~820-token sequences). Peak: bf16 dense by device name
  (``PEAK_TFLOPS``) or ``--peak-tflops``.
- Each model's (rollout, zero2) and (zero3) run in fresh processes: a DeepSpeed engine does
  not hand its GPU memory back reliably, a process exit does. With ``--tiny`` all parts share
  one process (``--one-process``), which halves the smoke test's import time. ``--budget-s``
  bounds the whole run; a group that cannot start in time is reported as skipped.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

PARTS = ("rollout", "zero2", "zero3", "lora")

# Qwen/Qwen2.5-VL-{3B,7B}-Instruct config.json. train_layers: decoder layers of the model the
# training steps use (None: all); see the module docstring for why 7B trains 8.
MODELS = {
    "3b": dict(hidden=2048, layers=36, heads=16, kv_heads=2, intermediate=11008, vocab=151936, tie=True,
               rope_theta=1e6, mrope=[16, 24, 24], vision_depth=32, vision_hidden=1280, vision_intermediate=3420,
               vision_heads=16, window=112, train_layers=None),
    "7b": dict(hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944, vocab=152064, tie=False,
               rope_theta=1e6, mrope=[16, 24, 24], vision_depth=32, vision_hidden=1280, vision_intermediate=3420,
               vision_heads=16, window=112, train_layers=8),
    # vzframe.models.tiny's shape and vocabulary (the tokenizer's); trains 1 of 2 layers so
    # the smoke test goes through the reduced-depth path too.
    "tiny": dict(hidden=128, layers=2, heads=2, kv_heads=1, intermediate=256, vocab=None, tie=False,
                 rope_theta=1e4, mrope=[8, 12, 12], vision_depth=2, vision_hidden=64, vision_intermediate=128,
                 vision_heads=2, window=56, train_layers=1),
}  # fmt: skip

# Peak dense bf16 tensor FLOP/s by device name; the first name contained in the device's wins.
PEAK_TFLOPS = (("GH200", 989), ("H200", 989), ("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H800", 989),
               ("B200", 2250), ("A100", 312), ("A800", 312), ("L40S", 362), ("L4", 121))  # fmt: skip

GPU_DEFAULTS = dict(batch=16, new_tokens=128, train_samples=16, micro_batch=4, repeats=3, image_size=448)
TINY_DEFAULTS = dict(batch=4, new_tokens=8, train_samples=4, micro_batch=2, repeats=2, image_size=112)
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated, from " + ", ".join(MODELS) + " (default 3b,7b; tiny with --tiny)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and sizes: a smoke test that runs on a CPU")
    p.add_argument("--parts", default=",".join(PARTS), help="which of rollout,zero2,zero3 to run")
    p.add_argument("--batch", type=int, help="observations per rollout call (16; tiny 4)")
    p.add_argument("--new-tokens", type=int, help="tokens generated per observation (128; tiny 8)")
    p.add_argument("--train-samples", type=int, help="samples per training step (16; tiny 4)")
    p.add_argument("--micro-batch", type=int, help="sequences per forward/backward (4; tiny 2)")
    p.add_argument("--repeats", type=int, help="timed repeats after one warm-up; the median is reported (3; tiny 2)")
    p.add_argument("--image-size", type=int, help="side of the game's pictures in pixels (448; tiny 112)")
    p.add_argument("--train-layers", default="", help="decoder layers trained, e.g. 7b=8,3b=36 (defaults in MODELS)")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--one-process", action="store_true", help="all parts of a model in one process (default with --tiny)")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--peak-tflops", type=float, help="peak bf16 dense TFLOP/s for MFU (default: by device name)")
    p.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget of the whole run")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: parts this process runs
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key, value in (TINY_DEFAULTS if args.tiny else GPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.models = (args.models or ("tiny" if args.tiny else "3b,7b")).split(",")
    args.parts = args.parts.split(",")
    unknown = [m for m in args.models if m not in MODELS] + [x for x in args.parts if x not in PARTS]
    if unknown:
        p.error(f"unknown {unknown}: models are {', '.join(MODELS)}; parts are {', '.join(PARTS)}")
    small = [k for k in ("batch", "new_tokens", "train_samples", "micro_batch", "repeats") if getattr(args, k) < 1]
    if small:
        p.error(f"{', '.join('--' + k.replace('_', '-') for k in small)} must be at least 1")
    for item in filter(None, args.train_layers.split(",")):
        name, _, n = item.partition("=")
        if name not in MODELS or not n.isdigit() or not 1 <= int(n) <= MODELS[name]["layers"]:
            p.error(f"--train-layers {item!r}: write MODEL=N with N from 1 to the model's layers, e.g. 7b=8")
    return args


def train_layers(args: argparse.Namespace, name: str) -> int:
    overrides = dict(item.split("=") for item in args.train_layers.split(",") if item)
    spec = MODELS[name]
    return int(overrides.get(name, spec["train_layers"] or spec["layers"]))


# ---- the measuring process -------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    from vzframe import dist

    dist.setup_environment()  # threads, single-process env, DS_ACCELERATOR=cpu without a GPU
    import torch

    from vzframe.train.trainer import quiet_libraries

    quiet_libraries()
    cuda = torch.cuda.is_available()
    if not cuda and args.model != "tiny":
        print(f"No GPU: model {args.model} on a CPU would take hours. Run on a GPU machine, or pass --tiny.")
        return 3
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = args.peak_tflops or next((t for key, t in PEAK_TFLOPS if key in name), None)
    out = {"device": name, "peak_tflops": peak}
    result_file = args.workdir / f"{args.model}-{args.child}.json"
    processor = load_processor(args.workdir, args.image_size)
    observations = spy_observations(args.batch, args.image_size)
    failed = False
    for part in args.child.split(","):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            if part == "rollout":
                out[part], ids = bench_rollout(args, processor, observations)
                (args.workdir / f"{args.model}-ids.json").write_text(json.dumps(ids))
            elif part == "lora":
                out[part] = bench_train(args, processor, observations, stage=2, peak=peak, lora=True)
            else:
                out[part] = bench_train(args, processor, observations, stage=int(part[-1]), peak=peak)
        except Exception as exc:  # e.g. out of memory: report it, free what it held, go on
            traceback.print_exc()
            out[part], failed = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}, True
        out[part]["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
        result_file.write_text(json.dumps(out))  # after each part: a later crash keeps what was measured
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return 1 if failed else 0


def load_processor(workdir: Path, image_size: int):
    """``vzframe.models.tiny``'s tokenizer and processor, built once per run (offline)."""
    from transformers import AutoProcessor

    from vzframe.models.tiny import build_tiny

    path = workdir / f"processor-{image_size}"
    if not path.exists():
        build_tiny(path, image_size=image_size)
    return AutoProcessor.from_pretrained(path)


def spy_observations(n: int, image_size: int) -> list:
    """The first clue turn's observation of ``n`` spy games (one picture each)."""
    from games.spy.game import SpyConfig, SpyGame
    from plugins.shapes import ShapesSource
    from vzframe.rollout.play import ImageCursor

    cursor = ImageCursor(ShapesSource(ShapesSource.Config(size=image_size), seed=0), rank=0, world=1)
    games = [SpyGame(SpyConfig(), seed=i, images=cursor.draw) for i in range(n)]
    return [game.observe(game.to_act()[0]) for game in games]


def build_model(name: str, processor, layers: int, dtype_name: str, device: str | None = None):
    """A random-weight Qwen2.5-VL of shape ``MODELS[name]`` with ``layers`` decoder layers,
    created directly on ``device`` (default: the GPU if there is one) in the benchmark's dtype."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from vzframe.models.tiny import QWEN_SPECIAL_TOKENS

    s = MODELS[name]
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    special = dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    text = dict(vocab_size=s["vocab"] or len(tok), hidden_size=s["hidden"], intermediate_size=s["intermediate"],
                num_hidden_layers=layers, num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
                max_position_embeddings=128000, rms_norm_eps=1e-6, tie_word_embeddings=s["tie"],
                rope_parameters={"rope_type": "default", "rope_theta": s["rope_theta"], "mrope_section": s["mrope"]},
                **special)  # fmt: skip
    depth = s["vision_depth"]
    vision = dict(depth=depth, hidden_size=s["vision_hidden"], intermediate_size=s["vision_intermediate"],
                  num_heads=s["vision_heads"], out_hidden_size=s["hidden"], patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=s["window"],
                  fullatt_block_indexes=[i for i in range(depth) if i % 8 == 7] or [depth - 1])  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=s["tie"], **special,
    )  # fmt: skip
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    if next(model.parameters()).device.type != device:  # in case a transformers version ignores the context
        model = model.to(device)
    for key, value in special.items():
        setattr(model.generation_config, key, value)
    return model


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def bench_rollout(args, processor, observations) -> tuple[dict, list[list[int]]]:
    import torch

    from vzframe.config import RolloutConfig
    from vzframe.rollout import encode
    from vzframe.rollout.hf import HFEngine

    model = build_model(args.model, processor, MODELS[args.model]["layers"], args.dtype).eval()
    model.generation_config.min_new_tokens = args.new_tokens  # every completion exactly new_tokens long
    engine = HFEngine(model, processor, RolloutConfig(temperature=1.0, max_new_tokens=args.new_tokens))
    torch.manual_seed(0)
    engine.generate(observations)  # warm-up
    rates, seconds = [], []
    for _ in range(args.repeats):
        synchronize()
        t0 = time.perf_counter()
        generations = engine.generate(observations)
        synchronize()
        seconds.append(time.perf_counter() - t0)
        rates.append(sum(len(g.token_ids) for g in generations) / seconds[-1])
    t0 = time.perf_counter()
    encode(processor, observations)
    encode_s = time.perf_counter() - t0
    result = {
        "layers": MODELS[args.model]["layers"],
        "params": sum(p.numel() for p in model.parameters()),
        "tokens": sum(len(g.token_ids) for g in generations),
        "prompt_tokens": sum(g.prompt_tokens for g in generations),
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_spread": spread(rates),
        "seconds": spread(seconds),
        "encode_s": encode_s,
        "sync": bench_sync(model, args.repeats),
    }
    return result, [list(g.token_ids) for g in generations]


def flop_params(model) -> dict[str, int]:
    """Parameters by what they multiply: text tokens, kept logit positions, patches, merged patches."""
    counts = {"text": 0, "head": 0, "patch": 0, "merged": 0}
    for name, p in model.named_parameters():
        n = getattr(p, "ds_numel", p.numel())
        if ".visual.merger." in f".{name}":
            counts["merged"] += n
        elif ".visual." in f".{name}":
            counts["patch"] += n
        elif "embed_tokens" not in name and not name.startswith("lm_head"):
            counts["text"] += n
    counts["head"] = model.config.text_config.vocab_size * model.config.text_config.hidden_size  # tied or not
    return counts


def bench_train(args, processor, observations, *, stage: int, peak: float | None, lora: bool = False) -> dict:
    """One ``Trainer.step``; with ``lora`` a ZeRO-2 step of ``train.lora`` (rank 16 on the
    language model's projections) on the whole model: LoRA is what fits one GPU."""
    import vzframe.train.trainer as trainer_module
    from vzframe.config import LoraConfig, TrainConfig
    from vzframe.train.loss import collate
    from vzframe.types import Sample

    ids_file = args.workdir / f"{args.model}-ids.json"
    if ids_file.exists():
        ids = json.loads(ids_file.read_text())
    else:  # rollout not run (--parts) or failed: random completions of the same length
        import random

        rng = random.Random(0)
        ids = [[rng.randrange(len(processor.tokenizer)) for _ in range(args.new_tokens)] for _ in observations]
    samples = [
        Sample(observations[i % len(observations)], tuple(ids[i % len(ids)]), advantage=1.0 - 2 * (i % 2), episode=i, turn=0)
        for i in range(args.train_samples)
    ]
    layers = MODELS[args.model]["layers"] if lora else train_layers(args, args.model)
    counts: dict[str, int] = {}

    def random_model(path: str, *, bf16: bool):  # the Trainer's loader, without a checkpoint
        model = build_model(args.model, processor, layers, "bf16" if bf16 else "fp32")
        counts.update(flop_params(model), params=sum(p.numel() for p in model.parameters()))
        return model

    trainer_module.load_model = random_model
    trainer_module.lora.check = lambda path, cfg: None  # its targets are checked on a config file; these weights have none
    cfg = TrainConfig(zero_stage=stage, bf16=args.dtype == "bf16", micro_batch_size=args.micro_batch, kl_coef=0.04 if lora else 0.0,
                      lr=1e-6, warmup_ratio=0.0, gradient_checkpointing=args.gradient_checkpointing,
                      lora=LoraConfig(rank=16, alpha=32, dropout=0.0) if lora else None)  # fmt: skip
    trainer = trainer_module.Trainer("random-weights", processor, cfg, total_steps=1000, temperature=1.0)

    batch = collate(processor, samples, processor.tokenizer.pad_token_id)
    tokens = int(batch["attention_mask"].sum())
    patches = int(batch["pixel_values"].shape[0]) if "pixel_values" in batch else 0
    chunks = [samples[i : i + args.micro_batch] for i in range(0, len(samples), args.micro_batch)]
    kept = sum(len(c) * (max(len(s.completion_ids) for s in c) + 1) for c in chunks)
    flops = 6 * (counts["text"] * tokens + counts["head"] * kept + counts["patch"] * patches + counts["merged"] * patches // 4)
    if lora:  # frozen weights: no weight gradients (backward ~2x the forward, not ~4x); the vision tower runs forward only
        flops = 4 * (counts["text"] * tokens + counts["head"] * kept) + 2 * (counts["patch"] * patches + counts["merged"] * patches // 4)

    trainer.step(samples)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        synchronize()
        t0 = time.perf_counter()
        trainer.step(samples)
        synchronize()
        seconds.append(time.perf_counter() - t0)
    step_s = statistics.median(seconds)
    return {
        "layers": layers,
        "full_layers": MODELS[args.model]["layers"],
        "params": counts["params"],
        "tokens": tokens,
        "patches": patches,
        "model_flops": flops,
        "tokens_per_s": tokens / step_s,
        "tokens_per_s_spread": spread([tokens / s for s in seconds]),
        "seconds": spread(seconds),
        "mfu": flops / step_s / (peak * 1e12) if peak else None,
        "sync": bench_sync(trainer.model, args.repeats),
        **({"trainable": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad), "kl": "adapters off"} if lora else {}),
    }


def bench_sync(model, repeats: int) -> dict:
    """Hand every parameter over as a weight sync does (gathered one at a time under
    ZeRO-3), copying each into a destination tensor on the same device."""
    import torch

    from vzframe.rollout.vllm import full_parameters

    destination: dict[str, torch.Tensor] = {}

    def once() -> tuple[float, int]:
        synchronize()
        t0, nbytes = time.perf_counter(), 0
        for name, tensor in full_parameters(model):
            if name not in destination:
                destination[name] = torch.empty_like(tensor)
            destination[name].copy_(tensor)
            nbytes += tensor.numel() * tensor.element_size()
        synchronize()
        return time.perf_counter() - t0, nbytes

    once()  # warm-up: allocates the destination
    timed = [once() for _ in range(repeats)]
    seconds = statistics.median(t for t, _ in timed)
    nbytes = timed[0][1]
    return {"seconds": seconds, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9, "spread_s": spread([t for t, _ in timed])}


# ---- the orchestrating process (imports no torch) ---------------------------------------


def run_all(args: argparse.Namespace) -> int:
    start = time.monotonic()
    if args.one_process or args.tiny:
        groups = [args.parts]
    else:
        groups = [g for g in ([p for p in args.parts if p != "zero3"], [p for p in args.parts if p == "zero3"]) if g]
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}  # each child is its own world of one
    env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    env.setdefault("HF_HUB_OFFLINE", "1")
    workdir = Path(tempfile.mkdtemp(prefix="vzframe-gpu-bench-"))
    report: dict = {"device": None, "peak_tflops": None, "settings": settings(args), "models": {}}
    failed = False
    for name in args.models:
        results = report["models"].setdefault(name, {})
        for group in groups:
            left = args.budget_s - (time.monotonic() - start)
            label = f"{name} {'+'.join(group)}"
            if left < 20:
                results.update({p: {"skipped": f"time budget of {args.budget_s:.0f} s spent"} for p in group})
                print(f"{label}: skipped (budget)", flush=True)
                continue
            log = workdir / f"{name}-{group[0]}.log"
            child_args = ["--child", ",".join(group), "--model", name, "--workdir", str(workdir)]
            cmd = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], *child_args]
            t0 = time.monotonic()
            try:
                with log.open("w") as fh:
                    rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=left).returncode
            except subprocess.TimeoutExpired:
                rc = "timed out (budget)"
            result_file = workdir / f"{name}-{','.join(group)}.json"
            measured = json.loads(result_file.read_text()) if result_file.exists() else {}
            report["device"] = report["device"] or measured.get("device")
            report["peak_tflops"] = report["peak_tflops"] or measured.get("peak_tflops")
            tail = log.read_text(errors="replace").splitlines()[-25:]
            for part in group:
                results[part] = measured.get(part) or {"error": f"exit {rc}: " + " | ".join(tail[-3:])}
                if "error" in results[part]:
                    failed = True
            print(f"{label}: {time.monotonic() - t0:.0f} s, exit {rc}", flush=True)
            if rc != 0:
                failed = True
                print("\n".join("    " + line for line in tail), flush=True)
            if rc == 3:  # no GPU: every other group would say the same
                return finish(args, report, workdir, start, failed=True)
    return finish(args, report, workdir, start, failed)


def settings(args: argparse.Namespace) -> dict:
    keys = ("batch", "new_tokens", "train_samples", "micro_batch", "repeats", "image_size", "dtype", "gradient_checkpointing")
    return {k: getattr(args, k) for k in keys} | {"train_layers": {m: train_layers(args, m) for m in args.models}}


def finish(args: argparse.Namespace, report: dict, workdir: Path, start: float, failed: bool) -> int:
    report["wall_s"] = time.monotonic() - start
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    if failed:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def print_table(report: dict) -> None:
    s = report["settings"]
    peak = report["peak_tflops"]
    peak_text = f"peak {peak:g} TFLOP/s bf16 dense" if peak else "peak unknown (MFU needs --peak-tflops)"
    print(f"\n{report['device']}, {peak_text}, {s['dtype']}; rollout "
          f"{s['batch']} spy observations x {s['new_tokens']} new tokens; train step on {s['train_samples']} samples, "
          f"micro-batch {s['micro_batch']}; median of {s['repeats']} after 1 warm-up; {report['wall_s']:.0f} s in all")  # fmt: skip
    print(f"{'model':<6} {'part':<8} {'layers':>7} {'params':>8} {'tokens/s':>10} {'call s':>8} {'MFU':>6} "
          f"{'sync s':>8} {'sync GB/s':>9} {'peak GB':>8}")  # fmt: skip
    for name, parts in report["models"].items():
        for part, r in parts.items():
            if "tokens_per_s" not in r:
                print(f"{name:<6} {part:<8} {r.get('error') or r.get('skipped')}")
                continue
            layers = f"{r['layers']}/{r.get('full_layers', r['layers'])}"
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
            peak_gb = f"{r['peak_gb']:.1f}" if r.get("peak_gb") is not None else "-"
            print(f"{name:<6} {part:<8} {layers:>7} {count(r['params']):>8} {r['tokens_per_s']:10.1f} "
                  f"{r['seconds']['median']:8.3f} {mfu:>6} {r['sync']['seconds']:8.4f} {r['sync']['gb_per_s']:9.2f} "
                  f"{peak_gb:>8}")  # fmt: skip
    print("rollout: generated tokens/s, one generate call; zero2/zero3: (prompt + completion) tokens/s, one optimizer "
          "step; sync: rollout row unsharded, training rows from the trainer's module (ZeRO-3: gathered)")  # fmt: skip


def count(n: int) -> str:
    """A parameter count for the table: 3.75B, 0.71M."""
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def main() -> int:
    args = parse_args()
    if args.child:
        return child(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
