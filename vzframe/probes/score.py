"""Scoring probes with a rollout engine, and their statistics.

``prepare`` draws each probe's items once (held-out pictures: ``probe_seed``); ``answer`` sends
every item of every probe through a rollout engine in batches (``engine.generate``, the same
call a run makes: vLLM on GPUs), each item with its own sampling seed, so two models answer
the same items on common random numbers (greedy by default); ``summary`` and ``paired`` turn
per-item scores into an accuracy with its standard error and a change with its paired one.
"""

from __future__ import annotations

import math
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vzframe.probes import ProbeItem, model_answer, observation, probe_seed
from vzframe.protocols import ImageSource
from vzframe.rollout import Sampler, seeds_per_request


@dataclass
class ProbeSet:
    """One probe's items, drawn once, and where their pictures came from."""

    probe: Any
    items: list[ProbeItem]
    source: str | None
    """The image source the items were drawn from (None: the probe brings its pictures)."""
    seed: int
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """One model's answer to one item."""

    id: str
    completion: str
    answer: str
    tagged: bool
    """Whether the answer came in an ``<answer>`` tag (the format asked for)."""
    score: float
    p_right: float | None = None
    """With ``--score likelihood``: the probability the model puts on the right choices,
    normalised over the item's choices (a finer measure than the 0/1 ``score``)."""


def warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def valid(item: Any) -> str | None:
    """Why ``item`` cannot be scored, or None."""
    if not isinstance(item, ProbeItem):
        return f"{item!r} is not a ProbeItem"
    if not isinstance(item.question, str) or not item.question.strip():
        return f"item {item.id!r} has no question"
    if not item.answers or not all(isinstance(a, str) and a.strip() for a in item.answers):
        return f"item {item.id!r} has an empty answer"
    if item.image is not None and not hasattr(item.image, "image"):
        return f"item {item.id!r} has no readable picture"
    return None


def prepare(
    probes: dict[str, Any], *, n: int, seed: int, sources: dict[str, type[ImageSource]], run_source: Any | None = None,
    n_own: int | None = None, warn: Callable[[str], None] = warn_stderr,
) -> list[ProbeSet]:  # fmt: skip
    """Each probe's items: ``n`` of them (``n_own`` of a probe that brings its own pictures, a
    labelled set: None for all), from the run's image
    source ``run_source`` when the probe takes it (the same kind of pictures as training, other
    seeds), else from the probe's first source with its default config. A bad item is skipped
    with one warning naming it."""
    from vzframe.config import validate

    out = []
    for name, probe in probes.items():
        pseed = probe_seed(name, seed)
        source_name = None
        source = None
        if probe.sources:
            if run_source is not None and run_source.name in probe.sources:
                source_name, source = run_source.name, type(run_source)(run_source.config, seed=pseed)
            else:
                source_name = next((s for s in probe.sources if s in sources), None)
                if source_name is None:
                    warn(f"probe {name!r} needs one of the image sources {list(probe.sources)}, none loaded; skipped")
                    continue
                cls = sources[source_name]
                source = cls(validate(cls.Config, {}, "image_source."), seed=pseed)
        items = probe.items(source, n if probe.sources else n_own, seed)
        kept, skipped = [], [*getattr(probe, "problems", ())]
        seen: set[str] = set()
        for item in items:
            why = valid(item) or (f"item id {item.id!r} repeats" if item.id in seen else None)
            if why:
                skipped.append(why)
            else:
                kept.append(item)
                seen.add(item.id)
        for why in skipped:
            warn(f"probe {name!r}: skipped {why}")
        if not kept:
            warn(f"probe {name!r} has no item to score; skipped")
            continue
        out.append(ProbeSet(probe, kept, source_name, pseed, skipped))
    return out


def item_seed(probe_set: ProbeSet, index: int) -> int:
    """The sampling seed of item ``index``: the same for every model (common random numbers)."""
    return zlib.crc32(f"{probe_set.seed}:{index}".encode()) & 0x7FFFFFFF


