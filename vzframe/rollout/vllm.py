"""Rollout on a colocated vLLM engine, with the trainer's weights loaded into it in memory
after every optimizer step.

Each rank runs its own ``vllm.LLM`` (tensor parallel inside a node when the model needs it)
on the same batched observations as the transformers engine. Weight sync streams the
policy's parameters, gathered one at a time under ZeRO-3, into vLLM's in-place
``reload_weights`` (which maps Hugging Face names to vLLM's fused layers); nothing touches
disk. The engine core runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so the
parameter iterator is handed over without serialisation.

vLLM is imported only when ``rollout.engine=vllm`` is chosen: ``pip install -e ".[vllm]"``
(GPU) or vLLM's CPU build. Its engine starts worker processes with spawn, so a script that
uses it needs an ``if __name__ == "__main__":`` guard (the ``vzframe`` command has one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from vzframe.rollout import Generation, render_prompt
from vzframe.rollout.hf import vision_token_ids
from vzframe.types import Observation


class VLLMEngine:
    def __init__(self, model: Any, processor: Any, config: Any, *, seed: int, model_path: str) -> None:
        # In-process engine core: weights can then be handed to the model object directly.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        from vzframe import dist

        if config.vllm_tensor_parallel_size > 1 and dist.world_size() > 1:
            raise ValueError(
                "rollout.vllm_tensor_parallel_size > 1 is not supported yet when several training ranks each "
                "run their own engine (ranks play different games). Use a model that fits one GPU per engine "
                "(Qwen2.5-VL-7B in bf16 does), or a single process with tensor parallelism."
            )
        self.processor = processor
        self.config = config
        max_images = max(1, config.vllm_max_images)
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
        )
        self.bias = {i: -100.0 for i in vision_token_ids(model.config)}
        self.sync_weights(model)

    def _params(self, observations: Sequence[Observation]) -> list[Any]:
        from vllm import SamplingParams

        greedy = self.config.temperature == 0
        # One seed per request, drawn from torch's generator: the runtime seeds it each step,
        # so rollouts are reproducible exactly as with the transformers engine.
        seeds = torch.randint(0, 2**31 - 1, (len(observations),)).tolist()
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

    def generate(self, observations: Sequence[Observation]) -> list[Generation]:
        if not observations:
            return []
        prompts = []
        for obs in observations:
            prompt: dict[str, Any] = {"prompt": render_prompt(self.processor, obs.messages)}
            if obs.images:
                prompt["multi_modal_data"] = {"image": [item.image for item in obs.images]}
            prompts.append(prompt)
        outputs = self.llm.generate(prompts, self._params(observations), use_tqdm=False)
        return [
            Generation(
                text=out.outputs[0].text,
                token_ids=tuple(out.outputs[0].token_ids),
                prompt_tokens=len(out.prompt_token_ids or ()),
            )
            for out in outputs
        ]

    def sync_weights(self, model: Any) -> None:
        """Load the policy's current weights into the running vLLM model, in memory."""
        # vLLM's in-place reload re-runs its post-load processing (e.g. the CPU backend's
        # repacked linear layers), which a bare `model.load_weights` would skip.
        self.llm.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": _full_parameters(model), "is_checkpoint_format": True}
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


def _full_parameters(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) for every parameter and buffer; under ZeRO-3 each parameter is
    gathered on its own, so peak memory grows by one parameter, not one model."""
    sharded = any(hasattr(p, "ds_id") for p in model.parameters())
    for name, param in model.named_parameters():
        if sharded:
            import deepspeed

            with deepspeed.zero.GatheredParameters([param]):
                yield name, param.detach().clone()
        else:
            yield name, param.detach()
