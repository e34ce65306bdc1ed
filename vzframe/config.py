"""The run's configuration: defaults < ``--config FILE.yaml`` < ``key=value`` overrides.

Every field carries a one-line docstring, shown by ``vzframe run --help-config`` and in the
error for an unknown key. Game, scheduler and image-source sections are validated against
the plugin's own ``Config`` class once the plugins are loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class RolloutConfig(Strict):
    engine: Literal["hf", "vllm"] = "hf"
    """Generation engine: `hf` (transformers generate) or `vllm` (colocated vLLM)."""
    temperature: float = Field(0.8, ge=0.0)
    """Sampling temperature; 0 means greedy decoding."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling probability mass."""
    max_new_tokens: int = Field(48, ge=1)
    """Longest completion per turn (the reference recipe uses 1024)."""
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    """vLLM: GPUs per engine (tensor parallelism inside a node)."""
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    """vLLM: share of GPU memory for weights and KV cache; the rest is DeepSpeed's."""
    vllm_sleep: bool = False
    """vLLM: release GPU memory while DeepSpeed trains, take it back for rollout (GPU only)."""
    vllm_max_model_len: int = Field(4096, ge=64)
    """vLLM: longest prompt + completion in tokens."""
    vllm_max_images: int = Field(1, ge=1)
    """vLLM: most images in one prompt (the spy game shows one)."""
    async_play: bool = False
    """vLLM only: every game submits its next turn as soon as its last one is parsed (continuous
    batching) instead of waiting for the tick's slowest game; the transformers engine plays by ticks."""

    @model_validator(mode="after")
    def _async_needs_vllm(self) -> RolloutConfig:
        if self.async_play and self.engine != "vllm":
            raise ValueError(
                "rollout.async_play=true needs rollout.engine=vllm (continuous batching); the transformers "
                "engine always plays by ticks. Set rollout.engine=vllm or drop rollout.async_play."
            )
        return self


class LoraConfig(Strict):
    rank: int = Field(16, ge=1)
    """LoRA rank r of every adapter (a positive integer)."""
    alpha: float = Field(32.0, gt=0.0)
    """LoRA alpha: adapters are scaled by alpha / rank."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapters' input while training. Off by default: rollout samples from the
    policy without dropout, so with it the loss's log-probs (and its ratio and KL) would be
    those of a noisier policy than the one that played."""
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], min_length=1
    )
    """Names of the linear layers that get adapters (default: the Qwen2-VL family's language layers)."""
    vision: bool = False
    """Also put adapters on matching layers of the vision tower (frozen otherwise)."""


class TrainConfig(Strict):
    lr: float = Field(1e-5, gt=0.0)
    """Peak learning rate (AdamW)."""
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the steps spent warming up linearly before cosine decay."""
    weight_decay: float = Field(0.0, ge=0.0)
    """AdamW weight decay."""
    kl_coef: float = Field(0.04, ge=0.0)
    """Coefficient of the k3 KL penalty to the frozen reference policy (0 drops the reference)."""
    clip_eps: float = Field(0.2, gt=0.0)
    """PPO clip range, used when a batch is reused for more than one update."""
    updates_per_batch: int = Field(1, ge=1)
    """Optimizer updates on each rollout batch; above 1 the PPO-clip objective applies."""
    micro_batch_size: int = Field(8, ge=1)
    """Sequences per forward/backward pass; a step accumulates gradients over all of them."""
    max_grad_norm: float = Field(1.0, gt=0.0)
    """Gradient clipping norm."""
    zero_stage: Literal[0, 1, 2, 3] = 2
    """DeepSpeed ZeRO stage."""
    bf16: bool = False
    """Train in bfloat16 (use on GPUs; the CPU default is float32)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    share_prefix: bool = True
    """Run the prompt prefix a micro-batch's samples share (rules, role brief) once, not once per
    sample, in the reference and policy passes: the same log-probs up to float rounding, less
    compute (Qwen2-VL-family models, ZeRO 0-2, no gradient checkpointing; else ignored).
    ``false`` runs every row whole."""
    baseline_alpha: float = Field(0.9, ge=0.0, lt=1.0)
    """EMA factor of the role baselines (Role Advantage Estimation)."""
    lora: LoraConfig | None = None
    """Train LoRA adapters (PEFT) instead of every weight, e.g. train.lora.rank=16; the KL reference is the model with
    its adapters off (off by default: empty)."""


class ProbeConfig(Strict):
    names: list[str] = []
    """Probes to score (`vzframe probe --help` lists them; `clevr.*` for a family); empty: every registered one."""
    items: int = Field(50, ge=1)
    """Items per probe (held-out pictures: probe seeds never meet a run's)."""
    score: Literal["generate", "likelihood"] = "generate"
    """generate: the rollout engine answers (greedy or sampled as rollout says); likelihood: rank each item's choices."""
    seed: int = Field(0, ge=0, lt=2**24)
    """Which held-out items."""
    batch_size: int = Field(32, ge=1)
    """Observations per generation call (score=generate; likelihood scores one item per call, its choices together)."""