def answer(
    engine: Sampler, sets: Sequence[ProbeSet], *, batch_size: int = 32, progress: Callable[[int], None] | None = None,
    rank: int = 0, world: int = 1,
) -> dict[str, list[Answer | None]]:  # fmt: skip
    """Every item's answer from ``engine``, in batches of ``batch_size`` observations. With
    ``world`` > 1 this rank answers items ``rank, rank + world, ...`` and the rest are None
    (``probe_every`` all-reduces the sums)."""
    work = [(s, i) for s in sets for i in range(len(s.items))]
    mine = work[rank::world]
    out: dict[str, list[Answer | None]] = {s.probe.name: [None] * len(s.items) for s in sets}
    seeded = engine if seeds_per_request(engine) else None
    for start in range(0, len(mine), batch_size):
        batch = mine[start : start + batch_size]
        observations = [observation(s.items[i]) for s, i in batch]
        seeds = [item_seed(s, i) for s, i in batch]
        generated = engine.generate(observations) if seeded is None else seeded.generate(observations, seeds=seeds)
        for (s, i), gen in zip(batch, generated):
            text, tagged = model_answer(gen.text)
            item = s.items[i]
            out[s.probe.name][i] = Answer(item.id, gen.text, text, tagged, float(s.probe.score(item, text)))
        if progress is not None:
            progress(len(batch))
    return out


def likelihood(
    model: Any, processor: Any, sets: Sequence[ProbeSet], *, progress: Callable[[int], None] | None = None,
) -> dict[str, list[Answer | None]]:
    """Every item's best choice by ``model``'s log-probability of ``<answer>CHOICE</answer>``
    and the end of its turn after the prompt (the sum over those tokens); None for an item
    without ``choices``. Each item is one call, its choices batched (``choice_logprobs``)."""
    tokenizer = processor.tokenizer
    hf = getattr(model, "module", model)
    eos = hf.generation_config.eos_token_id or tokenizer.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    out: dict[str, list[Answer | None]] = {s.probe.name: [None] * len(s.items) for s in sets}
    for s in sets:
        for i, item in enumerate(s.items):
            if not item.choices:
                continue
            ids = [tokenizer(f"<answer>{c}</answer>", add_special_tokens=False).input_ids + [eos] for c in item.choices]
            totals = choice_logprobs(hf, processor, observation(item), ids)
            best = max(zip(totals, item.choices))[1]
            top = max(totals)
            weights = [math.exp(t - top) for t in totals]
            right = sum(w for w, c in zip(weights, item.choices) if s.probe.score(item, c) > 0) / sum(weights)
            out[s.probe.name][i] = Answer(item.id, best, best, True, float(s.probe.score(item, best)), right)
            if progress is not None:
                progress(len(item.choices))
    return out


