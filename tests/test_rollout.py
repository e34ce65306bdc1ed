"""The transformers engine: one batched, left-padded generate per tick."""

import pytest
import torch
from transformers import AutoModelForImageTextToText

from tests.conftest import make_image
from vzframe.config import RolloutConfig
from vzframe.rollout import encode
from vzframe.rollout.hf import HFEngine, SeededSampling, vision_token_ids
from vzframe.types import Observation


def observation(i: int, text: str) -> Observation:
    messages = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},)
    return Observation(player=1, role="citizen", stage="clue", messages=messages, images=(make_image(i, 112),))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()


def test_batched_greedy_equals_one_at_a_time(model, tiny_processor):
    """Left padding is right: prompts of different lengths decode the same alone or batched."""
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=0.0, max_new_tokens=12))
    obs = [observation(0, "Describe."), observation(1, "Describe the picture in one sentence, please, player."), observation(2, "Hi")]
    batched = engine.generate(obs)
    alone = [engine.generate([o])[0] for o in obs]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert len({g.prompt_tokens for g in batched}) == 3  # the prompts really differ in length


def test_one_generate_call_per_batch(model, tiny_processor):
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=0.8, max_new_tokens=8))
    calls = []
    original = model.generate

    def counting_generate(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    model.generate = counting_generate
    try:
        out = engine.generate([observation(i, "Describe.") for i in range(5)])
    finally:
        del model.generate
    assert calls == [5]
    assert len(out) == 5
    for gen in out:
        assert 1 <= len(gen.token_ids) <= 8
        assert gen.text == tiny_processor.tokenizer.decode(list(gen.token_ids), skip_special_tokens=True)


def test_completion_stops_at_eos_and_never_contains_vision_tokens(model, tiny_processor):
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=1.5, max_new_tokens=48))
    torch.manual_seed(1)
    out = engine.generate([observation(i, "Describe.") for i in range(8)])
    forbidden = set(vision_token_ids(model.config))
    eos = model.generation_config.eos_token_id
    for gen in out:
        assert not forbidden & set(gen.token_ids)
        if eos in gen.token_ids:
            assert gen.token_ids.index(eos) == len(gen.token_ids) - 1


def test_sampling_is_seeded(model, tiny_processor):
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=0.8, max_new_tokens=10))
    obs = [observation(i, "Describe.") for i in range(3)]
    torch.manual_seed(7)
    first = [g.token_ids for g in engine.generate(obs)]
    torch.manual_seed(7)
    assert [g.token_ids for g in engine.generate(obs)] == first


def test_encode_places_one_image_per_placeholder(tiny_processor, model):
    obs = [observation(0, "a"), observation(1, "bb")]
    inputs = encode(tiny_processor, obs)
    assert (inputs["input_ids"] == model.config.image_token_id).sum(dim=1).tolist() == [16, 16]
    assert inputs["attention_mask"][:, -1].tolist() == [1, 1]  # left padded


def test_training_scores_exactly_what_generation_sampled(model, tiny_processor):
    """The trainer's log-probabilities of a completion are the ones the engine sampled it
    from: same prompt tokens, same 3-D (M-RoPE) positions for picture and text. Scoring
    with 1-D positions instead (as when ``mm_token_type_ids`` was dropped) fails this."""
    from vzframe.train.loss import collate, completion_logprobs
    from vzframe.types import Sample

    obs = [observation(0, "Describe."), observation(1, "Describe the picture in one sentence, please, player.")]
    inputs = encode(tiny_processor, obs)
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=True, top_k=0, output_logits=True,
                         return_dict_in_generate=True, suppress_tokens=vision_token_ids(model.config))
    completions = out.sequences[:, inputs["input_ids"].shape[1]:]
    sampled = torch.stack(out.logits, dim=1).log_softmax(-1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)
    samples = [Sample(o, tuple(c.tolist()), 1.0, 0, 0) for o, c in zip(obs, completions)]
    with torch.no_grad():
        scored = completion_logprobs(model, collate(tiny_processor, samples, tiny_processor.tokenizer.pad_token_id))
    assert torch.allclose(scored, sampled, atol=1e-4), (scored - sampled).abs().max()


def test_the_trainer_reuses_rollouts_encoding_exactly(model, tiny_processor):
    """collate from the encodings rollout kept equals collate from the processor, tensor for
    tensor, for prompts of different lengths, pictures of different sizes and a picture-less one."""
    from vzframe.train.loss import collate
    from vzframe.types import Sample

    text_only = Observation(player=2, role="spy", stage="decision", messages=({"role": "user", "content": "Vote."},), images=())
    obs = [observation(0, "Describe."), observation(1, "Describe the picture in one sentence, please."), text_only]
    obs[1] = Observation(1, "citizen", "clue", obs[1].messages, (make_image(1, 168),))  # a larger picture
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=0.8, max_new_tokens=6))
    gens = engine.generate(obs)
    assert all(g.prompt is not None for g in gens)
    pad = tiny_processor.tokenizer.pad_token_id
    for order in ([0, 1, 2], [2, 1], [1]):  # any subset, in any order, as a micro-batch takes them
        reused = collate(tiny_processor, [Sample(obs[i], gens[i].token_ids, 1.0, i, 0, prompt=gens[i].prompt) for i in order], pad)
        fresh = collate(tiny_processor, [Sample(obs[i], gens[i].token_ids, 1.0, i, 0) for i in order], pad)
        assert reused.keys() == fresh.keys()
        for key in fresh:
            assert torch.equal(reused[key], fresh[key]), (order, key)


def test_a_sampled_completion_depends_on_its_seed_not_on_its_batch(model, tiny_processor):
    """Each row samples from its own seeded generator: alone, batched with others or in
    another order, an observation with the same seed gets the same completion."""
    engine = HFEngine(model, tiny_processor, RolloutConfig(temperature=1.0, max_new_tokens=12))
    obs = [observation(0, "Describe."), observation(1, "Describe the picture in one sentence, please, player."), observation(2, "Hi")]
    batched = [g.token_ids for g in engine.generate(obs, seeds=[11, 12, 13])]
    alone = [engine.generate([o], seeds=[s])[0].token_ids for o, s in zip(obs, [11, 12, 13])]
    reordered = [g.token_ids for g in engine.generate(obs[::-1], seeds=[13, 12, 11])][::-1]
    assert batched == alone == reordered
    assert engine.generate(obs[:1], seeds=[99])[0].token_ids != batched[0]  # another seed, another draw


def test_seeded_sampling_draws_from_the_tempered_top_p_softmax():
    """The Gumbel-max draw matches the distribution ``do_sample`` samples from: over 8000
    seeds each token's frequency is within 4 standard errors of its probability, and a
    token outside the top-p nucleus is never drawn."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -8.0]])
    temperature, top_p, n = 0.7, 0.95, 8000
    probs = torch.softmax(logits[0] / temperature, dim=0)
    nucleus = int((torch.cumsum(probs, 0) < top_p).sum()) + 1  # the most likely tokens that reach top_p
    kept = probs[:nucleus] / probs[:nucleus].sum()
    scores = SeededSampling(range(n), temperature, top_p)(torch.zeros(n, 1, dtype=torch.long), logits.repeat(n, 1))
    counts = torch.bincount(scores.argmax(dim=1), minlength=6).double() / n
    assert counts[nucleus:].sum() == 0 and nucleus < 6
    se = (kept * (1 - kept) / n).sqrt()
    assert ((counts[:nucleus] - kept).abs() < 4 * se).all(), (counts, kept)
