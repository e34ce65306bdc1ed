"""The SPEC's loss and the DeepSpeed trainer, on the tiny model (DS_ACCELERATOR=cpu)."""

import math

import pytest
import torch

from tests.test_rollout import observation
from vzframe import dist
from vzframe.config import RolloutConfig, TrainConfig
from vzframe.rollout.hf import HFEngine
from vzframe.train.loss import collate, completion_logprobs, policy_loss
from vzframe.types import Sample

dist.setup_environment()


def test_k3_kl_matches_hand_computation():
    logp = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -1.0]])
    mask = torch.ones_like(logp)
    loss, stats = policy_loss(logp, torch.tensor([0.0]), mask, ref_logp=ref, kl_coef=1.0)
    expected = [math.exp(d) - d - 1 for d in (-0.5, 1.0)]
    assert stats["kl"].item() == pytest.approx(sum(expected) / 2)
    assert loss.item() == pytest.approx(sum(expected) / 2)


def test_loss_is_token_mean_per_sequence_then_batch():
    logp = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    loss, _ = policy_loss(logp, torch.tensor([1.0, 2.0]), mask, kl_coef=0.0)
    loss.mean().backward()
    # d/dlogp of -A * logp, averaged over each sequence's own tokens, then over 2 sequences.
    assert torch.allclose(logp.grad, torch.tensor([[-1 / 6] * 3, [-1.0, 0.0, 0.0]]))


def test_ppo_clip_stops_gradient_outside_the_trust_region():
    old = torch.tensor([[0.0]])
    logp = torch.tensor([[0.5]], requires_grad=True)  # ratio e^0.5 > 1.2
    loss, _ = policy_loss(logp, torch.tensor([1.0]), torch.ones(1, 1), old_logp=old, kl_coef=0.0, clip_eps=0.2)
    loss.sum().backward()
    assert logp.grad.item() == 0.0
    logp2 = torch.tensor([[0.1]], requires_grad=True)  # inside the region: gradient flows
    loss, _ = policy_loss(logp2, torch.tensor([1.0]), torch.ones(1, 1), old_logp=old, kl_coef=0.0, clip_eps=0.2)
    loss.sum().backward()
    assert logp2.grad.item() < 0


def make_trainer(tiny_model_dir, tiny_processor, **overrides):
    from vzframe.train.trainer import Trainer

    cfg = TrainConfig(**{"lr": 1e-3, "warmup_ratio": 0.0, "kl_coef": 0.0, **overrides})
    return Trainer(str(tiny_model_dir), tiny_processor, cfg, total_steps=100, temperature=1.0)


def sample_completions(trainer, processor, n=2):
    engine = HFEngine(trainer.model, processor, RolloutConfig(temperature=1.0, max_new_tokens=10))
    torch.manual_seed(0)
    obs = [observation(i, "Describe the picture.") for i in range(n)]
    return obs, [g.token_ids for g in engine.generate(obs)]


def total_logp(trainer, processor, samples):
    batch = collate(processor, samples, processor.tokenizer.pad_token_id)
    with torch.no_grad():
        logp = completion_logprobs(trainer.model, batch)
    return (logp * batch["completion_mask"]).sum(dim=1)


@pytest.mark.parametrize("zero_stage", [2, 3])
def test_positive_advantage_raises_logprob_and_negative_lowers_it(tiny_model_dir, tiny_processor, zero_stage):
    trainer = make_trainer(tiny_model_dir, tiny_processor, zero_stage=zero_stage)
    obs, ids = sample_completions(trainer, tiny_processor)
    up = [Sample(obs[0], ids[0], advantage=1.0, episode=0, turn=0)]
    down = [Sample(obs[1], ids[1], advantage=-1.0, episode=0, turn=1)]

    before = total_logp(trainer, tiny_processor, up + down)
    stats = trainer.step(up + down)
    after = total_logp(trainer, tiny_processor, up + down)
    assert after[0] > before[0] + 1e-3
    assert after[1] < before[1] - 1e-3
    assert stats["samples"] == 2 and stats["grad_norm"] > 0


def test_kl_is_zero_against_identical_reference_and_grows_after_a_step(tiny_model_dir, tiny_processor):
    trainer = make_trainer(tiny_model_dir, tiny_processor, kl_coef=0.04)
    obs, ids = sample_completions(trainer, tiny_processor)
    samples = [Sample(o, i, advantage=a, episode=0, turn=k) for k, (o, i, a) in enumerate(zip(obs, ids, (1.0, -1.0)))]
    first = trainer.step(samples)
    assert first["kl"] == pytest.approx(0.0, abs=1e-7)
    second = trainer.step(samples)
    assert second["kl"] > 1e-6


def test_micro_batches_accumulate_into_one_optimizer_step(tiny_model_dir, tiny_processor):
    """Five samples in micro-batches of 2 give the same gradient and update as one batch of 5
    (up to float noise: padding widths differ, and Adam magnifies noise on ~zero gradients)."""
    obs_ids = None
    results, norms = [], []
    for micro in (5, 2):
        trainer = make_trainer(tiny_model_dir, tiny_processor, micro_batch_size=micro, max_grad_norm=1e9)
        if obs_ids is None:
            obs_ids = sample_completions(trainer, tiny_processor, n=5)
        obs, ids = obs_ids
        samples = [Sample(o, i, advantage=float(k - 2), episode=0, turn=k) for k, (o, i) in enumerate(zip(obs, ids))]
        norms.append(trainer.step(samples)["grad_norm"])
        results.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
        assert trainer.engine.global_steps == 1
    assert norms[0] == pytest.approx(norms[1], rel=1e-4)
    assert torch.allclose(results[0], results[1], atol=1e-4)  # each step moves weights by ~lr = 1e-3