def choice_logprobs(model: Any, processor: Any, obs: Any, choices: Sequence[Sequence[int]]) -> list[float]:
    """The summed log-probability of each token sequence in ``choices`` as the completion of
    ``obs``: the prompt (with its picture) runs once, its keys and values are repeated for
    every choice, and the choices run together, at the positions the whole rows would have
    (Qwen2-VL-family M-RoPE, from ``get_rope_index``), so each sum is what a full forward of
    prompt + choice gives, for a fraction of the compute."""
    import torch

    from vzframe.rollout import encode
    from vzframe.train.loss import hf_module

    prompt = encode(processor, [obs])
    n, width, pad = len(choices), max(len(c) for c in choices), processor.tokenizer.pad_token_id
    completion = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, tokens in enumerate(choices):
        completion[row, : len(tokens)], mask[row, : len(tokens)] = torch.tensor(tokens), 1
    length = prompt["input_ids"].shape[1]
    ids = torch.cat([prompt["input_ids"].repeat(n, 1), completion], dim=1)
    full_mask = torch.cat([prompt["attention_mask"].repeat(n, 1), mask], dim=1)
    types = prompt.get("mm_token_type_ids")
    grid = prompt.get("image_grid_thw")
    with torch.no_grad():
        if types is not None:
            full_types = torch.cat([types.repeat(n, 1), torch.zeros_like(completion)], dim=1)
            positions, _ = hf_module(model).model.get_rope_index(ids, full_types, image_grid_thw=None if grid is None else grid.repeat(n, 1),
                                                      attention_mask=full_mask)  # fmt: skip
            head_positions, rest_positions = positions[:, :1, :length], positions[:, :, length:]
            extra = {"mm_token_type_ids": types}
        else:
            head_positions = rest_positions = None
            extra = {}
        pictures = {k: v for k, v in prompt.items() if k in ("pixel_values", "image_grid_thw")}
        head = model(input_ids=prompt["input_ids"], attention_mask=prompt["attention_mask"], position_ids=head_positions,
                     use_cache=True, logits_to_keep=1, **pictures, **extra)  # fmt: skip
        cache = head.cache
        cache.batch_repeat_interleave(n)
        rest_extra = {"mm_token_type_ids": torch.zeros_like(completion)} if types is not None else {}
        rest = model(input_ids=completion, attention_mask=full_mask, position_ids=rest_positions, cache=cache,
                     use_cache=True, **rest_extra)  # fmt: skip
        logits = torch.cat([head.logits[:, -1:, :].float().expand(n, 1, -1), rest.logits[:, :-1, :].float()], dim=1)
        logp = torch.log_softmax(logits, dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(dim=1).tolist()


def summary(answers: Sequence[Answer], items: Sequence[ProbeItem]) -> dict[str, Any]:
    """Accuracy, its standard error (``sd / sqrt(n)``), the share answered in the format asked
    for, and the accuracy of each item kind."""
    scores = [a.score for a in answers]
    acc, se = mean_se(scores)
    kinds: dict[str, list[float]] = {}
    for a, item in zip(answers, items):
        kinds.setdefault(item.kind or "-", []).append(a.score)
    out = {
        "accuracy": acc, "se": se, "n": len(scores),
        "format_rate": sum(a.tagged for a in answers) / max(1, len(answers)),
        "by_kind": {k: {"accuracy": mean_se(v)[0], "n": len(v)} for k, v in sorted(kinds.items())},
    }  # fmt: skip
    if answers and all(a.p_right is not None for a in answers):
        out["p_right"], out["p_right_se"] = mean_se([a.p_right for a in answers if a.p_right is not None])
    return out


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """The mean and its standard error (sample sd over sqrt(n); nan below two values).

    >>> mean_se([1, 0, 1, 1])
    (0.75, 0.25)
    """
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n)


def paired(base: Sequence[Answer], trained: Sequence[Answer]) -> tuple[float, float]:
    """The change in accuracy from ``base`` to ``trained`` (answers to the same items, in the
    same order) and its paired standard error: the standard error of the per-item changes.

    >>> paired([Answer("a", "", "", True, 1.0), Answer("b", "", "", True, 0.0)],
    ...        [Answer("a", "", "", True, 1.0), Answer("b", "", "", True, 1.0)])
    (0.5, 0.5)
    """
    if [a.id for a in base] != [a.id for a in trained]:
        raise ValueError("paired: the two answer lists are not of the same items in the same order")
    return mean_se([t.score - b.score for b, t in zip(base, trained)])


def paired_p_right(base: Sequence[Answer], trained: Sequence[Answer]) -> tuple[float, float] | None:
    """As ``paired``, for the probability on the right choices; None without likelihoods."""
    if not base or any(a.p_right is None for a in (*base, *trained)):
        return None
    return mean_se([t.p_right - b.p_right for b, t in zip(base, trained)])  # type: ignore[operator]
