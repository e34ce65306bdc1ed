"""Rollout engines turn a batch of observations into completions in one call.

An engine has ``generate(observations) -> list[Generation]``, ``sync_weights(model)``
(called after every optimizer step) and ``sleep``/``wake_up`` around training. ``encode`` is shared with the trainer so both see
exactly the same prompt tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vzframe.types import Observation


@dataclass(frozen=True)
class Generation:
    """One completion: its text (special tokens removed) and the token ids generated,
    up to and including the end-of-turn token when the model produced one."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int


class RolloutEngine(Protocol):
    def generate(self, observations: Sequence[Observation]) -> list[Generation]: ...

    def sync_weights(self, model: Any) -> None:
        """Take the trainer's new weights (after every optimizer step)."""

    def sleep(self) -> None:
        """Release accelerator memory while the trainer runs (a no-op where nothing is held)."""

    def wake_up(self) -> None: ...


def encode(processor: Any, observations: Sequence[Observation]) -> dict[str, Any]:
    """Chat template + images -> left-padded model inputs (``input_ids``, ``attention_mask``,
    ``pixel_values``, ``image_grid_thw``) for a batch of observations."""
    texts = [
        processor.apply_chat_template(list(obs.messages), add_generation_prompt=True, tokenize=False)
        for obs in observations
    ]
    images = [item.image for obs in observations for item in obs.images]
    processor.tokenizer.padding_side = "left"
    return processor(text=texts, images=images or None, padding=True, return_tensors="pt")


def make_engine(name: str, model: Any, processor: Any, config: Any, *, seed: int, model_path: str) -> RolloutEngine:
    """The engine named by ``rollout.engine``; vLLM is imported only when chosen."""
    if name == "hf":
        from vzframe.rollout.hf import HFEngine

        return HFEngine(model, processor, config)
    if name == "vllm":
        try:
            from vzframe.rollout.vllm import VLLMEngine
        except ImportError as exc:
            raise RuntimeError(
                f"rollout.engine=vllm needs vLLM ({exc}). Install it with `pip install -e \".[vllm]\"` "
                "on a GPU machine, or use rollout.engine=hf."
            ) from exc
        return VLLMEngine(model, processor, config, seed=seed, model_path=model_path)
    raise ValueError(f"Unknown rollout engine {name!r}; choose hf or vllm.")
