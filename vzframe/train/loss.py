"""The policy loss of docs/method.md: advantage-weighted log-likelihood of completion tokens with a
k3 KL penalty to a frozen reference, token-mean per sequence, then mean over sequences.
With ``old_logp`` from an earlier pass (a batch reused for several updates) the
advantage term becomes PPO's clipped surrogate.

Shared prefixes (``train.share_prefix``): the prompts of one micro-batch usually begin with
the same tokens (a game's rules, a role brief). ``collate(..., share_prefix=True)`` finds the
longest such prefix before any picture and keeps it in the same columns of every row (the
pads go after it), and ``completion_logprobs`` then runs it once, for one row, and lets every
row attend to its keys and values: the same log-probabilities, up to float rounding, for
less compute, in the reference forward and in the policy's forward and backward alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vzframe.rollout import encode, pad_encodings
from vzframe.types import Sample

MIN_SHARED_PREFIX = 32
"""Tokens below which a shared prefix is not run apart: a second forward call costs more."""


def shared_prefix_length(prompts: Sequence[Any]) -> int:
    """How many leading tokens every prompt (``Encoded``) has in common, stopping before the
    first picture token, and leaving each prompt at least one token of its own (whose logits
    score the first completion token). Linear in the prompts' length."""
    first = prompts[0].input_ids
    limit = min(len(p.input_ids) for p in prompts) - 1
    if prompts[0].mm_token_type_ids is not None:
        picture = torch.nonzero(prompts[0].mm_token_type_ids[:limit] != 0)
        limit = int(picture[0]) if len(picture) else limit
    for prompt in prompts[1:]:
        differ = torch.nonzero(prompt.input_ids[:limit] != first[:limit])
        limit = int(differ[0]) if len(differ) else limit
    return max(limit, 0)


def collate(processor: Any, samples: Sequence[Sample], pad_id: int, *, share_prefix: bool = False) -> dict[str, torch.Tensor]:
    """Prompts left-padded (as in rollout) followed by completions right-padded, so every
    completion starts at the same column. ``completion_mask`` marks the real tokens. Prompts
    that rollout already encoded (``Sample.prompt``) are padded, not encoded again.

    With ``share_prefix``, prompts rollout encoded whose common prefix (``shared_prefix_length``)
    is at least ``MIN_SHARED_PREFIX`` tokens are padded after it instead, and ``shared_prefix``
    holds its length for ``completion_logprobs``."""
    shared = 0
    if all(s.prompt is not None for s in samples):
        prompts = [s.prompt for s in samples]
        if share_prefix and len(prompts) > 1 and (n := shared_prefix_length(prompts)) >= MIN_SHARED_PREFIX:
            shared = n
        inputs = pad_encodings(prompts, pad_id, after=shared)
    else:
        inputs = encode(processor, [s.observation for s in samples])
    width = max(len(s.completion_ids) for s in samples)
    completion = torch.full((len(samples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for i, sample in enumerate(samples):
        completion[i, : len(sample.completion_ids)] = torch.tensor(sample.completion_ids, dtype=torch.long)
        mask[i, : len(sample.completion_ids)] = 1
    batch = dict(inputs)
    batch["input_ids"] = torch.cat([inputs["input_ids"], completion], dim=1)
    batch["attention_mask"] = torch.cat([inputs["attention_mask"], mask], dim=1)
    if "mm_token_type_ids" in inputs:
        # Qwen2.5-VL builds its 3-D (M-RoPE) positions from these; without them it falls back
        # to 1-D positions and scores a different model than the one that generated.
        batch["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completion)], dim=1)
    batch["completion_ids"] = completion
    batch["completion_mask"] = mask
    if shared:
        batch["shared_prefix"] = torch.tensor(shared)
    return batch


def completion_logprobs(model: Any, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of each completion token under ``model``: shape (B, C)."""
    completion = batch["completion_ids"]
    width = completion.shape[1]
    model_inputs = {k: v for k, v in batch.items() if k not in ("completion_ids", "completion_mask", "shared_prefix")}
    if "shared_prefix" in batch:
        logits = logits_after_shared_prefix(model, model_inputs, int(batch["shared_prefix"]), keep=width + 1)
    else:
        logits = model(**model_inputs, logits_to_keep=width + 1, use_cache=False).logits
    logits = logits[:, :-1, :].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    token_logits = torch.gather(logits, -1, completion.unsqueeze(-1)).squeeze(-1)
    return token_logits - torch.logsumexp(logits, dim=-1)


def hf_module(model: Any) -> Any:
    """The Hugging Face model inside ``model``: itself, a DeepSpeed engine's module, or a PEFT
    model's base model (``train.lora``)."""
    inner = getattr(model, "module", model)
    return inner.get_base_model() if callable(getattr(inner, "get_base_model", None)) else inner


def supports_shared_prefix(model: Any) -> bool:
    """Whether ``model`` (a Hugging Face module, or a DeepSpeed engine or PEFT model around
    one) can run a shared prefix apart: a Qwen2-VL-family model, whose multimodal positions
    (``get_rope_index``) ``logits_after_shared_prefix`` computes for the whole rows."""
    inner = getattr(hf_module(model), "model", None)
    return callable(getattr(inner, "get_rope_index", None))


def logits_after_shared_prefix(model: Any, inputs: dict[str, torch.Tensor], shared: int, *, keep: int) -> torch.Tensor:
    """``model(**inputs).logits`` at the last ``keep`` positions, with the first ``shared``
    columns (the same tokens in every row: no pad, no picture) run once, for one row, and
    their keys and values repeated for every row. Positions are those of the whole rows, as
    the full forward computes them, so each row scores as it would alone."""
    hf = hf_module(model)
    ids, mask, types = inputs["input_ids"], inputs["attention_mask"], inputs["mm_token_type_ids"]
    positions, _ = hf.model.get_rope_index(ids, types, image_grid_thw=inputs.get("image_grid_thw"), attention_mask=mask)
    head = model(
        input_ids=ids[:1, :shared], attention_mask=mask[:1, :shared], position_ids=positions[:, :1, :shared],
        use_cache=True, logits_to_keep=1,
    )  # fmt: skip
    cache = head.cache
    cache.batch_repeat_interleave(ids.shape[0])
    rest = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    out = model(
        input_ids=ids[:, shared:], attention_mask=mask, mm_token_type_ids=types[:, shared:],
        position_ids=positions[:, :, shared:], cache=cache, use_cache=True, logits_to_keep=keep, **rest,
    )  # fmt: skip
    logits: torch.Tensor = out.logits
    return logits


def policy_loss(
    logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ref_logp: torch.Tensor | None = None,
    old_logp: torch.Tensor | None = None,
    kl_coef: float = 0.04,
    clip_eps: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sequence losses (B,) and per-sequence stats. ``logp``, masks: (B, C); advantages: (B,).

    With ``old_logp`` None the ratio is ``exp(logp - logp.detach())`` = 1 whose gradient is
    that of ``A * logp``: plain advantage-weighted log-likelihood.
    """
    mask = mask.to(logp.dtype)
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)
    adv = advantages.to(logp.dtype).unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    per_token = -surrogate
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + kl_coef * kl
    tokens = mask.sum(dim=1).clamp(min=1)
    seq_loss = (per_token * mask).sum(dim=1) / tokens
    seq_kl = (kl * mask).sum(dim=1) / tokens
    return seq_loss, {"kl": seq_kl.detach()}
