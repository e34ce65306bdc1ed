"""The DeepSpeed trainer: policy engine (ZeRO stage from config), a frozen reference copy
for the KL term (with ``train.lora``: the policy with its adapters off, ``vzframe.train.lora``),
AdamW with warmup + cosine decay, and one optimizer step per call to ``step(samples)`` with
gradients accumulated over micro-batches.

On a machine without a GPU DeepSpeed runs with ``DS_ACCELERATOR=cpu`` (set by
``vzframe.dist.setup_environment``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vzframe import checkpoint, dist
from vzframe.config import TrainConfig
from vzframe.train import lora
from vzframe.train.ds_checkpoint import safe_checkpoint_engine
from vzframe.train.loss import collate, completion_logprobs, policy_loss, supports_shared_prefix
from vzframe.types import Sample


def deepspeed_config(cfg: TrainConfig, total_steps: int) -> dict[str, Any]:
    """The DeepSpeed config a ``TrainConfig`` stands for (the LR schedule is ``lr_lambda``)."""
    return {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": 1,  # accumulation is driven by Trainer.step
        "gradient_clipping": cfg.max_grad_norm,
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": cfg.bf16},
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": [0.9, 0.999], "torch_adam": True},
        },
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def lr_lambda(step: int, *, total_steps: int, warmup_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup over ``warmup_ratio`` of the steps (the first
    step already moves), then cosine decay to 0. DeepSpeed's WarmupCosineLR cannot express
    "no warmup" and trains its first step at lr 0, so vzframe schedules the LR itself.

    Extending a run (``vzframe resume RUN steps=M``) stretches the schedule to the new total:
    from the resumed step on, the rate is the one a run planned for M steps has at that step.

    >>> [round(lr_lambda(s, total_steps=10, warmup_ratio=0.2), 3) for s in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
    """
    warmup = round(warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def quiet_libraries() -> None:
    """Keep the run's display readable: library progress bars and info logs off."""
    import logging

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)


def load_model(path: str, *, bf16: bool) -> Any:
    """A Hugging Face model directory, or a LoRA checkpoint's ``model/`` (adapters merged into
    the base they were trained on): how eval, league, probe and export read any run."""
    from transformers import AutoModelForImageTextToText

    if lora.is_adapter_dir(path):
        return lora.load_merged(path, bf16=bf16)
    dtype = torch.bfloat16 if bf16 else torch.float32
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)


