"""The vLLM engine against the transformers engine: same greedy tokens for the same batch,
before and after a training step changed the weights (which proves the in-memory weight
sync). Runs where vLLM is installed (its CPU build works here: see bench/README.md)."""

import pytest

vllm = pytest.importorskip("vllm")

import torch  # noqa: E402

from tests.test_rollout import observation  # noqa: E402
from tests.test_trainer import make_trainer  # noqa: E402
from vzframe.config import RolloutConfig  # noqa: E402
from vzframe.rollout.hf import HFEngine  # noqa: E402
from vzframe.rollout.vllm import VLLMEngine  # noqa: E402
from vzframe.types import Sample  # noqa: E402

GREEDY = RolloutConfig(engine="vllm", temperature=0.0, max_new_tokens=12, vllm_gpu_memory_utilization=0.1, vllm_max_model_len=1024)


@pytest.fixture(scope="module")
def engines(tiny_model_dir, tiny_processor):
    trainer = make_trainer(tiny_model_dir, tiny_processor, lr=3e-2, max_grad_norm=1e9)
    hf = HFEngine(trainer.model, tiny_processor, GREEDY)
    fast = VLLMEngine(trainer.model, tiny_processor, GREEDY, seed=0, model_path=str(tiny_model_dir))
    return trainer, hf, fast


def batch():
    texts = ["Describe.", "Describe the picture in one sentence, player two.", "Who is the spy?", "Hi"]
    return [observation(i, t) for i, t in enumerate(texts)]


def test_vllm_greedy_tokens_equal_transformers(engines):
    _, hf, fast = engines
    expected = [g.token_ids for g in hf.generate(batch())]
    got = [g.token_ids for g in fast.generate(batch())]
    assert got == expected
    assert [g.prompt_tokens for g in fast.generate(batch())] == [g.prompt_tokens for g in hf.generate(batch())]


def test_vllm_follows_the_trainer_after_a_step(engines, tiny_processor):
    trainer, hf, fast = engines
    obs = batch()
    before = [g.token_ids for g in fast.generate(obs)]
    samples = [Sample(o, ids, advantage=-1.0, episode=0, turn=i) for i, (o, ids) in enumerate(zip(obs, before))]
    for _ in range(3):  # push the greedy completions' probability down until they change
        trainer.step(samples)
    fast.sync_weights(trainer.model)
    expected = [g.token_ids for g in hf.generate(obs)]
    assert expected != before  # the step really changed the greedy output
    assert [g.token_ids for g in fast.generate(obs)] == expected


def test_vllm_sampling_is_seeded_by_torch(engines):
    _, _, fast = engines
    fast.config = GREEDY.model_copy(update={"temperature": 1.0})
    try:
        torch.manual_seed(5)
        first = [g.token_ids for g in fast.generate(batch())]
        torch.manual_seed(5)
        assert [g.token_ids for g in fast.generate(batch())] == first
    finally:
        fast.config = GREEDY
