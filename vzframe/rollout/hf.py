"""Rollout with Hugging Face ``generate`` on the training model itself: the observations of
every live game of a tick go through one batched, left-padded call, so weights never need
copying (``sync_weights`` is a no-op).

Sampling is seeded per request, as vLLM's is: every row of a batch draws its own noise from its
own generator (``SeededSampling``), so a completion depends on its observation and its seed,
not on which other observations share the batch or which engine plays the other seats."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from vzframe import dist
from vzframe.rollout import Generation, default_seeds, encode, split_encoding
from vzframe.train import lora
from vzframe.types import Observation


class HFEngine:
    per_request_seeds = True
    """``generate`` takes one sampling seed per observation (``play`` gives ``request_seed``'s)."""

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
    def generate(self, observations: Sequence[Observation], seeds: Sequence[int] | None = None) -> list[Generation]:
        """One batched call; ``seeds`` (one per observation) default to draws of torch's
        generator, which the runtime seeds every step."""
        if not observations:
            return []
        if seeds is None:
            seeds = default_seeds(len(observations))
        encoded = encode(self.processor, observations)
        prompts = split_encoding(encoded, observations)  # kept on the CPU for the trainer
        inputs = encoded.to(self.model.device)
        sampling = self.config.temperature > 0
        was_training = self.model.training
        self.model.eval()
        with gathered(self.model), lora.merged(self.model):
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,  # sampling, when on, is SeededSampling's noise and the argmax
                logits_processor=[SeededSampling(seeds, self.config.temperature, self.config.top_p)] if sampling else None,
                temperature=None, top_p=None, top_k=None,
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


class SeededSampling:
    """A logits processor that samples each row from its own seeded generator by the
    Gumbel-max trick: with ``do_sample=False`` the argmax of ``logits / temperature`` (top-p
    filtered) plus Gumbel noise is a draw from the softmax, exactly as ``do_sample=True``
    would draw it. Row ``i``'s noise at every step comes from a generator seeded ``seeds[i]``,
    so its completion is the same in any batch."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

        self.seeds = list(seeds)
        self.generators: list[torch.Generator] = []
        self.warpers = [TemperatureLogitsWarper(temperature)] + [TopPLogitsWarper(top_p)] * (top_p < 1.0)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if not self.generators:  # on the logits' device, at the first step
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        scores = scores.float()
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        rows, vocab = scores.shape
        uniform = torch.stack([torch.rand(vocab, generator=g, device=scores.device) for g in self.generators])
        tiny = torch.finfo(uniform.dtype).tiny
        return scores - torch.log(-torch.log(uniform.clamp(tiny, 1.0 - 1e-7)))


def vision_token_ids(config: Any) -> list[int]:
    """Placeholder tokens a completion must never contain: generated, they would be taken
    for image slots when the completion is fed back for training."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return [i for i in (getattr(config, n, None) for n in names) if isinstance(i, int)]


def gathered(model: Any) -> contextlib.AbstractContextManager[Any]:
    """Under ZeRO-3 each rank holds a shard: gather full weights for generation."""
    if dist.zero3_sharded(model):
        import deepspeed

        gather: contextlib.AbstractContextManager[Any] = deepspeed.zero.GatheredParameters(list(model.parameters()))
        return gather
    return contextlib.nullcontext()
