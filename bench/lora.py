"""LoRA against a full fine-tune: time of a step, memory of the trainer, and the vLLM weight sync.

    python bench/lora.py step [--model plugins/toy_world/model] [--rank 16] [--repeats 7] [--dropout 0.0] [--unmerged]
    python bench/lora.py memory [--model plugins/toy_world/model] [--rank 16]
    python bench/lora.py sync [--model plugins/toy_world/model] [--rank 16] [--repeats 7]   # needs vLLM (.venv-vllm)

``step`` builds both trainers in one process (DeepSpeed ZeRO-2 on the CPU, KL on, the toy
world's settings: 24 spy-game turns a step, micro-batches of 16, 32 new tokens at temperature
0.8) and alternates their steps ``--repeats`` times: the transformers engine generates (for
LoRA from merged weights, ``lora.merged``), then the trainer trains on what it generated. It
prints the median seconds of each part and their ratios LoRA / full, measured side by side
under the same load. ``--dropout 0.05 --unmerged`` measures LoRA as it was before 2026-12-07
(adapter dropout on, generation through the unmerged adapters). ``memory`` builds the trainer each way in a fresh process (DeepSpeed ZeRO-2 on the CPU, KL on),
trains one step on 8 spy-game turns and reports the bytes the trainer holds, counted tensor by
tensor (policy weights, the reference copy, AdamW's state; gradients as one per trainable
weight, which DeepSpeed keeps in buffers of its own), and the process's peak
resident memory; then the same count projected for Qwen2.5-VL-7B in bf16 (from its shapes;
arithmetic, not a measurement). ``sync`` times ``VLLMEngine.sync_weights`` with a full policy
against a LoRA policy (its merged weights), alternating ``--repeats`` times in one process on
vLLM's CPU build, and prints each as a median and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench.* from the repository root

QWEN_7B = {"hidden": 3584, "layers": 28, "intermediate": 18944, "heads": 28, "kv_heads": 4, "vocab": 152064,
           "vision_params": 0.676e9, "params": 8.29e9}  # fmt: skip
"""Qwen2.5-VL-7B-Instruct's shapes (its config.json) and parameter counts."""


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def one(model: str, lora_rank: int) -> dict:
    """Build a trainer (LoRA when ``lora_rank`` > 0), train one step; what it holds."""
    import torch
    from transformers import AutoProcessor

    from vzframe import dist
    from vzframe.config import LoraConfig, RolloutConfig, TrainConfig
    from vzframe.rollout.hf import HFEngine
    from vzframe.train.trainer import Trainer
    from vzframe.types import Sample

    dist.setup_environment()
    processor = AutoProcessor.from_pretrained(model)
    lora = LoraConfig(rank=lora_rank, alpha=2 * lora_rank, dropout=0.0) if lora_rank else None
    cfg = TrainConfig(lr=1e-4, kl_coef=0.04, zero_stage=2, micro_batch_size=8, lora=lora)
    trainer = Trainer(model, processor, cfg, total_steps=10, temperature=1.0)
    from bench.vllm_rollout import observations

    obs = observations(8)
    engine = HFEngine(trainer.model, processor, RolloutConfig(temperature=1.0, max_new_tokens=32))
    gens = engine.generate(obs)
    trainer.step([Sample(o, g.token_ids, advantage=(-1) ** i, episode=0, turn=i) for i, (o, g) in enumerate(zip(obs, gens))])
    policy = list(trainer.model.parameters())
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return {
        "trainable": sum(p.numel() for p in policy if p.requires_grad),
        "policy_bytes": tensor_bytes(policy),
        "reference_bytes": tensor_bytes(trainer.ref.parameters()) if trainer.ref is not None else 0,
        "grad_bytes": tensor_bytes(p for p in policy if p.requires_grad),  # one per trainable weight, in DeepSpeed's buffers
        "optimizer_bytes": tensor_bytes(state),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def step(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoProcessor

    from bench.vllm_rollout import observations
    from vzframe import dist
    from vzframe.config import LoraConfig, RolloutConfig, TrainConfig
    from vzframe.rollout.hf import HFEngine
    from vzframe.train.trainer import Trainer
    from vzframe.types import Sample

    if args.unmerged:
        import contextlib

        import vzframe.rollout.hf

        vzframe.rollout.hf.lora.merged = lambda model: contextlib.nullcontext()  # generate through the adapters
    dist.setup_environment()
    processor = AutoProcessor.from_pretrained(args.model)
    rollout = RolloutConfig(temperature=0.8, max_new_tokens=32)
    arms = {}
    for label, lora, lr in (("full", None, 4e-5), ("lora", LoraConfig(rank=args.rank, alpha=2 * args.rank, dropout=args.dropout), 4e-4)):
        cfg = TrainConfig(lr=lr, kl_coef=0.04, zero_stage=2, micro_batch_size=16, lora=lora)
        trainer = Trainer(args.model, processor, cfg, total_steps=100, temperature=0.8)
        arms[label] = (trainer, HFEngine(trainer.model, processor, rollout))
    obs = observations(24)
    times: dict[str, dict[str, list[float]]] = {a: {"generate": [], "train": [], "tokens": []} for a in arms}
    for r in range(args.repeats + 1):  # the first round warms up and is not counted
        for label, (trainer, engine) in arms.items():
            t0 = time.perf_counter()
            gens = engine.generate(obs, seeds=[1000 * r + i for i in range(len(obs))])
            t1 = time.perf_counter()
            trainer.step([Sample(o, g.token_ids, advantage=(-1) ** i, episode=i // 3, turn=i) for i, (o, g) in enumerate(zip(obs, gens))])
            t2 = time.perf_counter()
            if r:
                times[label]["generate"].append(t1 - t0)
                times[label]["train"].append(t2 - t1)
                times[label]["tokens"].append(sum(len(g.token_ids) for g in gens))
    med = {a: {k: statistics.median(v) for k, v in t.items()} for a, t in times.items()}
    how = f"dropout {args.dropout}, generation {'through the adapters' if args.unmerged else 'from merged weights'}"
    print(f"model {args.model}, {len(obs)} turns a step, LoRA {how}, threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    for part in ("generate", "train"):
        f, lo = med["full"][part], med["lora"][part]
        print(f"{part:9} full {f:.2f} s  LoRA r={args.rank} {lo:.2f} s  ratio LoRA / full {lo / f:.2f}")
    f = med["full"]["generate"] + med["full"]["train"]
    lo = med["lora"]["generate"] + med["lora"]["train"]
    print(f"step      full {f:.2f} s  LoRA r={args.rank} {lo:.2f} s  ratio LoRA / full {lo / f:.2f} "
          f"(medians of {args.repeats}, alternating; new tokens {med['full']['tokens']:.0f} / {med['lora']['tokens']:.0f})")


def lora_params_7b(rank: int) -> int:
    """Adapter parameters on every attention and MLP projection of Qwen2.5-VL-7B's language model."""
    h, i, layers = QWEN_7B["hidden"], QWEN_7B["intermediate"], QWEN_7B["layers"]
    kv = h * QWEN_7B["kv_heads"] // QWEN_7B["heads"]
    shapes = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]  # q k v o gate up down: (in, out)
    return layers * sum(rank * (a + b) for a, b in shapes)


def memory(args: argparse.Namespace) -> None:
    rows = {}
    for label, rank in (("full", 0), (f"lora r={args.rank}", args.rank)):
        code = f"import json, bench.lora as b; print(json.dumps(b.one({args.model!r}, {rank})))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."})
        rows[label] = json.loads(out.stdout.strip().splitlines()[-1])
    mb = 2**20
    print(f"model {args.model}; one ZeRO-2 step on the CPU, KL on (load average {os.getloadavg()[0]:.2f})")
    print(f"{'':14}{'trainable':>12}{'policy':>10}{'reference':>11}{'grads':>9}{'AdamW':>9}{'held':>9}{'peak RSS':>10}")
    for label, r in rows.items():
        held = r["policy_bytes"] + r["reference_bytes"] + r["grad_bytes"] + r["optimizer_bytes"]
        print(f"{label:14}{r['trainable']:>12,}{r['policy_bytes'] / mb:>9.1f}M{r['reference_bytes'] / mb:>10.1f}M"
              f"{r['grad_bytes'] / mb:>8.1f}M{r['optimizer_bytes'] / mb:>8.1f}M{held / mb:>8.1f}M{r['peak_rss_bytes'] / mb:>9.0f}M")
    n, a = QWEN_7B["params"], lora_params_7b(args.rank)
    gb = 1e9
    full = n * 2 + n * 2 + n * 2 + n * 12  # bf16 policy, bf16 reference, bf16 grads, fp32 master + 2 moments
    lora = n * 2 + a * (2 + 2 + 12)
    print(f"Projection, Qwen2.5-VL-7B in bf16 ({n / 1e9:.2f} B parameters; LoRA r={args.rank} on the language model's "
          f"7 projections: {a / 1e6:.1f} M): full fine-tune {full / gb:.0f} GB (policy 16.6, reference 16.6, grads 16.6, "
          f"AdamW fp32 99.5; ZeRO-3 splits it over GPUs), LoRA {lora / gb:.1f} GB, before activations and vLLM's share.")


def sync(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoProcessor

    from vzframe import dist
    from vzframe.config import LoraConfig, RolloutConfig, TrainConfig
    from vzframe.rollout.vllm import VLLMEngine
    from vzframe.train.trainer import Trainer

    dist.setup_environment()
    processor = AutoProcessor.from_pretrained(args.model)
    full = Trainer(args.model, processor, TrainConfig(kl_coef=0.0), total_steps=10, temperature=1.0)
    lora = Trainer(args.model, processor, TrainConfig(kl_coef=0.0, lora=LoraConfig(rank=args.rank)), total_steps=10, temperature=1.0)
    config = RolloutConfig(engine="vllm", temperature=0.0, max_new_tokens=8, vllm_gpu_memory_utilization=0.1, vllm_max_model_len=1024)
    engine = VLLMEngine(full.model, processor, config, seed=0, model_path=args.model)
    times: dict[str, list[float]] = {"full": [], "lora": []}
    for _ in range(args.repeats):
        for label, trainer in (("full", full), ("lora", lora)):
            t0 = time.perf_counter()
            engine.sync_weights(trainer.model)
            times[label].append(time.perf_counter() - t0)
    params = sum(p.numel() for p in full.model.parameters())
    f, lo = statistics.median(times["full"]), statistics.median(times["lora"])
    print(f"model {args.model} ({params / 1e6:.2f} M parameters), vLLM CPU build, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"weight sync, full policy: {1000 * f:.1f} ms; LoRA r={args.rank} (merged): {1000 * lo:.1f} ms "
          f"(median of {args.repeats}, alternating); ratio LoRA / full {lo / f:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("step", "memory", "sync"))
    parser.add_argument("--model", default="plugins/toy_world/model")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dropout", type=float, default=0.0, help="step: the adapters' dropout")
    parser.add_argument("--unmerged", action="store_true", help="step: generate through the adapters, not merged weights")
    args = parser.parse_args()
    {"step": step, "memory": memory, "sync": sync}[args.what](args)


if __name__ == "__main__":
    main()
