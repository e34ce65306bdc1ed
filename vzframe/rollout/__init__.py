"""Rollout engines turn a batch of observations into completions in one call.

What ``play`` and the probes need is a ``Sampler``: ``generate(observations) ->
list[Generation]``. A run's engine (``RolloutEngine``) also has ``sync_weights(model)`` (called
after every optimizer step) and ``sleep``/``wake_up`` around training; one that takes a
sampling seed per request is a ``SeededEngine``, one with continuous batching also an
``AsyncEngine``. Every prompt is rendered by ``render_prompt`` (through ``encode``, which the
transformers engine and the trainer share), so every engine and the trainer see exactly the
same prompt tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from vzframe.parsing import neutralize_special_tokens
from vzframe.types import Observation

if TYPE_CHECKING:
    from transformers import BatchFeature


@dataclass(frozen=True)
class Encoded:
    """One observation's model inputs as ``encode`` made them, without padding: what the
    trainer reuses instead of running the processor again. Tensors stay on the CPU."""

    input_ids: Any  # (T,) prompt tokens
    mm_token_type_ids: Any | None  # (T,) where the processor gives them (Qwen2.5-VL's M-RoPE)
    pixel_values: Any | None  # (patches, dim) of this observation's pictures
    image_grid_thw: Any | None  # (pictures, 3)


@dataclass(frozen=True)
class Generation:
    """One completion: its text (special tokens removed) and the token ids generated,
    up to and including the end-of-turn token when the model produced one. ``prompt`` is the
    encoded observation when the engine encoded it with ``encode`` (the transformers engine)."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    prompt: Encoded | None = None


@runtime_checkable
class Sampler(Protocol):
    """What ``play`` and the probes need of an engine: completions for a batch of
    observations, in their order (``RoleRouter`` routes them to several engines)."""

    def generate(self, observations: Sequence[Observation]) -> list[Generation]: ...


@runtime_checkable
class RolloutEngine(Sampler, Protocol):
    """A run's engine (``make_engine``): a ``Sampler`` that follows the trainer's weights. One
    whose ``generate`` takes a seed per request is a ``SeededEngine`` (``seeds_per_request``);
    one with continuous batching is also an ``AsyncEngine``."""

    def sync_weights(self, model: Any) -> None:
        """Take the trainer's new weights (after every optimizer step)."""

    def sleep(self) -> None:
        """Release accelerator memory while the trainer runs (a no-op where nothing is held)."""

    def wake_up(self) -> None: ...


class SeededEngine(Sampler, Protocol):
    """An engine that samples every request from its own seed (``HFEngine``, ``VLLMEngine``):
    ``per_request_seeds = True`` says so, and ``generate`` takes ``seeds=`` (one per
    observation), so a completion does not depend on what else is in the batch. ``play`` and
    the probes give ``request_seed``'s seeds to such an engine; test with ``seeds_per_request``."""

    per_request_seeds: bool

    def generate(self, observations: Sequence[Observation], seeds: Sequence[int] | None = None) -> list[Generation]: ...


def seeds_per_request(engine: object) -> TypeGuard[SeededEngine]:
    """Whether ``engine`` is a ``SeededEngine``: its ``per_request_seeds`` (absent means False).

    >>> class Plain: ...
    >>> class Seeded:
    ...     per_request_seeds = True
    >>> seeds_per_request(Plain()), seeds_per_request(Seeded())
    (False, True)
    """
    return bool(getattr(engine, "per_request_seeds", False))


@runtime_checkable
class AsyncEngine(Protocol):
    """An engine with continuous batching (``VLLMEngine``): what ``play_async`` uses, when
    ``rollout.async_play`` is set and the run's engine is one (``isinstance(engine,
    AsyncEngine)``). Requests are queued one at a time and come back as they complete."""

    def add_request(self, key: Any, observation: Observation, *, seed: int) -> None:
        """Queue ``observation``, sampled from ``seed``; ``finished`` hands back its completion
        under ``key`` (the caller's, returned as given)."""

    def finished(self) -> list[tuple[Any, Generation]]:
        """Run the engine until some requests complete: their ``(key, Generation)``; empty once
        none is left."""

    def cancel(self) -> None:
        """Drop every queued request that ``finished`` has not handed back."""


