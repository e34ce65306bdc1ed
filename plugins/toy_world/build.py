"""The toy world's base model: a small Qwen2.5-VL that speaks the spy game's language.

``build_toy(DIR)`` (the command ``vzframe model build-toy DIR``) stands in for the pretrained
VLM a researcher would bring. It makes a small Qwen2.5-VL (``TOY_SHAPE``) with a tokenizer
trained on the game's own text, then warm-starts it with plain supervised steps on
procedurally rendered CLEVR-like scenes (``clevr_toy`` pictures). Every target is written
from the scene graph, never by a person (``Teacher``):

- a clue names one object the player sees: ``<think>I describe my picture.</think>
  <answer>There is a red cube.</answer>``; a player whose picture is blank either says so or
  makes an object up (half and half), so both behaviours are in the base policy for
  self-play to reweigh;
- a vote names the player whose clue does not fit the voter's scene (a "blank" clue, or an
  object the scene lacks), or ``N/A`` when every clue fits.

Two stages, like a VLM's pre-training and instruction tuning: ``caption_steps`` on a short
prompt (cheap: it teaches the vision tower colours and shapes), then ``game_steps`` on the
observations of real ``games.spy`` games. The warm-start is short on purpose: the base
votes better than chance but far from perfectly, so self-play has something to learn.

The build is deterministic: the same seed and budget on the same software give the same
weights. ``TOY_MODEL_DIR`` (registered as model ``toy-world``, the spy game's default) is
shipped with this plugin (bf16 weights, 7.5 MB) so nobody waits for the build.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vzframe.models.tiny import _CORPUS, Shape, build_tiny, written_atomically

TOY_MODEL_DIR = Path(__file__).with_name("model")
"""The shipped toy base model (built by ``vzframe model build-toy`` with the defaults)."""

TOY_SHAPE = Shape(
    hidden=256, layers=4, heads=4, kv_heads=2, intermediate=512,
    vision_hidden=128, vision_depth=4, vision_heads=2, tie_embeddings=True,
)
"""3.77 M parameters: text 4 layers of width 256; vision 4 blocks of width 128."""

TOY_IMAGES = {"width": 168, "height": 112, "min_objects": 2, "max_objects": 4, "supersample": 1}
"""The ``clevr_toy`` pictures: 168x112 (24 image tokens), 2 to 4 objects."""

BLANK_CLUE = "My picture is blank."
THINK_DESCRIBE = "I describe my picture."
THINK_BLANK = "My picture is blank."
THINK_BLUFF = "I must blend in."
CAPTION_PROMPT = "List every object in the picture."


@dataclass(frozen=True)
class WarmStart:
    """The warm-start budget and optimiser (the defaults built the shipped model)."""

    seed: int = 0
    caption_steps: int = 1500
    game_steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 50
    clue_share: float = 0.4
    """Share of clue turns kept in game steps (every vote is kept): about half votes."""
    vocab_size: int = 1536


# ---- the teacher: targets from scene graphs ---------------------------------------------


def object_phrase(obj: dict) -> str:
    """``{"color": "red", "shape": "cube"}`` -> ``"red cube"``."""
    return f"{obj['color']} {obj['shape']}"


def clue_text(obj: dict) -> str:
    return f"There is a {object_phrase(obj)}."


def clue_target(rng: random.Random, objects: list[dict] | None, said: list[str]) -> str:
    """A one-sentence clue about the scene ``objects`` (None: the picture is blank), preferring
    an object this player has not named yet (``said``)."""
    from plugins.clevr.scene import COLORS, SHAPES

    if objects is None:
        if rng.random() < 0.5:
            return f"<think>{THINK_BLANK}</think><answer>{BLANK_CLUE}</answer>"
        made_up = {"color": rng.choice(list(COLORS)), "shape": rng.choice(SHAPES)}
        return f"<think>{THINK_BLUFF}</think><answer>{clue_text(made_up)}</answer>"
    fresh = [o for o in objects if clue_text(o) not in said] or objects
    return f"<think>{THINK_DESCRIBE}</think><answer>{clue_text(rng.choice(fresh))}</answer>"


def misfits(clues: list[tuple[int, str]], objects: list[dict], voter: int) -> list[int]:
    """Players (not ``voter``) with a clue that does not fit the scene ``objects``."""
    present = {clue_text(o) for o in objects}
    return sorted({p for p, clue in clues if p != voter and clue not in present})


def vote_target(clues: list[tuple[int, str]], objects: list[dict], voter: int) -> str:
    """Vote for the one player whose clue does not fit; N/A when none (or several) do."""
    odd = misfits(clues, objects, voter)
    if len(odd) == 1:
        return f"<think>Player {odd[0]} does not fit my picture.</think><answer>{odd[0]}</answer>"
    return "<think>Every clue fits my picture.</think><answer>N/A</answer>"


def _scene(observation: Any) -> list[dict] | None:
    meta = observation.images[0].meta
    return None if meta.get("blank") else meta["objects"]


def teacher_games(seed: int, *, clue_share: float = 1.0) -> Iterator[tuple[Any, str]]:
    """Endless (observation, target) pairs from ``games.spy`` games played by the teacher;
    every vote, and each clue turn with probability ``clue_share`` (all are played)."""
    from games.spy.game import SpyConfig, SpyGame
    from plugins.clevr import ClevrToySource, ToyConfig
    from vzframe.parsing import extract_answer

    source = ClevrToySource(ToyConfig(), seed=seed)
    rng, index = random.Random(f"teacher:{seed}"), 0
    while True:
        game = SpyGame(SpyConfig(), seed=rng.randrange(2**31), images=lambda: source.get(index))
        index += 1
        said: dict[int, list[str]] = {p: [] for p in game.seats}
        clues: list[tuple[int, str]] = []
        while acting := game.to_act():
            for player in acting:
                obs = game.observe(player)
                if obs.stage == "clue":
                    target = clue_target(rng, _scene(obs), said[player])
                    answer = extract_answer(target) or ""
                    said[player].append(answer)
                    clues.append((player, answer))
                else:
                    target = vote_target(clues, _scene(obs), player)
                if obs.stage == "decision" or rng.random() < clue_share:
                    yield obs, target
                game.step(player, target)


def scene_list(objects: list[dict]) -> str:
    """Every object, in CLEVR's colour order then by shape: ``"a gray cylinder, a red cube and
    a blue sphere"``. A fixed order of kinds (not of places) makes the target a set: the model
    has to see which objects are there, not where."""
    from plugins.clevr.scene import COLORS, SHAPES

    key = lambda o: (list(COLORS).index(o["color"]), SHAPES.index(o["shape"]))  # noqa: E731
    names = [f"a {object_phrase(o)}" for o in sorted(objects, key=key)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def caption_examples(seed: int) -> Iterator[tuple[Any, str]]:
    """Endless (observation, target) pairs on a short prompt: every object of the scene from
    left to right (a target with no ambiguity, so the vision tower learns fast), or "blank"
    for one picture in ten."""
    from PIL import Image

    from plugins.clevr import ClevrToySource, ToyConfig
    from vzframe.types import ImageItem, Observation

    source = ClevrToySource(ToyConfig(), seed=seed + 10_000)
    rng, index = random.Random(f"captions:{seed}"), 0
    while True:
        if rng.random() < 0.1:
            item = ImageItem("blank", Image.new("RGB", (TOY_IMAGES["width"], TOY_IMAGES["height"]), "#ffffff"), {"blank": True})
            target = f"<think>{THINK_BLANK}</think><answer>{BLANK_CLUE}</answer>"
        else:
            item = source.get(index)
            index += 1
            target = f"<think>{THINK_DESCRIBE}</think><answer>I see {scene_list(item.meta['objects'])}.</answer>"
        messages = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CAPTION_PROMPT}]},)
        yield Observation(1, "player", "clue", messages, (item,)), target


def corpus(seed: int, games: int = 40) -> str:
    """Text the toy tokenizer learns its merges from: the tiny corpus, and the prompts and
    targets of teacher games (so the game's own phrases are few tokens)."""
    pairs = teacher_games(seed + 20_000)
    texts = [_CORPUS, CAPTION_PROMPT]
    for _ in range(games * 11):
        obs, target = next(pairs)
        texts += [m["content"] if isinstance(m["content"], str) else m["content"][-1]["text"] for m in obs.messages]
        texts.append(target)
    return "\n".join(texts)


# ---- the warm-start --------------------------------------------------------------------


def build_toy(
    out_dir: str | Path, settings: WarmStart = WarmStart(), *, log: Callable[[str], None] = print
) -> Path:
    """Build the toy base model into ``out_dir`` (see the module docstring); return it."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out_dir = Path(out_dir)
    with written_atomically(out_dir, prefix=".toy-") as tmp:
        w, h = TOY_IMAGES["width"], TOY_IMAGES["height"]
        build_tiny(tmp, seed=settings.seed, vocab_size=settings.vocab_size, shape=TOY_SHAPE,
                   corpus=corpus(settings.seed), max_pixels=w * h)
        (tmp / "vzframe-tiny.json").unlink()  # this is not the tiny model; vzframe-toy.json says what it is
        processor = AutoProcessor.from_pretrained(tmp)
        torch.manual_seed(settings.seed)
        model = AutoModelForImageTextToText.from_pretrained(tmp, dtype=torch.float32)
        log(f"toy model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
        history = supervised(model, processor, settings, log=log)
        model.to(torch.bfloat16).save_pretrained(tmp)
        stamp = {"kind": "toy-world", "warm_start": asdict(settings), "images": TOY_IMAGES, "history": history}
        (tmp / "vzframe-toy.json").write_text(json.dumps(stamp, indent=1))
    return out_dir


def supervised(model: Any, processor: Any, s: WarmStart, *, log: Callable[[str], None] = print) -> list[dict]:
    """Caption steps, then game steps: AdamW on the mean token NLL of the targets; each stage
    warms up linearly and decays by a cosine to a tenth. Returns the loss every 50 steps."""
    import torch

    from vzframe.train.loss import collate, completion_logprobs
    from vzframe.types import Sample

    tokenizer = processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01, betas=(0.9, 0.98))
    stages = (
        ("caption", caption_examples(s.seed), s.caption_steps),
        ("game", teacher_games(s.seed, clue_share=s.clue_share), s.game_steps),
    )
    history, done, t0 = [], 0, time.perf_counter()
    model.train()
    for stage, stream, steps in stages:
        shape = lambda i, n=steps: min(1.0, (i + 1) / s.warmup_steps) * (0.55 + 0.45 * math.cos(math.pi * i / max(n, 1)))  # noqa: E731
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, shape)
        running = 0.0
        for step in range(steps):
            pairs = [next(stream) for _ in range(s.batch_size)]
            samples = [Sample(obs, (*tokenizer.encode(t, add_special_tokens=False), end), 1.0, 0, 0) for obs, t in pairs]
            batch = collate(processor, samples, tokenizer.pad_token_id)
            mask = batch["completion_mask"].float()
            loss = -(completion_logprobs(model, batch) * mask).sum() / mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            running += loss.item()
            done += 1
            if (step + 1) % 50 == 0 or step + 1 == steps:
                n = (step % 50) + 1
                history.append({"stage": stage, "step": step + 1, "loss": round(running / n, 4)})
                log(f"warm-start {stage} step {step + 1}/{steps}: loss {running / n:.3f} ({time.perf_counter() - t0:.0f} s)")
                running = 0.0
    model.eval()
    return history
