"""LoRA (``train.lora``): train low-rank adapters with PEFT instead of every weight.

With ``train.lora`` set the trainer wraps the policy in a ``peft.PeftModel`` whose adapters sit
on the language model's projections (``LoraConfig.target_modules``; the vision tower stays
frozen unless ``vision=true``). Only the adapters train, so DeepSpeed keeps optimizer state for
them alone, and the KL reference is the same model with its adapters switched off
(``reference_logprobs``), as TRL does: no second copy of the weights.

Checkpoints hold the adapters (``model/adapter_model.safetensors`` and ``adapter_config.json``,
plus the processor); ``load_policy`` reads a checkpoint's ``model/`` either way, merging
adapters into their base, so ``vzframe eval``, ``league``, ``probe`` and ``export`` take LoRA runs
as they take full ones. The vLLM engine receives merged weights after each step
(``merged_parameters``): the in-memory weight reload a full fine-tune already uses, with no
adapter files written per step and no LoRA kernels in vLLM's forward (bench/RESULTS.md "LoRA").

``peft`` is imported only here, only when LoRA is on (``pip install -e ".[lora]"``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vzframe import dist
from vzframe.config import ConfigError

ADAPTER_CONFIG = "adapter_config.json"
INSTALL_HINT = 'train.lora needs PEFT: pip install -e ".[lora]" (or pip install peft).'


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return peft


def target_pattern(cfg: Any) -> str:
    """The module-name regex the adapters go on: any module named one of ``target_modules``,
    outside the vision tower (``visual``) unless ``cfg.vision``.

    >>> from vzframe.config import LoraConfig
    >>> pattern = target_pattern(LoraConfig(target_modules=["q_proj", "down_proj"]))
    >>> [bool(re.fullmatch(pattern, n)) for n in ("model.language_model.layers.0.self_attn.q_proj",
    ...                                           "model.visual.blocks.0.mlp.down_proj", "lm_head")]
    [True, False, False]
    """
    names = "|".join(re.escape(n) for n in cfg.target_modules)
    outside = "" if cfg.vision else r"(?!.*\bvisual\b)"
    return rf"^{outside}(.*\.)?({names})$"


def peft_config(cfg: Any) -> Any:
    peft = _peft()
    return peft.LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=target_pattern(cfg), bias="none",
    )  # fmt: skip


def check(model_path: str, cfg: Any) -> None:
    """Before anything heavy: PEFT is installed, every target module exists in the model (built
    on the meta device: no weights are read), and PEFT can wrap it. A ``ConfigError`` says what
    to change."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    peft = _peft()
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_path))
    names = [n for n, _ in model.named_modules()]
    pattern = re.compile(target_pattern(cfg))
    missing = [t for t in cfg.target_modules if not any(pattern.fullmatch(n) and n.rsplit(".", 1)[-1] == t for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        where = "" if cfg.vision else " outside the vision tower"
        raise ConfigError(
            f"train.lora.target_modules: {missing} name no module of {model_path}{where}. Its linear layers are "
            f"named {leaves}; the default targets the Qwen2-VL family's language layers."
        )
    try:
        peft.get_peft_model(model, peft_config(cfg))
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ConfigError(f"train.lora: PEFT cannot wrap {type(model).__name__} ({exc}). Train without train.lora.") from None


def wrap(model: Any, cfg: Any, *, seed: int) -> Any:
    """``model`` with LoRA adapters (``cfg``); only the adapters require gradients. Their
    random initial values are drawn from ``seed`` (the run's), not from the process's generator,
    so two runs of one config start alike."""
    import torch

    peft = _peft()
    checkpointing = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") else "is_gradient_checkpointing"
    if getattr(model, checkpointing, False):
        model.enable_input_require_grads()  # recomputed blocks need an input that requires grad
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return peft.get_peft_model(model, peft_config(cfg))


def is_lora(model: Any) -> bool:
    """Whether ``model`` (or the module a DeepSpeed engine wraps) is a PEFT model."""
    return callable(getattr(getattr(model, "module", model), "disable_adapter", None))


@contextlib.contextmanager
def adapters_off(model: Any) -> Iterator[None]:
    """The base model inside a PEFT ``model``: the KL reference, without a second copy."""
    with getattr(model, "module", model).disable_adapter():
        yield


@contextlib.contextmanager
def merged(model: Any) -> Iterator[None]:
    """For the duration (the transformers engine's ``generate``), every adapter is folded into
    its layer's weight and switched off: each projection is one product with ``W + s·BA``
    instead of three with ``W``, ``A`` and ``B`` (1.3x the time of a full fine-tune's rollout
    at the toy model's width, without this). The base weights are swapped back afterwards, not
    un-added, so training and the KL reference see them bit for bit. A no-op for a model
    without adapters, and under ZeRO-3, whose shards hold no whole weight to add to."""
    import torch

    inner = getattr(model, "module", model)
    if not is_lora(inner) or dist.zero3_sharded(inner):
        yield
        return
    peft = _peft()
    saved: list[tuple[Any, Any]] = []
    with torch.no_grad(), adapters_off(inner):
        try:
            for layer in inner.modules():
                if isinstance(layer, peft.tuners.lora.LoraLayer):
                    weight = layer.get_base_layer().weight
                    delta = sum(layer.get_delta_weight(a) for a in layer.active_adapters if a in layer.lora_A)
                    saved.append((weight, weight.data))
                    weight.data = weight.data + delta.to(weight.dtype)
            yield
        finally:
            for weight, data in saved:
                weight.data = data


def is_adapter_dir(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def base_of(folder: str | Path) -> str:
    """The base model directory an adapter directory was trained on (``adapter_config.json``)."""
    try:
        config = json.loads((Path(folder) / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder}/{ADAPTER_CONFIG} is unreadable ({exc}).") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not (Path(base) / "config.json").is_file():
        raise ConfigError(
            f"{folder} holds LoRA adapters for base model {base!r}, which is not a model directory here. "
            "Put the base model back at that path, or export the run on the machine that trained it."
        )
    return base


def load_merged(folder: str | Path, *, bf16: bool) -> Any:
    """A plain Hugging Face model: the base of the adapters in ``folder`` with them merged in."""
    import torch
    from transformers import AutoModelForImageTextToText

    peft = _peft()
    dtype = torch.bfloat16 if bf16 else torch.float32
    base = AutoModelForImageTextToText.from_pretrained(base_of(folder), dtype=dtype)
    return peft.PeftModel.from_pretrained(base, str(folder)).merge_and_unload()


def merged_parameters(model: Any, gather: Any = contextlib.nullcontext) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of every weight of the merged model, named as in the base model: a LoRA
    layer's weight plus its adapter's update, everything else as it is. ``gather(params)`` is
    a context that makes ``params`` whole (ZeRO-3's ``GatheredParameters``)."""
    peft = _peft()
    inner = getattr(model, "module", model).base_model.model
    lora_layers = {name: m for name, m in inner.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)}
    for name, param in inner.named_parameters():
        if ".lora_" in name:
            continue
        owner = name.rsplit(".base_layer.", 1)[0] if ".base_layer." in name else None
        if owner in lora_layers and name.endswith(".base_layer.weight"):
            layer = lora_layers[owner]
            with gather([param, *layer.parameters()]):
                yield f"{owner}.weight", (param + layer.get_delta_weight(layer.active_adapters[0])).detach().clone()
        else:
            with gather([param]):
                yield name.replace(".base_layer.", "."), param.detach().clone()
