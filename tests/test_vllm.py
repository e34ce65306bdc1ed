"""The vLLM engine against the transformers engine: same greedy tokens for the same batch,
before and after a training step changed the weights (which proves the in-memory weight
sync); asynchronous play (continuous batching) against tick play on the same engine. Runs
where vLLM is installed (its CPU build works here: see bench/README.md)."""

import pytest

vllm = pytest.importorskip("vllm")

import torch  # noqa: E402

from tests.conftest import make_image  # noqa: E402
from tests.test_rollout import observation  # noqa: E402
from tests.test_trainer import make_trainer  # noqa: E402
from vzframe.config import RolloutConfig  # noqa: E402
from vzframe.plugins import PluginError  # noqa: E402
from vzframe.rollout.hf import HFEngine  # noqa: E402
from vzframe.rollout.play import play, play_async  # noqa: E402
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


def test_vllm_samples_a_batch_larger_than_a_prefill_step(engines):
    """About 9,000 new prompt tokens at once: vLLM's default step (4,096 tokens) would prefill
    some prompts in parts, and rewinding their seeded generators fails on the CPU."""
    _, _, fast = engines
    fast.config = GREEDY.model_copy(update={"temperature": 1.0})
    try:
        obs = [observation(i, f"Player {i}: " + "the red cube is left of the ball. " * 60) for i in range(12)]
        assert sum(g.prompt_tokens for g in fast.generate(obs, seeds=range(12))) > 9000
    finally:
        fast.config = GREEDY


# ---- asynchronous play (continuous batching) ----------------------------------------------


def spy_games(n: int = 3):
    from tests.test_play_async import LoggedSpy

    return [LoggedSpy(None, seed=s, images=lambda s=s: make_image(s)) for s in range(n)]


def turns(rollout):
    return [[(t.player, t.stage, t.completion) for t in ep.turns] for ep in rollout.episodes]


def seeded(mode, engine, seed: int = 7):
    torch.manual_seed(seed)
    return mode(spy_games(), engine)


def test_vllm_async_play_greedy_equals_tick_play(engines):
    _, _, fast = engines
    tick, rollout = seeded(play, fast), seeded(play_async, fast)
    assert [len(ep.turns) for ep in rollout.episodes] == [len(ep.turns) for ep in tick.episodes] == [11, 11, 11]
    assert turns(rollout) == turns(tick)
    assert rollout.tokens == tick.tokens
    assert fast.prefix_cache_hit_rate > 0.2  # a game's prompts share their opening


def test_vllm_async_play_is_reproducible_with_a_seed(engines):
    _, _, fast = engines
    fast.config = GREEDY.model_copy(update={"temperature": 1.0})
    try:
        first = turns(seeded(play_async, fast))
        assert turns(seeded(play_async, fast)) == first
        assert turns(seeded(play, fast)) == first  # the same per-request seeds in tick play
        assert turns(seeded(play_async, fast, seed=8)) != first
    finally:
        fast.config = GREEDY


def test_vllm_async_voters_see_the_same_state(engines):
    _, _, fast = engines
    games = spy_games()
    play_async(games, fast)
    for game in games:
        votes = [e for e in game.log if e[2] == "decision"]
        observed = [e for e in votes if e[0] == "observe"]
        assert len(observed) == game.num_players - 1
        assert votes[: len(observed)] == observed  # every voter observed before the first vote
        assert {n for *_, n in observed} == {game.config.clue_rounds * game.num_players}


def test_vllm_async_play_that_raises_leaves_no_request_behind(engines):
    from tests.test_play_async import Broken

    _, _, fast = engines
    with pytest.raises(PluginError, match="boom"):
        play_async([*spy_games(2), Broken(None, seed=9, images=lambda: make_image(9))], fast)
    assert not fast.llm.llm_engine.has_unfinished_requests()
    assert fast.finished() == []


def test_vllm_answers_probes_as_transformers_does(engines):
    """``vzframe probe --engine vllm``'s scoring path: the same greedy answers, so the same figures."""
    from vzframe.plugins import build_registry, make_plugin_manager
    from vzframe.probes.score import answer, prepare

    _, hf, fast = engines
    registry = build_registry(make_plugin_manager())
    chosen = {n: registry.probes[n] for n in ("clevr.verify", "clevr.count")}
    sets = prepare(chosen, n=6, seed=0, sources=registry.image_sources)
    expected, got = answer(hf, sets, batch_size=5), answer(fast, sets, batch_size=5)
    assert {k: [a.completion for a in v] for k, v in got.items()} == {k: [a.completion for a in v] for k, v in expected.items()}


def test_vllm_follows_a_lora_policy_after_a_step(engines, tiny_model_dir, tiny_processor):
    """train.lora: vLLM runs the base model with the adapters merged in after each step, and
    generates the greedy tokens the transformers engine generates with the live adapters."""
    pytest.importorskip("peft")
    from vzframe.config import LoraConfig

    full, _, fast = engines  # one vLLM engine per process fits in memory: it takes the LoRA policy's weights
    trainer = make_trainer(tiny_model_dir, tiny_processor, lr=3e-2, max_grad_norm=1e9, lora=LoraConfig(rank=4, alpha=16, dropout=0.0))
    hf = HFEngine(trainer.model, tiny_processor, GREEDY)
    fast.sync_weights(trainer.model)
    obs = batch()
    before = [g.token_ids for g in fast.generate(obs)]
    assert before == [g.token_ids for g in hf.generate(obs)]  # fresh adapters change nothing (B = 0)
    samples = [Sample(o, ids, advantage=-1.0, episode=0, turn=i) for i, (o, ids) in enumerate(zip(obs, before))]
    for _ in range(3):
        trainer.step(samples)
    fast.sync_weights(trainer.model)
    expected = [g.token_ids for g in hf.generate(obs)]
    assert expected != before  # the adapters really changed the greedy output
    assert [g.token_ids for g in fast.generate(obs)] == expected
    fast.sync_weights(full.model)  # back to the fixture's policy for any test after this one
