"""Build a tiny Qwen2.5-VL model fully offline: random weights, a byte-level BPE tokenizer
trained here with Qwen's special tokens, and a real processor.

It proves the machinery end to end on a CPU; it does not play well. The result is an
ordinary Hugging Face directory: ``AutoModelForImageTextToText.from_pretrained(DIR)`` and
``AutoProcessor.from_pretrained(DIR)`` load it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = """
You are player number in a game of who is the spy. Your role: SPY (you have the different picture).
Your role: NOT SPY. Citizens see the real image; the spy sees a blank image. Give one sentence
that describes the picture. Blend in. Be accurate without giving the spy too much.
<think> I see a red circle and a blue square on a grey background. </think>
<answer> There is a red round object near a blue square. </answer>
<answer>1</answer> <answer>2</answer> <answer>3</answer> <answer>4</answer> <answer>N/A</answer>
Clues so far: Player 1: Player 2: Player 3: Player 4: Player 5: Your earlier reasoning (private):
Vote for the player you think is the spy, or answer N/A when you are unsure.
red green blue yellow purple cyan brown gray grey orange pink black white
circle square triangle star cube sphere cylinder small large metal rubber shiny matte
left right top bottom middle center behind in front of next to above below near far
the a an of and or is are there one two three four five six seven eight nine ten
chart bar line pie title axis legend value values data increase decrease highest lowest
"""
"""Text the tokenizer learns its merges from: the games' vocabulary and plain English. The toy
world's tokenizers start from it too (``plugins.toy_world.targets.corpus``)."""


def _train_tokenizer(vocab_size: int, corpus: str = CORPUS) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus] * 4, trainer=trainer)
    return tok


@dataclass(frozen=True)
class Shape:
    """The sizes of a small Qwen2.5-VL. Heads are 64 wide (a head size vLLM's CPU kernels accept)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 2
    kv_heads: int = 1
    intermediate: int = 256
    vision_hidden: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    tie_embeddings: bool = False


TINY = Shape()
"""Text: 2 layers, hidden 128, 2 heads. Vision: 2 blocks, hidden 64, patch 14, merge 2."""


def build_tiny(
    out_dir: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 1024,
    image_size: int = 112,
    shape: Shape = TINY,
    corpus: str = CORPUS,
    max_pixels: int | None = None,
) -> Path:
    """Write a small Qwen2.5-VL model with random weights, its tokenizer (BPE trained on
    ``corpus``) and processor to ``out_dir``; return it. The processor shrinks pictures to at
    most ``max_pixels`` (default ``image_size**2``; a 112x112 picture is 16 tokens)."""
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out_dir = Path(out_dir)
    raw = _train_tokenizer(vocab_size, corpus)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        padding_side="left",
        model_max_length=8192,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    vocab = len(tokenizer)

    text_config = dict(
        vocab_size=vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=shape.tie_embeddings,
    )
    vision_config = dict(
        depth=shape.vision_depth,
        hidden_size=shape.vision_hidden,
        intermediate_size=2 * shape.vision_hidden,
        num_heads=shape.vision_heads,
        out_hidden_size=shape.hidden,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=56,
        fullatt_block_indexes=list(range(1, shape.vision_depth, 2)),  # windowed, full, windowed, ... as Qwen
    )
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=shape.tie_embeddings,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]

    pixels = max_pixels or image_size * image_size
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 56 * 56, "longest_edge": pixels},
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )

    with written_atomically(out_dir, prefix=".tiny-") as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "vzframe-tiny.json").write_text(json.dumps({"seed": seed, "vocab_size": vocab_size}))
    return out_dir


@contextlib.contextmanager
def written_atomically(out_dir: Path, *, prefix: str) -> Iterator[Path]:
    """Yield a fresh directory beside ``out_dir``; on success it replaces ``out_dir`` in one
    rename, so a half-built model is never picked up. On error it is removed. What it holds
    gets the modes of ordinary files (0644 and 0755 under umask 022), not the private 0600 and
    0700 of temporary ones."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    try:
        yield tmp
        _ordinary_modes(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ordinary_modes(root: Path) -> None:
    """chmod ``root`` and everything under it as if created by ``open``/``mkdir`` (umask respected)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() or path.stat().st_mode & 0o100 else 0o666) & ~umask)


def default_model_dir() -> Path:
    """Where model ``tiny`` is built: under ``$VZFRAME_CACHE`` or ``~/.cache/vzframe``."""
    root = Path(os.environ.get("VZFRAME_CACHE", Path.home() / ".cache" / "vzframe"))
    key = hashlib.sha1(f"{CHAT_TEMPLATE}{CORPUS}v1".encode()).hexdigest()[:8]
    return root / f"tiny-qwen2.5-vl-{key}"


def ensure_default_model() -> Path:
    """Build model ``tiny`` once and reuse it (its ``register_models`` builder)."""
    path = default_model_dir()
    if not (path / "vzframe-tiny.json").exists():
        build_tiny(path)
    return path
