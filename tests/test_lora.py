"""train.lora: adapters train and nothing else, the KL reference is the policy with its
adapters off, checkpoints hold adapters and resume exactly, and every reader of a run (export,
eval, probe) takes a LoRA run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

pytest.importorskip("peft")

from tests.runs import ROOT, RUN, comparable, read_jsonl, vzframe  # noqa: E402
from tests.test_trainer import make_trainer, sample_completions  # noqa: E402
from vzframe.config import ConfigError, LoraConfig, RolloutConfig  # noqa: E402
from vzframe.rollout import encode  # noqa: E402
from vzframe.rollout.hf import vision_token_ids  # noqa: E402
from vzframe.train.loss import collate, completion_logprobs  # noqa: E402
from vzframe.types import Sample  # noqa: E402

LORA = ["train.lora.rank=4", "train.lora.alpha=8", "train.lora.dropout=0.0"]


@pytest.mark.parametrize("zero_stage", [0, 2, 3])
def test_only_adapters_train_and_the_reference_is_the_base_model(tiny_model_dir, tiny_processor, zero_stage):
    from vzframe.train import lora
    from vzframe.train.trainer import load_model

    trainer = make_trainer(tiny_model_dir, tiny_processor, zero_stage=zero_stage, kl_coef=0.04, lr=1e-2,
                           lora=LoraConfig(rank=4, alpha=8, dropout=0.0))  # fmt: skip
    assert trainer.ref is None  # no second copy of the weights
    named = dict(trainer.model.named_parameters())
    assert {n for n, p in named.items() if p.requires_grad} == {n for n in named if ".lora_" in n}
    assert not any("visual" in n for n in named if ".lora_" in n)  # the vision tower stays frozen
    before = {n: p.detach().clone() for n, p in named.items() if getattr(p, "ds_numel", p.numel()) == p.numel()}
    obs, ids = sample_completions(trainer, tiny_processor)
    samples = [Sample(o, i, advantage=1.0 - 2 * k, episode=0, turn=k) for k, (o, i) in enumerate(zip(obs, ids))]
    for _ in range(2):
        stats = trainer.step(samples)
    assert stats["kl"] > 0  # the policy left the reference
    batch = collate(tiny_processor, samples, tiny_processor.tokenizer.pad_token_id)
    base = load_model(str(tiny_model_dir), bf16=False).eval()
    with torch.no_grad():
        expected = completion_logprobs(base, batch)
    assert torch.allclose(trainer._reference_logprobs(batch), expected, atol=1e-5)  # adapters off = the base
    if zero_stage < 3:  # under ZeRO-3 parameters are shards
        after = dict(trainer.model.named_parameters())
        changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
        assert changed and all(".lora_" in n for n in changed)
    assert lora.is_lora(trainer.model)


def test_bad_lora_settings_fail_before_any_weight_loads(tiny_model_dir, tiny_processor, monkeypatch):
    from vzframe.train import trainer as trainer_module

    loads = []
    monkeypatch.setattr(trainer_module, "load_model", lambda *a, **k: loads.append(a))
    with pytest.raises(ConfigError, match=r"target_modules: \['qkv_proj'\] name no module of .* Its linear layers are named"):
        make_trainer(tiny_model_dir, tiny_processor, lora=LoraConfig(target_modules=["q_proj", "qkv_proj"]))
    assert loads == []
    result = vzframe("run", "games.spy", "schedulers.hysteresis", "train.lora.rank=0")
    assert result.returncode == 2 and "Bad value for 'train.lora.rank'" in result.stderr


def test_a_lora_run_killed_anywhere_resumes_exactly_and_is_read_like_a_full_run(tmp_path):
    reference, out = tmp_path / "uninterrupted", tmp_path / "killed"
    result = vzframe("run", *RUN, *LORA, f"output_dir={reference}")
    assert result.returncode == 0, result.stderr[-3000:]
    model = reference / "checkpoints" / "step-6" / "model"
    assert (model / "adapter_model.safetensors").is_file() and not (model / "model.safetensors").exists()

    proc = subprocess.Popen([sys.executable, "-m", "vzframe", "run", *RUN, *LORA, f"output_dir={out}", "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-2" / "MANIFEST.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert vzframe("resume", str(out)).returncode == 0
    assert comparable(read_jsonl(out / "metrics.jsonl")) == comparable(read_jsonl(reference / "metrics.jsonl"))
    assert max(r["kl"] for r in read_jsonl(reference / "metrics.jsonl")) > 1e-4  # the adapters really moved
    ours, theirs = (d / "checkpoints" / "step-6" / "model" / "adapter_model.safetensors" for d in (out, reference))
    assert ours.read_bytes() == theirs.read_bytes()  # bit-identical adapters

    # export: merged into a plain model by default, the adapters alone with --adapter
    merged, adapters = tmp_path / "merged", tmp_path / "adapters"
    from vzframe.cli import main

    assert main(["export", str(reference), str(merged)]) == 0
    assert main(["export", str(reference), str(adapters), "--adapter"]) == 0
    assert (merged / "model.safetensors").is_file() and (merged / "processor_config.json").is_file()
    assert json.loads((adapters / "adapter_config.json").read_text())["r"] == 4
    from transformers import AutoModelForImageTextToText

    from vzframe.train.trainer import load_model

    plain = AutoModelForImageTextToText.from_pretrained(merged, dtype=torch.float32)
    again = load_model(str(model), bf16=False)  # what eval, league and probe load
    for (name, a), (_, b) in zip(plain.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    # the readers of a run: probe and eval take the LoRA checkpoints
    result = vzframe("probe", str(reference), "--probes", "clevr.verify", "--items", "4", "--step", "6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((reference / "probe-step-6.json").read_text())["probes"]["clevr.verify"]["trained"]["n"] == 4
    assert main(["eval", str(reference), "--games", "2"]) == 0
    assert set(json.loads((reference / "eval-step-6.json").read_text())["matchups"]) >= {"base", "trained spy"}
    # (vzframe league loads checkpoints with the same load_model; this fixture's game names no winner)


def test_vllm_receives_merged_weights_named_as_the_base_model(tiny_model_dir, tiny_processor):
    """What ``VLLMEngine.sync_weights`` sends for a LoRA policy: every base weight, with the
    adapters' update folded into the ones they sit on."""
    from vzframe.rollout.vllm import full_parameters
    from vzframe.train.trainer import load_model

    trainer = make_trainer(tiny_model_dir, tiny_processor, lr=1e-2, lora=LoraConfig(rank=4, alpha=8, dropout=0.0))
    obs, ids = sample_completions(trainer, tiny_processor)
    trainer.step([Sample(o, i, advantage=1.0, episode=0, turn=k) for k, (o, i) in enumerate(zip(obs, ids))])
    sent = dict(full_parameters(trainer.model))
    base = dict(load_model(str(tiny_model_dir), bf16=False).named_parameters())
    assert set(sent) == set(base)
    moved = [n for n in base if not torch.equal(sent[n], base[n].detach())]
    assert moved and all(n.endswith(".weight") and "language_model" in n for n in moved)
    batch = collate(tiny_processor, [Sample(obs[0], ids[0], 0.0, 0, 0)], tiny_processor.tokenizer.pad_token_id)
    plain = load_model(str(tiny_model_dir), bf16=False).eval()
    plain.load_state_dict({**plain.state_dict(), **sent})
    with torch.no_grad():
        assert torch.allclose(completion_logprobs(plain, batch), completion_logprobs(trainer.model, batch), atol=1e-5)