class Trainer:
    def __init__(
        self, model_path: str, processor: Any, cfg: TrainConfig, *, total_steps: int, temperature: float, seed: int = 0
    ) -> None:
        import deepspeed

        quiet_libraries()
        self.cfg = cfg
        self.processor = processor
        self.temperature = temperature
        self.pad_id = processor.tokenizer.pad_token_id
        dist.init_distributed()  # compiles nothing in a world of one
        if cfg.lora is not None:
            lora.check(model_path, cfg.lora)  # on the meta device: a bad target fails before any weight loads
        model = load_model(model_path, bf16=cfg.bf16)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.config.use_cache = False
        if cfg.lora is not None:
            model = lora.wrap(model, cfg.lora, seed=seed)
        self.ds_config = deepspeed_config(cfg, total_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        schedule = functools.partial(lr_lambda, total_steps=total_steps, warmup_ratio=cfg.warmup_ratio)
        self.engine, self.optimizer, _, self.lr_scheduler = deepspeed.initialize(
            model=model,
            model_parameters=params,
            config=self.ds_config,
            lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
        )
        # Checkpoints are read back weights-only: a run folder is untrusted input.
        self.engine.checkpoint_engine = safe_checkpoint_engine(self.engine._config)
        # The KL reference: a frozen copy of the start, or with LoRA the policy with its adapters off.
        self.ref = self._reference(model_path) if cfg.kl_coef > 0 and cfg.lora is None else None
        # A shared prefix runs as a forward call of its own before the rows' call: not under
        # ZeRO-3 (which traces one forward per backward) or recomputed activations.
        self.share_prefix = (
            cfg.share_prefix and cfg.zero_stage < 3 and not cfg.gradient_checkpointing and supports_shared_prefix(model)
        )

    def _reference(self, model_path: str) -> Any:
        """A frozen copy of the starting policy; sharded like the policy under ZeRO-3."""
        import deepspeed

        ref = load_model(model_path, bf16=self.cfg.bf16).eval()
        ref.requires_grad_(False)
        if self.cfg.zero_stage == 3:
            config = {k: self.ds_config[k] for k in ("train_micro_batch_size_per_gpu", "zero_optimization", "bf16")}
            ref, *_ = deepspeed.initialize(model=ref, config=config)
            ref.eval()
        elif torch.cuda.is_available():
            ref = ref.to(self.engine.device)
        return ref

    @property
    def model(self) -> Any:
        """The policy's Hugging Face module (what rollout engines generate with)."""
        return self.engine.module

    def _micro_batches(self, samples: Sequence[Sample]) -> tuple[list[Sequence[Sample]], int]:
        """Chunks of ``micro_batch_size`` and how many are real. Every rank must run the same
        number of backward passes (ZeRO reduces inside them), so a rank with fewer samples
        repeats its last chunk with zero weight."""
        size = self.cfg.micro_batch_size
        chunks = [samples[i : i + size] for i in range(0, len(samples), size)]
        needed = dist.all_reduce_max(len(chunks))
        if not chunks and needed:
            raise RuntimeError(
                f"Rank {dist.rank()} has no training samples this step while other ranks do; "
                "give every rank the same games_per_step."
            )
        return chunks + [chunks[-1]] * (needed - len(chunks)), len(chunks)

    def _device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {k: v.to(self.engine.device) for k, v in batch.items()}
        if self.cfg.bf16 and "pixel_values" in out:
            out["pixel_values"] = out["pixel_values"].to(torch.bfloat16)
        return out

    @torch.no_grad()
    def _logprobs(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return completion_logprobs(model, batch, self.temperature)

    def _reference_logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.cfg.kl_coef == 0:
            return None
        if self.cfg.lora is not None:
            with lora.adapters_off(self.engine):
                return self._logprobs(self.engine, batch)
        return self._logprobs(self.ref, batch)

    def step(self, samples: Sequence[Sample]) -> dict[str, float]:
        """One rollout batch -> ``updates_per_batch`` optimizer steps. Returns mean loss, KL,
        gradient norm and the learning rate the step used."""
        total = dist.all_reduce_sum({"n": len(samples)})["n"]
        if total == 0:
            return {"loss": 0.0, "kl": 0.0, "grad_norm": 0.0, "lr": self.lr, "samples": 0}
        lr = self.lr  # the rate this step trains with (engine.step advances the schedule)
        chunks, n_real = self._micro_batches(list(samples))
        batches = [self._device(collate(self.processor, c, self.pad_id, share_prefix=self.share_prefix)) for c in chunks]
        ref_logps = [self._reference_logprobs(b) for b in batches]
        old_logps = None
        if self.cfg.updates_per_batch > 1:
            old_logps = [self._logprobs(self.engine, b) for b in batches]
        self.engine.train()
        stats = {"loss": 0.0, "kl": 0.0}
        for update in range(self.cfg.updates_per_batch):
            loss_sum = kl_sum = 0.0
            for i, (chunk, batch) in enumerate(zip(chunks, batches)):
                weight = 1.0 if i < n_real else 0.0
                self.engine.set_gradient_accumulation_boundary(i == len(chunks) - 1)
                logp = completion_logprobs(self.engine, batch, self.temperature)
                advantages = torch.tensor([s.advantage for s in chunk], device=logp.device)
                seq_loss, seq_stats = policy_loss(
                    logp,
                    advantages,
                    batch["completion_mask"],
                    ref_logp=ref_logps[i],
                    old_logp=old_logps[i] if old_logps else None,
                    kl_coef=self.cfg.kl_coef,
                    clip_eps=self.cfg.clip_eps,
                )
                # Sum over this rank's sequences / all sequences of all ranks: with DeepSpeed
                # averaging gradients over ranks, the step optimises the global sequence mean.
                loss = seq_loss.sum() * weight * dist.world_size() / total
                self.engine.backward(loss)
                loss_sum += float(seq_loss.detach().sum()) * weight
                kl_sum += float(seq_stats["kl"].sum()) * weight
            self.engine.step()
            stats = {"loss": loss_sum, "kl": kl_sum}
        reduced = dist.all_reduce_sum(stats)
        grad_norm = self.engine.get_global_grad_norm()
        return {
            "loss": reduced["loss"] / total,
            "kl": reduced["kl"] / total,
            "grad_norm": float(grad_norm) if grad_norm is not None else 0.0,
            "lr": lr,
            "samples": int(total),
        }

    def save(self, path: Path) -> None:
        """DeepSpeed state (weights, optimizer, LR schedule) under ``path/deepspeed`` from every
        rank, and the policy as a Hugging Face model under ``path/model`` from rank 0."""
        self.engine.save_checkpoint(str(path / "deepspeed"), tag="state", save_latest=False)
        model = self.engine.module
        if self.cfg.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
                if dist.rank() == 0:
                    model.save_pretrained(path / "model", state_dict={k: v.clone() for k, v in model.state_dict().items()})
        elif dist.rank() == 0:
            model.save_pretrained(path / "model")

    def load(self, path: Path) -> None:
        """Restore what ``save`` wrote: weights, optimizer and LR schedule."""
        load_path, _ = self.engine.load_checkpoint(
            str(path / "deepspeed"), tag="state", load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if load_path is None:
            raise checkpoint.DamagedCheckpoint(f"DeepSpeed found no state under {path.name}/deepspeed")
        # The optimizer comes back with the rate its last step left; this run's schedule (which
        # an extended run stretches to its new total) decides the rate of the next step.
        schedule = self.lr_scheduler
        for group, base, fn in zip(self.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
            group["lr"] = base * fn(schedule.last_epoch)

    def checkpoint_bytes(self) -> int:
        """A generous estimate of one checkpoint's size: fp32 weights, Adam's two moments,
        and the Hugging Face copy."""
        return int(4 * 4 * sum(getattr(p, "ds_numel", p.numel()) for p in self.engine.module.parameters()))

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
