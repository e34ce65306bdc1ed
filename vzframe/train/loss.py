"""The policy loss of docs/method.md: advantage-weighted log-likelihood of completion tokens with a
k3 KL penalty to a frozen reference, token-mean per sequence, then mean over sequences.
With ``old_logp`` from an earlier pass (a batch reused for several updates) the
advantage term becomes PPO's clipped surrogate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vzframe.rollout import encode, pad_encodings
from vzframe.types import Sample


def collate(processor: Any, samples: Sequence[Sample], pad_id: int) -> dict[str, torch.Tensor]:
    """Prompts left-padded (as in rollout) followed by completions right-padded, so every
    completion starts at the same column. ``completion_mask`` marks the real tokens. Prompts
    that rollout already encoded (``Sample.prompt``) are padded, not encoded again."""
    if all(s.prompt is not None for s in samples):
        inputs = pad_encodings([s.prompt for s in samples], pad_id)
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
    return batch


def completion_logprobs(model: Any, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of each completion token under ``model``: shape (B, C)."""
    completion = batch["completion_ids"]
    width = completion.shape[1]
    model_inputs = {k: v for k, v in batch.items() if k not in ("completion_ids", "completion_mask")}
    logits = model(**model_inputs, logits_to_keep=width + 1, use_cache=False).logits[:, :-1, :]
    logits = logits.float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    token_logits = torch.gather(logits, -1, completion.unsqueeze(-1)).squeeze(-1)
    return token_logits - torch.logsumexp(logits, dim=-1)


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
