"""The embedded default: a real Qwen2.5-VL model and processor, built offline."""

import json

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from vzframe.models.tiny import QWEN_SPECIAL_TOKENS, build_tiny, default_model_dir, ensure_default_model


def test_builds_loadable_qwen25_vl(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    text = model.config.text_config
    # vLLM's CPU attention needs head_dim 64; special ids must lie inside the tiny vocabulary.
    assert text.hidden_size // text.num_attention_heads == 64
    for token_id in (text.bos_token_id, text.eos_token_id, text.pad_token_id, model.config.image_token_id):
        assert 0 <= token_id < text.vocab_size
    tokenizer = processor.tokenizer
    for token in QWEN_SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
        assert tokenizer.tokenize(token) == [token]  # one token, never split


def test_processor_turns_image_into_model_tokens(tiny_model_dir, tiny_processor):
    from PIL import Image

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]}]
    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    inputs = tiny_processor(text=[text], images=[Image.new("RGB", (112, 112), "red")], return_tensors="pt")
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == 16  # 112x112 -> 8x8 patches -> merged 2x2
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[-1] == model.config.text_config.vocab_size
    assert torch.isfinite(logits).all()


def test_build_is_deterministic(tmp_path):
    a = build_tiny(tmp_path / "a", seed=3)
    b = build_tiny(tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "tokenizer.json").read_text()) == json.loads((b / "tokenizer.json").read_text())


def test_default_is_built_once(tiny_model_dir):
    assert default_model_dir() == tiny_model_dir
    stamp = (tiny_model_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_default_model() == tiny_model_dir
    assert (tiny_model_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_written_model_files_get_ordinary_modes(tmp_path):
    """Temporary files are private (0600); a model written through a temporary directory
    must not keep that mode, and an export must not copy it (umask respected)."""
    import os
    import stat
    import tempfile

    from vzframe.models.tiny import written_atomically

    old = os.umask(0o022)
    try:
        with written_atomically(tmp_path / "m", prefix=".t-") as tmp:
            fd, _ = tempfile.mkstemp(dir=tmp, suffix=".safetensors")  # 0600, as safetensors' atomic writes
            os.close(fd)
            os.mkdir(tmp / "sub", 0o700)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "m", *(tmp_path / "m").iterdir()]}
    assert modes.pop("m") == 0o755 and modes.pop("sub") == 0o755
    assert set(modes.values()) == {0o644}