class RunConfig(Strict):
    plugins: list[str] = []
    """Plugins to load besides the defaults, e.g. [games.spy, schedulers.hysteresis]."""
    model: str | None = None
    """A registered model name (`vzframe model list`) or a local Hugging Face model directory; empty: the game's default, else tiny."""
    output_dir: Path | None = None
    """Where the run writes; default runs/GAME-SCHEDULER-TIME under the current directory."""
    seed: int = Field(0, ge=0, lt=2**63)
    """Seed of every random generator of the run (0 <= seed < 2**63)."""
    steps: int = Field(20, ge=1)
    """Optimizer steps to train."""
    games_per_step: int = Field(4, ge=1)
    """Games each rank plays per step, all at once (their turns are generated in one batch)."""
    images: str | None = None
    """Image source name (see `vzframe plugins`); empty: the game's default, else the model's, else clevr_toy."""
    image_source: dict[str, Any] = {}
    """Config of the image source, validated by the source's own Config."""
    game: dict[str, Any] = {}
    """Config of the game, validated by the game's own Config."""
    scheduler: dict[str, Any] = {}
    """Config of the phase scheduler, validated by the scheduler's own Config."""
    checkpoint_every: int = Field(10, ge=0)
    """Save a checkpoint every this many steps and at the end (0: never)."""
    keep_last: int = Field(2, ge=1)
    """Complete checkpoints to keep; older ones are deleted."""
    save_images: bool = True
    """Save every picture players saw under OUTPUT_DIR/images/ (for reports)."""
    probe_every: int = Field(0, ge=0)
    """Score the probes (transfer: `vzframe probe`) every this many steps and at the end, logged as probe/NAME (0: never)."""
    probe: ProbeConfig = ProbeConfig()
    """What probe_every scores."""
    rollout: RolloutConfig = RolloutConfig()
    """Generation settings."""
    train: TrainConfig = TrainConfig()
    """Optimisation settings."""


METADATA_KEY = "vzframe"
"""Key of a run's config.yaml that records versions and plugin names; ignored when read back,
so `--config OUTPUT_DIR/config.yaml` reruns a run."""


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the valid choices."""


MAX_CONFIG_BYTES = 2**20
"""A config file larger than this is refused unread."""


class _Loader(yaml.SafeLoader):
    """YAML without aliases: ``*name`` lets a few lines expand into billions of values."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in a vzframe config; write the values out")
        return super().compose_node(parent, index)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-5", "steps=3"]`` -> nested dict; values parsed as YAML scalars/lists."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override {item!r} is not key=value (e.g. steps=20 or train.lr=1e-5).")
        try:
            value = _yaml(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r} sets a key inside {part!r}, which is not a section.")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} not found (paths are relative to {Path.cwd()}).")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"Config file {str(path)!r} is over {MAX_CONFIG_BYTES // 1024} KiB; a config is a short YAML file.")
    try:
        data = _yaml(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {str(path)!r} is not UTF-8 text; give a YAML file.") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}.")
    data.pop(METADATA_KEY, None)
    return data


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def validate(model: type[ConfigT], data: dict[str, Any], prefix: str = "") -> ConfigT:
    """``model.model_validate(data)``, with errors that name the key and list valid keys."""
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(model, exc, prefix)) from None
    for key, value in _leaves(validated.model_dump(), prefix):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"Bad value for {key!r}: {value} is not a finite number.\nSee `vzframe run --help-config`.")
    return validated


def _leaves(data: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted key, value) of every scalar in nested dicts and lists."""
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    if isinstance(data, (list, tuple)):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), data)]


def _explain(model: type[BaseModel], exc: ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = prefix + ".".join(loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            valid = ", ".join(f"{prefix}{'.'.join([*loc[:-1], k])}" for k in owner.model_fields) if owner else ""
            lines.append(f"Unknown config key {key!r}. Valid keys here: {valid}.")
        else:
            lines.append(f"Bad value for {key!r}: {err['msg']} (got {err.get('input')!r}).")
    return "\n".join(lines) + "\nSee `vzframe run --help-config` for every key with its meaning."


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def load_config(config_file: str | Path | None, overrides: list[str], plugins: Sequence[str] = ()) -> RunConfig:
    """Defaults < YAML file < ``key=value`` overrides; positional plugin names are appended."""
    data: dict[str, Any] = load_yaml(config_file) if config_file else {}
    data = deep_merge(data, parse_overrides(list(overrides)))
    if plugins:
        data["plugins"] = list(dict.fromkeys([*data.get("plugins", []), *plugins]))
    return validate(RunConfig, data)


def describe(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, doc) for every field, sections flattened, for help output. The default
    is written as a ``key=value`` override would give it; the doc on one line.

    >>> describe(TrainConfig)[0]
    ('lr', '1e-05', 'Peak learning rate (AdamW).')
    >>> [row[:2] for row in describe(RunConfig) if row[0] in ("plugins", "model", "rollout.engine")]
    [('plugins', '[]'), ('model', 'null'), ('rollout.engine', 'hf')]
    """
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe(annotation, f"{prefix}{name}."))
        else:
            default = "(required)" if field.is_required() else _as_override(field.get_default(call_default_factory=True))
            rows.append((prefix + name, default, " ".join((field.description or "").split())))
    return rows


def _as_override(value: Any) -> str:
    """``value`` as YAML flow text, what ``key=...`` takes: ``null``, ``[bar, pie]``, ``'#fff'``."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, Path):
        value = str(value)
    elif isinstance(value, float):
        return repr(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def format_keys(title: str, rows: list[tuple[str, str, str]]) -> str:
    """A titled block of ``describe`` rows, the columns aligned: how ``--help-config`` prints."""
    if not rows:
        return f"{title}\n  (no keys)"
    key_w = min(max(len(k) for k, _, _ in rows), 38)
    default_w = min(max(len(d) for _, d, _ in rows), 16)
    lines = [title]
    for key, default, doc in rows:
        lines.append(f"  {key:{key_w}}  {default:{default_w}}  {doc}".rstrip())
    return "\n".join(lines)
