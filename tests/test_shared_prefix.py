"""``train.share_prefix``: a prompt prefix every sample of a micro-batch shares runs once, and
the log-probabilities and gradients are those of the full forward."""

import pytest
import torch
from transformers import AutoModelForImageTextToText

from tests.conftest import make_image
from vzframe.config import RolloutConfig
from vzframe.rollout.hf import HFEngine
from vzframe.train.loss import MIN_SHARED_PREFIX, collate, completion_logprobs, shared_prefix_length, supports_shared_prefix
from vzframe.types import Observation, Sample

RULES = "You play a game of pictures. " * 12  # the long system text every player sees


def observation(player: int, text: str, size: int = 112) -> Observation:
    messages = (
        {"role": "system", "content": RULES},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},
    )
    return Observation(player=player, role="citizen", stage="decision", messages=messages, images=(make_image(player, size),))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()


@pytest.fixture(scope="module")
def samples(model, tiny_processor):
    """Prompts of different lengths (pads after the prefix), pictures of two sizes."""
    obs = [observation(1, "Vote."), observation(2, "You are player 2. Who is the spy? Think, then vote.", 168),
           observation(3, "You are player 3, vote now please.")]  # fmt: skip
    gens = HFEngine(model, tiny_processor, RolloutConfig(temperature=1.0, max_new_tokens=10)).generate(obs)
    return [Sample(o, g.token_ids, 1.0, 0, 0, prompt=g.prompt) for o, g in zip(obs, gens)]


def test_the_shared_prefix_is_the_common_text_before_any_picture(samples, tiny_processor):
    prompts = [s.prompt for s in samples]
    n = shared_prefix_length(prompts)
    assert n >= MIN_SHARED_PREFIX
    assert all(torch.equal(p.input_ids[:n], prompts[0].input_ids[:n]) for p in prompts)
    assert (prompts[0].mm_token_type_ids[:n] == 0).all() and prompts[0].mm_token_type_ids[n:].any()  # stops at the picture
    assert shared_prefix_length([prompts[0], prompts[0]]) < len(prompts[0].input_ids)  # one token of its own is left
    batch = collate(tiny_processor, samples, tiny_processor.tokenizer.pad_token_id, share_prefix=True)
    assert int(batch["shared_prefix"]) == n
    mask = batch["attention_mask"]
    assert (mask[:, :n] == 1).all() and (mask[:, n:] == 0).any()  # the pads sit after the prefix
    plain = collate(tiny_processor, samples, tiny_processor.tokenizer.pad_token_id)
    assert "shared_prefix" not in plain and torch.equal(plain["attention_mask"].sum(1), mask.sum(1))


def test_shared_prefix_log_probs_and_gradients_are_the_full_forwards(model, samples, tiny_processor):
    assert supports_shared_prefix(model)
    pad = tiny_processor.tokenizer.pad_token_id
    results = {}
    for share in (False, True):
        batch = collate(tiny_processor, samples, pad, share_prefix=share)
        model.zero_grad()
        logp = completion_logprobs(model, batch)
        (logp * batch["completion_mask"]).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results[share] = (logp.detach() * batch["completion_mask"], grads)
    (full, full_grads), (shared, shared_grads) = results[False], results[True]
    assert torch.allclose(full, shared, atol=1e-5), (full - shared).abs().max()
    assert full_grads.keys() == shared_grads.keys() and len(full_grads) > 10
    for name, grad in full_grads.items():
        assert torch.allclose(grad, shared_grads[name], rtol=1e-3, atol=1e-6), name
    model.zero_grad()


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_a_trainer_sharing_the_prefix_takes_the_same_steps(tiny_model_dir, tiny_processor, samples, lora):
    """Two DeepSpeed ZeRO-2 steps with the KL term (reference and policy passes both share the
    prefix; with train.lora the reference is the policy with its adapters off): the same loss,
    KL, gradient norm and weights as without sharing."""
    from vzframe import dist
    from vzframe.config import LoraConfig, TrainConfig
    from vzframe.train.trainer import Trainer

    if lora:
        pytest.importorskip("peft")

    dist.setup_environment()
    trained = [Sample(s.observation, s.completion_ids, a, 0, k, prompt=s.prompt) for k, (s, a) in enumerate(zip(samples, (1.0, -1.0, 0.5)))]
    runs = {}
    for share in (False, True):
        adapters = LoraConfig(rank=4, alpha=64, dropout=0.0) if lora else None
        cfg = TrainConfig(lr=1e-3, warmup_ratio=0.0, kl_coef=0.04, zero_stage=2, share_prefix=share, micro_batch_size=3,
                          lora=adapters)  # fmt: skip
        trainer = Trainer(str(tiny_model_dir), tiny_processor, cfg, total_steps=10, temperature=1.0)
        assert trainer.share_prefix is share
        stats = [trainer.step(trained) for _ in range(2)]
        runs[share] = stats, torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    (plain, plain_weights), (shared, shared_weights) = runs[False], runs[True]
    assert shared[1]["kl"] > 1e-6 and plain[0]["grad_norm"] > 0  # weights move, and away from the reference
    for a, b in zip(plain, shared):
        for key in ("loss", "kl", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-7), key
    assert torch.allclose(plain_weights, shared_weights, atol=1e-5)
