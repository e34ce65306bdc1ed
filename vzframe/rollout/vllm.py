"""Rollout on a colocated vLLM engine, with the trainer's weights loaded into it in memory
after every optimizer step.

Each rank runs its own ``vllm.LLM`` (tensor parallel inside a node when the model needs it)
on the same batched observations as the transformers engine. Weight sync streams the
policy's parameters, gathered one at a time under ZeRO-3, into vLLM's in-place
``reload_weights`` (which maps Hugging Face names to vLLM's fused layers); nothing touches
disk. The engine core runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so the
parameter iterator is handed over without serialisation.

Besides the tick's batched ``generate``, the engine offers continuous batching for
``play_async`` (``rollout.async_play``): ``add_request`` queues one observation on the same
``vllm.LLM`` and ``finished`` steps its engine until some request completes, so weight sync is
unchanged. Every request has its own sampling seed, so what it samples does not depend on
what else is in the batch. Prefix caching is on (a game's prompts share their opening, and a
player's next prompt extends its last one up to the clues); ``prefix_cache_hit_rate`` is the
share of prompt tokens it served.

vLLM is imported only when ``rollout.engine=vllm`` is chosen: ``pip install -e ".[vllm]"``
(GPU) or vLLM's CPU build. Its engine starts worker processes with spawn, so a script that
uses it needs an ``if __name__ == "__main__":`` guard (the ``vzframe`` command has one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from vzframe import dist
from vzframe.rollout import Generation, default_seeds, render_prompt
from vzframe.rollout.hf import vision_token_ids
from vzframe.types import Observation


class VLLMEngine:
    per_request_seeds = True
    """``generate`` takes one sampling seed per observation (``play`` gives ``request_seed``'s)."""

    def __init__(self, model: Any, processor: Any, config: Any, *, seed: int, model_path: str) -> None:
        # In-process engine core: weights can then be handed to the model object directly.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        if config.vllm_tensor_parallel_size > 1 and dist.world_size() > 1:
            raise ValueError(
                "rollout.vllm_tensor_parallel_size > 1 is not supported yet when several training ranks each "
                "run their own engine (ranks play different games). Use a model that fits one GPU per engine "
                "(Qwen2.5-VL-7B in bf16 does), or a single process with tensor parallelism."
            )
        self.processor = processor
        self.config = config
        max_images = max(1, config.vllm_max_images)
        # vLLM rewinds a seeded request's generator when it drops the sample of a partly
        # prefilled prompt, which a CPU generator cannot do ("CPU Generator does not use
        # offset"). On the CPU every prompt is therefore prefilled whole, in steps large enough
        # for a tick's batch.
        whole = {"enable_chunked_prefill": False, "max_num_batched_tokens": max(16384, config.vllm_max_model_len)}
        self.llm = LLM(
            model=model_path,
            seed=seed,
            dtype="bfloat16" if next(model.parameters()).dtype == torch.bfloat16 else "float32",
            tensor_parallel_size=config.vllm_tensor_parallel_size,
            gpu_memory_utilization=config.vllm_gpu_memory_utilization,
            enable_sleep_mode=config.vllm_sleep and torch.cuda.is_available(),
            max_model_len=config.vllm_max_model_len,
            limit_mm_per_prompt={"image": max_images, "video": 0},
            enforce_eager=not torch.cuda.is_available(),
            enable_prefix_caching=True,
            **({} if torch.cuda.is_available() else whole),
        )
        self._keys: dict[str, Any] = {}  # vLLM request id -> add_request's key
        self.prompt_tokens = self.cached_prompt_tokens = 0  # over every request so far
        self.bias = {i: -100.0 for i in vision_token_ids(model.config)}
        self.sync_weights(model)

    def _params(self, seeds: Sequence[int]) -> list[Any]:
        from vllm import SamplingParams

        greedy = self.config.temperature == 0
        return [
            SamplingParams(
                temperature=self.config.temperature,
                top_p=1.0 if greedy else self.config.top_p,
                max_tokens=self.config.max_new_tokens,
                seed=seed,
                logit_bias=self.bias or None,
                skip_special_tokens=True,
            )
            for seed in seeds
        ]

    def _prompt(self, obs: Observation) -> dict[str, Any]:
        prompt: dict[str, Any] = {"prompt": render_prompt(self.processor, obs.messages)}
        if obs.images:
            prompt["multi_modal_data"] = {"image": [item.image for item in obs.images]}
        return prompt

    def _generation(self, out: Any) -> Generation:
        prompt_tokens = len(out.prompt_token_ids or ())
        self.prompt_tokens += prompt_tokens
        self.cached_prompt_tokens += out.num_cached_tokens or 0
        return Generation(text=out.outputs[0].text, token_ids=tuple(out.outputs[0].token_ids), prompt_tokens=prompt_tokens)

    def generate(self, observations: Sequence[Observation], seeds: Sequence[int] | None = None) -> list[Generation]:
        """One batched call; ``seeds`` (one per observation) default to draws of torch's
        generator, which the runtime seeds every step."""
        if not observations:
            return []
        if seeds is None:
            seeds = default_seeds(len(observations))
        outputs = self.llm.generate([self._prompt(obs) for obs in observations], self._params(seeds), use_tqdm=False)
        return [self._generation(out) for out in outputs]

    def add_request(self, key: Any, observation: Observation, *, seed: int) -> None:
        """Queue ``observation``; ``finished`` hands back its completion under ``key``."""
        (request_id,) = self.llm.enqueue(self._prompt(observation), self._params([seed]), use_tqdm=False)
        # vLLM appends "-" and 8 random characters to the id it returns; outputs carry the id without them.
        self._keys[request_id.rsplit("-", 1)[0]] = key

    def finished(self) -> list[tuple[Any, Generation]]:
        """Run the engine (continuous batching: whatever is queued joins the running batch)
        until some requests complete: their ``(key, Generation)``. Empty once none is left."""
        engine = self.llm.llm_engine
        while engine.has_unfinished_requests():
            if done := [out for out in engine.step() if out.finished]:
                return [(self._keys.pop(out.request_id), self._generation(out)) for out in done]
        return []

    def cancel(self) -> None:
        """Drop every request ``add_request`` queued that ``finished`` has not handed back."""
        self.llm.llm_engine.abort_request(list(self._keys))
        self._keys.clear()

    @property
    def prefix_cache_hit_rate(self) -> float:
        """Share of all prompt tokens so far that vLLM's prefix cache served."""
        return self.cached_prompt_tokens / max(self.prompt_tokens, 1)

    def sync_weights(self, model: Any) -> None:
        """Load the policy's current weights into the running vLLM model, in memory."""
        # vLLM's in-place reload re-runs its post-load processing (e.g. the CPU backend's
        # repacked linear layers), which a bare `model.load_weights` would skip.
        self.llm.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": full_parameters(model), "is_checkpoint_format": True}
        )
        # Cached prefixes and image encodings were computed with the old weights.
        self.llm.reset_prefix_cache()
        self.llm.reset_mm_cache()
        self.llm.llm_engine.reset_encoder_cache()

    def sleep(self) -> None:
        """Free vLLM's GPU memory (weights and KV cache) while DeepSpeed trains."""
        if torch.cuda.is_available() and self.config.vllm_sleep:
            self.llm.sleep(level=1)

    def wake_up(self) -> None:
        if torch.cuda.is_available() and self.config.vllm_sleep:
            self.llm.wake_up()


def full_parameters(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) for every parameter and buffer; under ZeRO-3 each parameter is
    gathered on its own, so peak memory grows by one parameter, not one model. A LoRA policy
    (``train.lora``) gives its merged weights under the base model's names: vLLM runs the
    merged model, reloaded in memory after every step as a full fine-tune's weights are."""
    sharded = dist.zero3_sharded(model)
    from vzframe.train import lora

    if lora.is_lora(model):
        import contextlib

        def gather(params: list[torch.nn.Parameter]) -> Any:
            if not sharded:
                return contextlib.nullcontext()
            import deepspeed

            return deepspeed.zero.GatheredParameters(params)

        yield from lora.merged_parameters(model, gather=gather)
        return
    for name, param in model.named_parameters():
        if sharded:
            import deepspeed

            with deepspeed.zero.GatheredParameters([param]):
                yield name, param.detach().clone()
        else:
            yield name, param.detach()