def test_the_transformers_engine_generates_from_merged_weights_and_puts_the_base_back(tiny_model_dir, tiny_processor):
    """``lora.merged`` (around ``HFEngine.generate``): inside it the model is the policy (its
    log-probs equal the adapters' own forward within float noise) and no adapter runs; after it
    every base weight is the tensor it was, bit for bit, so training and the KL reference are
    untouched, and the engine samples the same tokens as the unmerged policy."""
    from vzframe.rollout.hf import HFEngine
    from vzframe.train import lora

    trainer = make_trainer(tiny_model_dir, tiny_processor, lr=1e-2, lora=LoraConfig(rank=4, alpha=8, dropout=0.0))
    obs, ids = sample_completions(trainer, tiny_processor)
    trainer.step([Sample(o, i, advantage=1.0, episode=0, turn=k) for k, (o, i) in enumerate(zip(obs, ids))])
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = collate(tiny_processor, [Sample(obs[0], ids[0], 0.0, 0, 0)], tiny_processor.tokenizer.pad_token_id)
    model.eval()
    with torch.no_grad():
        policy = completion_logprobs(model, batch)
        with lora.adapters_off(model):
            base = completion_logprobs(model, batch)
        with lora.merged(model):
            inside = completion_logprobs(model, batch)
            adapter_calls = []
            hooks = [m.register_forward_hook(lambda *_: adapter_calls.append(1)) for n, m in model.named_modules() if n.endswith(".lora_A.default")]
            assert hooks
            completion_logprobs(model, batch)
            for h in hooks:
                h.remove()
    assert not torch.allclose(policy, base, atol=1e-4)  # the adapters moved the policy
    assert torch.allclose(inside, policy, atol=1e-5) and not adapter_calls
    assert all(torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
    config = RolloutConfig(temperature=0.0, max_new_tokens=10)
    merged = [g.token_ids for g in HFEngine(model, tiny_processor, config).generate(obs)]
    with torch.no_grad():
        unmerged = model.generate(**encode(tiny_processor, obs), max_new_tokens=10, do_sample=False,
                                  eos_token_id=model.generation_config.eos_token_id,
                                  suppress_tokens=vision_token_ids(model.config))  # fmt: skip
    prompt = encode(tiny_processor, obs)["input_ids"].shape[1]
    assert [tuple(r[: len(m)]) for r, m in zip(unmerged[:, prompt:].tolist(), merged)] == merged