def encode(processor: Any, observations: Sequence[Observation]) -> BatchFeature:
    """Chat template + images -> left-padded model inputs (``input_ids``, ``attention_mask``,
    ``pixel_values``, ``image_grid_thw``) for a batch of observations, as the processor's
    ``BatchFeature`` (a dict with ``.to(device)``)."""
    texts = [render_prompt(processor, obs.messages) for obs in observations]
    images = [item.image for obs in observations for item in obs.images]
    processor.tokenizer.padding_side = "left"
    return processor(text=texts, images=images or None, padding=True, return_tensors="pt")


def split_encoding(inputs: Any, observations: Sequence[Observation]) -> list[Encoded]:
    """``encode``'s batch cut back into one ``Encoded`` per observation: the real (unpadded)
    tokens of each row, and the picture patches and grid rows of its pictures."""
    out, patch, picture = [], 0, 0
    grid = inputs.get("image_grid_thw")
    for row, obs in enumerate(observations):
        real = inputs["attention_mask"][row].bool()
        n = len(obs.images)
        pictures = grid[picture : picture + n] if grid is not None else None
        patches = int(pictures.prod(dim=1).sum()) if pictures is not None else 0
        pixels = inputs["pixel_values"][patch : patch + patches] if pictures is not None else None
        types = inputs.get("mm_token_type_ids")
        out.append(Encoded(inputs["input_ids"][row][real], types[row][real] if types is not None else None, pixels, pictures))
        patch, picture = patch + patches, picture + n
    return out


def default_seeds(n: int) -> list[int]:
    """Sampling seeds for ``n`` requests that came without any: draws of torch's generator,
    which the runtime seeds every step (the engines' ``generate(observations)`` default)."""
    import torch

    return torch.randint(0, 2**31 - 1, (n,)).tolist()


def pad_encodings(encoded: Sequence[Encoded], pad_id: int, *, after: int = 0) -> dict[str, Any]:
    """The left-padded batch ``encode`` would make of these observations, from their
    ``Encoded`` parts, without the processor. With ``after`` > 0 the pads go after each
    row's first ``after`` tokens instead (a prefix every row shares stays in the same
    columns: ``vzframe.train.loss.collate``)."""
    import torch

    width = max(len(e.input_ids) for e in encoded)

    def place(row: torch.Tensor, values: torch.Tensor) -> None:
        row[:after], row[width - len(values) + after :] = values[:after], values[after:]

    ids = torch.full((len(encoded), width), pad_id, dtype=encoded[0].input_ids.dtype)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        place(ids[row], e.input_ids)
        place(mask[row], torch.ones_like(e.input_ids, dtype=torch.long))
    batch = {"input_ids": ids, "attention_mask": mask}
    if encoded[0].mm_token_type_ids is not None:
        types = torch.zeros_like(ids, dtype=encoded[0].mm_token_type_ids.dtype)
        for row, e in enumerate(encoded):
            if e.mm_token_type_ids is not None:  # every row has them: one processor encoded them all
                place(types[row], e.mm_token_type_ids)
        batch["mm_token_type_ids"] = types
    pixels = [e.pixel_values for e in encoded if e.pixel_values is not None]
    if pixels:  # an Encoded has both pixel_values and image_grid_thw, or neither (split_encoding)
        batch["pixel_values"] = torch.cat(pixels)
        batch["image_grid_thw"] = torch.cat([e.image_grid_thw for e in encoded if e.image_grid_thw is not None])
    return batch


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
    prompt: str = processor.apply_chat_template(safe, add_generation_prompt=True, tokenize=False)
    return prompt


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
