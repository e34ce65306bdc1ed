"""The toy world's base model: a small Qwen2.5-VL that speaks a game's language.

``build_toy(DIR, game="games.X")`` (the command ``vzframe model build-toy DIR --game games.X``)
stands in for the pretrained VLM a researcher would bring, for any installed game that has a
teacher (``Game.teacher``, docs/plugins.md "A teacher") on any image source that can describe
its pictures (``describe(item)``: ``clevr``, ``clevr_toy``, ``charts``). It makes a small
Qwen2.5-VL (``TOY_SHAPE``) with a tokenizer trained on the game's own text, then warm-starts
it with plain supervised steps. No person writes a target (``targets.py`` writes them):

- **look stage** (``look_steps``): the vision tower alone learns which kinds of thing
  ``describe`` names (a multi-label loss through a temporary head, ``look``), as a pretrained
  VLM's vision encoder already knows them; the later stages leave it as it is;
- **caption stage** (``caption_steps``): a short prompt (``CAPTION_PROMPT``) answered with what
  the source's ``describe`` lists, in its fixed order (a set, not a left-to-right scan): ``<think>I
  describe my picture.</think><answer>I see a red cube and a blue sphere.</answer>``; one picture
  in ten is blank and answered "My picture is blank." Cheap: it teaches the vision tower.
- **game stage** (``game_steps``): the observations of whole games played by the game's
  teacher, every seat, with the teacher's moves as targets: every decision turn and a
  ``clue_share`` of clue turns;
- **fine stage** (``fine_steps``): more of the teacher's games, in small batches
  (``fine_batch``) at a lower learning rate, where the decisions are learnt.

The warm-start is short on purpose: the base plays better than chance but far from perfectly,
so self-play has something to learn. At the end the build plays ``heldout_games`` games on
pictures it never saw (``heldout.py``) and writes the figures, with standard errors, into
``vzframe-toy.json`` beside the weights, with the budget and the loss curve.

The build is deterministic: the same game, source, seed and budget on the same software give
the same weights. ``TOY_MODEL_DIR`` (registered as model ``toy-world``, the spy game's
default) is the spy game's build refined on the teacher's games of seed 1
(``examples/toy_world_refine.py``), shipped with this plugin (bf16 weights, 7.5 MB) so nobody
waits for it.
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

from plugins.toy_world.targets import CHECK_PROBE, caption_examples, check_examples, corpus, teacher_games
from plugins.toy_world.world import ToyWorld, toy_world
from vzframe.config import ConfigError
from vzframe.models.tiny import Shape, build_tiny, written_atomically

TOY_MODEL_DIR = Path(__file__).with_name("model")
"""The shipped toy base model (built by ``vzframe model build-toy`` with the defaults, then
refined on seed 1 by ``examples/toy_world_refine.py``: docs/toy-world.md "The base model")."""

TOY_SHAPE = Shape(
    hidden=256, layers=4, heads=4, kv_heads=2, intermediate=512,
    vision_hidden=128, vision_depth=4, vision_heads=2, tie_embeddings=True,
)
"""3.77 M parameters: text 4 layers of width 256; vision 4 blocks of width 128."""


@dataclass(frozen=True)
class WarmStart:
    """The warm-start budget, optimiser and held-out games (the defaults build the shipped spy model before its refinement)."""

    seed: int = 0
    look_steps: int = 2400
    """Steps of the look stage (``look``): the vision tower learns which kinds of thing
    ``describe`` names, before any text is trained. The tower was under-trained at 1,200 steps
    from 4,000 pictures (on held-out pictures the look head found a picture's first kind 0.79 of
    the time and the spy base's clues were 0.65 true); 2,400 steps from 16,000 pictures: 0.93,
    and clues 0.91 true (docs/toy-world.md "Why the longer look stage")."""
    look_batch: int = 32
    look_pool: int = 16000
    """Pictures the look stage draws its batches from (encoded once: about 3.6 GB of float16
    pixels for ``clevr_toy``'s 168x112 pictures)."""
    caption_steps: int = 400
    game_steps: int = 300
    batch_size: int = 16
    """Examples per caption and game step."""
    fine_steps: int = 2000
    """Steps of the fine stage: the game stage's teacher play again, ``fine_batch`` observations
    a step at ``fine_lr``, with a fresh optimiser and no caption replays. Without it the votes
    sat on a plateau (a uniform guess of a player number, vote accuracy 0.29 on held-out games)
    through 400 game steps of 16; 1000 more steps of 4 left it after about 500 (0.57). Votes
    that write a check per clue are longer to learn: their loss fell from 0.31 to 0.16 by step
    1000 and to 0.09 by step 2000."""
    fine_batch: int = 4
    fine_lr: float = 5e-4
    lr: float = 1e-3
    warmup_steps: int = 50
    clue_share: float = 0.3
    """Share of the turns of stage ``clue_stage`` kept in game steps (turns of other stages are
    all kept): in the spy game 2.4 clues to 3 votes a game."""
    clue_stage: str = "clue"
    """The stage whose turns ``clue_share`` thins: the game's many speaking turns (``clue`` in
    the shipped games). A game without it keeps every turn, and the build says so."""
    vocab_size: int = 1536
    heldout_games: int = 128
    """Games played on held-out pictures at the end, for the figures in vzframe-toy.json (0: none)."""
    check_steps: int = 1500
    """Steps of the check stage, after the caption stage (0: none):
    ``batch_size`` examples a step that ask whether a player's claim is true of the picture,
    answered yes or no (``targets.check_examples``: true claims, decoys of another picture,
    blank pictures). The first ``check_word_steps`` of them claim one word ("There is something
    red.") at ``lr``; the rest mix those half and half with whole-phrase claims at ``check_lr``,
    with a fresh optimiser. Whole-phrase checks alone leave a small model at its prior ("no" to
    everything, or "blank: no, else yes"); the one-word check is learnt first, then the mix."""
    check_word_steps: int = 750
    check_lr: float = 3e-4
    check_replay: int = 5
    """In the game and fine stages every ``check_replay``-th step is a check step of the mix (0:
    none; a caption replay goes first where both fall on one step), so the teacher's games do
    not wash out the check."""
    caption_replay: int = 4
    """In the game stage every ``caption_replay``-th step is a caption step (0: none), so the
    game's targets do not wash out what the pictures taught. Needed when the vision tower
    trains with the text (``look_steps=0``): a spy build without it forgot how to caption and
    its clues were true 23% of the time. With the look stage the vision tower is kept and
    the replays keep the language model's captions."""

    def __post_init__(self) -> None:
        for name in ("look_steps", "caption_steps", "game_steps", "fine_steps", "heldout_games", "warmup_steps", "caption_replay",
                     "check_steps", "check_word_steps", "check_replay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"build-toy: {name} must be >= 0; got {getattr(self, name)}.")
        if self.look_batch < 1 or self.look_pool < 1:
            raise ConfigError(f"build-toy: look_batch and look_pool must be >= 1; got {self.look_batch}, {self.look_pool}.")
        if self.batch_size < 1 or self.fine_batch < 1 or not 0.0 <= self.clue_share <= 1.0:
            raise ConfigError(f"build-toy: batch_size and fine_batch must be >= 1 and clue_share in [0, 1]; "
                              f"got {self.batch_size}, {self.fine_batch}, {self.clue_share}.")
        if self.check_word_steps > self.check_steps:
            raise ConfigError(f"build-toy: check_word_steps ({self.check_word_steps}) is part of check_steps ({self.check_steps}); "
                              "it cannot be more. Set both (--check-steps N --check-word-steps M, M <= N; 0 and 0: no check stage).")
        if self.heldout_games == 1:
            raise ConfigError("build-toy: heldout_games must be 0 (none) or at least 2 (for a standard error).")


# ---- the warm-start --------------------------------------------------------------------


def build_toy(
    out_dir: str | Path,
    settings: WarmStart = WarmStart(),
    *,
    game: str = "games.spy",
    images: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Build the toy base model of game plugin ``game`` on image source ``images`` (default:
    the game's ``default_images``, else ``clevr_toy``) into ``out_dir``, with its held-out
    figures (see the module docstring); return ``out_dir``. A game without a teacher or a
    source without ``describe`` is refused with a ``ConfigError`` before any work."""
    world = toy_world(game, images)
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    with written_atomically(out_dir, prefix=".toy-") as tmp:
        t0 = time.perf_counter()
        build_tiny(tmp, seed=settings.seed, vocab_size=settings.vocab_size, shape=TOY_SHAPE,
                   corpus=corpus(world, settings.seed), max_pixels=world.max_pixels)
        (tmp / "vzframe-tiny.json").unlink()  # this is not the tiny model; vzframe-toy.json says what it is
        seconds["tokenizer"] = round(time.perf_counter() - t0, 1)
        processor = AutoProcessor.from_pretrained(tmp)
        torch.manual_seed(settings.seed)
        model = AutoModelForImageTextToText.from_pretrained(tmp, dtype=torch.float32)
        log(f"toy model for game {world.game_name!r} on {world.images!r} pictures: "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
        s = settings
        clock = BuildClock(s.look_steps + s.caption_steps + s.check_steps + s.game_steps + s.fine_steps)
        history = look(model, processor, settings, world, log=log, seconds=seconds, clock=clock)
        history += supervised(model, processor, settings, world, log=log, seconds=seconds, clock=clock)
        model.to(torch.bfloat16).save_pretrained(tmp)
        stamp: dict[str, Any] = {
            "kind": "toy-world", "game": world.plugin, "game_name": world.game_name, "image_source": world.images,
            "images": world.source_config.model_dump(mode="json"), "max_pixels": world.max_pixels,
            "warm_start": asdict(settings), "history": history, "seconds": seconds,
            "probe_formats": [CHECK_PROBE] if settings.check_steps else [],  # what `vzframe probe` reads as taught
        }  # fmt: skip
        if settings.heldout_games:
            from plugins.toy_world.heldout import format_figures, heldout_figures

            t0 = time.perf_counter()
            stamp["heldout"] = heldout_figures(tmp, games=settings.heldout_games, world=world)
            stamp["heldout"]["model"]["path"] = "."  # this directory; no machine path in a shipped stamp
            seconds["heldout"] = round(time.perf_counter() - t0, 1)
            log(format_figures(stamp["heldout"]))
        (tmp / "vzframe-toy.json").write_text(json.dumps(stamp, indent=1))
    return out_dir


class BuildClock:
    """How far a build is beyond its stage's step count: optimizer steps done of all stages'
    steps, and the time left at the pace so far (the held-out games come after)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def __str__(self) -> str:
        pace = (time.perf_counter() - self.start) / max(self.done, 1)
        return f"build {self.done / max(self.total, 1):.0%} of {self.total} steps, about {pace * (self.total - self.done) / 60:.0f} min left"


def train_stage(
    stage: str, steps: int, loss_of_step: Callable[[int], Any], optimizer: Any, params: list, s: WarmStart, *,
    log: Callable[[str], None], t0: float, clock: BuildClock | None = None,
) -> list[dict]:  # fmt: skip
    """``steps`` optimizer steps on ``loss_of_step(step)``, the stage's own schedule (a linear
    warm-up over ``s.warmup_steps``, then a cosine decay to 0.55 of ``s.lr`` over the stage)
    and gradients clipped to norm 1 over ``params``. Returns the mean loss of every 50 steps
    (and of the last few), as logged with the seconds since ``t0``."""
    import torch

    shape = lambda i: min(1.0, (i + 1) / max(s.warmup_steps, 1)) * (0.55 + 0.45 * math.cos(math.pi * i / max(steps, 1)))  # noqa: E731
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, shape)
    history, running = [], 0.0
    for step in range(steps):
        loss = loss_of_step(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        running += loss.item()
        if clock is not None:
            clock.done += 1
        if (step + 1) % 50 == 0 or step + 1 == steps:
            n = (step % 50) + 1
            history.append({"stage": stage, "step": step + 1, "loss": round(running / n, 4)})
            overall = f"; {clock}" if clock is not None else ""
            log(f"warm-start {stage} step {step + 1}/{steps}: loss {running / n:.3f} ({time.perf_counter() - t0:.0f} s{overall})")
            running = 0.0
    return history


def look(
    model: Any, processor: Any, s: WarmStart, world: ToyWorld, *,
    log: Callable[[str], None] = print, seconds: dict[str, float] | None = None, clock: BuildClock | None = None,
) -> list[dict]:  # fmt: skip
    """The look stage: ``look_steps`` steps that teach the vision tower alone which kinds of
    thing the source's ``describe`` names, as a pretrained VLM's vision encoder already knows
    them. A temporary linear head scores every phrase at every image token; a picture's score
    for a phrase is the log-sum-exp over its tokens (some token must show it), trained with
    binary cross-entropy against the phrases ``describe`` lists (blank pictures, one in ten,
    list none). The head is dropped afterwards; the language model is not touched.

    Captions alone teach this slowly: after 500 caption steps a model named the right colour
    98% of the time but the right shape no better than chance (its captions were 41% true);
    1000 look steps alone reach 82% (the top-k phrases of held-out pictures). Pictures come
    from a pool of ``look_pool`` (seeded ``seed + 30_000``), encoded once."""
    import torch
    from PIL import Image

    if not s.look_steps:
        return []
    t_stage = time.perf_counter()
    source, rng = world.source(s.seed + 30_000), random.Random(f"look:{s.seed}")
    pool = []
    for index in range(min(s.look_pool, s.look_steps * s.look_batch)):
        item = source.get(index)
        pool.append(((), Image.new("RGB", item.image.size, "#ffffff")) if rng.random() < 0.1 else (tuple(source.describe(item)), item.image))
    vocabulary = sorted({phrase for phrases, _ in pool for phrase in phrases})
    if not vocabulary:
        raise ConfigError(f"build-toy: image source {world.images!r} described none of {len(pool)} pictures; its describe(item) must name what a picture shows.")
    column = {phrase: k for k, phrase in enumerate(vocabulary)}
    visual = model.model.visual
    merge = visual.spatial_merge_size**2
    encoded = []  # (pixel values as float16, grid, target) per picture
    for start in range(0, len(pool), 64):
        chunk = pool[start : start + 64]
        x = processor.image_processor(images=[image for _, image in chunk], return_tensors="pt")
        sizes = x["image_grid_thw"].prod(-1).tolist()
        for (phrases, _), pixels, grid in zip(chunk, x["pixel_values"].split(sizes), x["image_grid_thw"]):
            target = torch.zeros(len(vocabulary))
            target[[column[p] for p in phrases]] = 1.0
            encoded.append((pixels.half(), grid, target))
    head = torch.nn.Linear(visual.config.out_hidden_size, len(vocabulary))
    params = [*visual.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def loss_of_step(step: int) -> Any:
        batch = rng.sample(encoded, min(s.look_batch, len(encoded)))
        grids = torch.stack([grid for _, grid, _ in batch])
        tokens = visual(torch.cat([pixels for pixels, _, _ in batch]).float(), grid_thw=grids).pooler_output
        scores = torch.stack([t.logsumexp(0) for t in head(tokens).split((grids.prod(-1) // merge).tolist())])
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, torch.stack([t for _, _, t in batch]))

    visual.train()
    history = train_stage("look", s.look_steps, loss_of_step, optimizer, params, s, log=log, t0=t_stage, clock=clock)
    if seconds is not None:
        seconds["look"] = round(time.perf_counter() - t_stage, 1)
    return history


def supervised(
    model: Any, processor: Any, s: WarmStart, world: ToyWorld, *,
    log: Callable[[str], None] = print, seconds: dict[str, float] | None = None, clock: BuildClock | None = None,
) -> list[dict]:  # fmt: skip
    """Caption steps, game steps, then fine steps: AdamW on the mean token NLL of the targets,
    each stage with its own schedule (``train_stage``); the fine stage starts a fresh optimiser
    at ``fine_lr``. The vision tower is frozen when the look stage ran. Returns the loss every
    50 steps; adds each stage's seconds to ``seconds``."""
    import torch

    from vzframe.train.loss import collate, completion_logprobs
    from vzframe.types import Sample

    tokenizer = processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    visual = model.model.visual
    visual.requires_grad_(not s.look_steps)  # what the look stage taught stays: text steps would wash it out
    trainable = [p for p in model.parameters() if p.requires_grad]
    adamw = lambda lr: torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))  # noqa: E731
    optimizer = adamw(s.lr)
    captions = caption_examples(world, s.seed)  # one stream: game-stage replays continue it
    stages_played = {spec.stage for spec in world.game_cls.phases.values()}
    if s.clue_share < 1 and s.clue_stage not in stages_played:
        log(f"build-toy: clue_share={s.clue_share} thins turns of stage {s.clue_stage!r}, which {world.plugin} does not "
            f"have (its stages: {sorted(stages_played)}); every turn is kept. Set WarmStart(clue_stage=...) to thin one.")
    games = teacher_games(world, s.seed, clue_share=s.clue_share, clue_stage=s.clue_stage)  # one stream: the fine stage plays new games
    checks = check_examples(world, s.seed + 1, words=0.5) if s.check_steps else iter(())  # the mix; its replays continue it
    # stage, its examples, steps, examples a step, caption replays, check replays
    stages = (
        ("caption", captions, s.caption_steps, s.batch_size, 0, 0),
        ("check-words", check_examples(world, s.seed, words=1.0) if s.check_word_steps else iter(()), s.check_word_steps, s.batch_size, 0, 0),
        ("check", checks, s.check_steps - s.check_word_steps, s.batch_size, 0, 0),
        ("game", games, s.game_steps, s.batch_size, s.caption_replay, s.check_replay),
        ("fine", games, s.fine_steps, s.fine_batch, 0, s.check_replay),
    )
    history, t0 = [], time.perf_counter()
    model.train()
    for stage, stream, steps, size, replays, check_replays in stages:
        if not steps:
            continue
        t_stage = time.perf_counter()
        if stage == "fine":
            optimizer = adamw(s.fine_lr)
        stage_optimizer = adamw(s.check_lr) if stage == "check" else optimizer  # the others go on with theirs

        def loss_of_step(
            step: int, stream: Iterator = stream, size: int = size, replays: int = replays, check_replays: int = check_replays
        ) -> Any:
            replay = replays and step % replays == replays - 1
            check = not replay and check_replays and step % check_replays == check_replays - 1
            pairs = [next(captions if replay else checks if check else stream) for _ in range(size)]
            samples = [Sample(obs, (*tokenizer.encode(t, add_special_tokens=False), end), 1.0, 0, 0) for obs, t in pairs]
            batch = collate(processor, samples, tokenizer.pad_token_id)
            mask = batch["completion_mask"].float()
            return -(completion_logprobs(model, batch) * mask).sum() / mask.sum()

        history += train_stage(stage, steps, loss_of_step, stage_optimizer, trainable, s, log=log, t0=t0, clock=clock)
        if seconds is not None:
            seconds[stage] = round(time.perf_counter() - t_stage, 1)
    visual.requires_grad_(True)
    model.eval()
    return history
