"""Rollout with Hugging Face ``generate`` on the training model itself: the observations of
every live game of a tick go through one batched, left-padded call, so weights never need
copying (``sync_weights`` is a no-op)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from vzframe.rollout import Generation, encode, split_encoding
from vzframe.types import Observation


class HFEngine:
    def __init__(self, model: Any, processor: Any, config: Any) -> None:
        self.model = model
        self.processor = processor
        self.config = config
        tokenizer = processor.tokenizer
        self.eos_id = model.generation_config.eos_token_id or tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id
        self.suppress = vision_token_ids(model.config)

    def sync_weights(self, model: Any) -> None:
        self.model = model  # the trainer's own module: nothing to copy

    def sleep(self) -> None:
        pass  # shares the trainer's memory

    def wake_up(self) -> None:
        pass

    @torch.no_grad()
    def generate(self, observations: Sequence[Observation]) -> list[Generation]:
        if not observations:
            return []
        encoded = encode(self.processor, observations)
        prompts = split_encoding(encoded, observations)  # kept on the CPU for the trainer
        inputs = encoded.to(self.model.device)
        sampling = self.config.temperature > 0
        was_training = self.model.training
        self.model.eval()
        with _gathered(self.model):
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=sampling,
                temperature=self.config.temperature if sampling else None,
                top_p=self.config.top_p if sampling else None,
                top_k=0 if sampling else None,
                eos_token_id=self.eos_id,
                pad_token_id=self.pad_id,
                suppress_tokens=self.suppress or None,
            )
        self.model.train(was_training)
        prompt_len = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, n_prompt, prompt in zip(out[:, prompt_len:].tolist(), prompt_tokens, prompts):
            ids = row[: row.index(self.eos_id) + 1] if self.eos_id in row else row
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
            results.append(Generation(text=text, token_ids=tuple(ids), prompt_tokens=int(n_prompt), prompt=prompt))
        return results


def vision_token_ids(config: Any) -> list[int]:
    """Placeholder tokens a completion must never contain: generated, they would be taken
    for image slots when the completion is fed back for training."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return [i for i in (getattr(config, n, None) for n in names) if isinstance(i, int)]


def _gathered(model: Any):
    """Under ZeRO-3 each rank holds a shard: gather full weights for generation."""
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(model.parameters()))
    return contextlib.nullcontext()
