"""Rollout engines turn a batch of observations into completions in one call.

An engine has ``generate(observations) -> list[Generation]``, ``sync_weights(model)``
(called after every optimizer step) and ``sleep``/``wake_up`` around training. Every prompt
is rendered by ``render_prompt`` (through ``encode``, which the transformers engine and the
trainer share), so every engine and the trainer see exactly the same prompt tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vzframe.parsing import neutralize_special_tokens
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
    texts = [render_prompt(processor, obs.messages) for obs in observations]
    images = [item.image for obs in observations for item in obs.images]
    processor.tokenizer.padding_side = "left"
    return processor(text=texts, images=images or None, padding=True, return_tensors="pt")


def special_tokens(tokenizer: Any) -> frozenset[str]:
    """Every string that ``tokenizer`` reads as one special or added token, except
    whitespace-only ones (removing those would change the games' own text)."""
    tokens = {*tokenizer.all_special_tokens, *tokenizer.get_added_vocab()}
    return frozenset(t for t in tokens if t.strip())


def render_prompt(processor: Any, messages: Sequence[dict[str, Any]]) -> str:
    """The chat template applied to ``messages`` (with the generation prompt), after every
    special token of the tokenizer is removed from every text in them: whatever a model
    wrote into a game's messages, only the template's own tokens structure the chat.

    The games' own text contains no such token, so removing them changes nothing else. Every
    prompt, generated from or trained on, is rendered here."""
    tokens = special_tokens(processor.tokenizer)

    def clean(content: Any) -> Any:
        if isinstance(content, str):
            return neutralize_special_tokens(content, tokens)
        return [
            {**part, "text": neutralize_special_tokens(part["text"], tokens)} if isinstance(part.get("text"), str) else part
            for part in content
        ]

    safe = [{**message, "content": clean(message["content"])} for message in messages]
    return processor.apply_chat_template(safe, add_generation_prompt=True, tokenize=False)


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
