"""What a toy model is taught, none of it written by a person: caption targets from the image
source's ``describe``, the moves of the game's teacher in whole games, and the text the toy
tokenizer learns its merges from (``corpus``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from plugins.toy_world.world import ToyWorld
from vzframe.models.tiny import CORPUS

BLANK_CLUE = "My picture is blank."
THINK_DESCRIBE = "I describe my picture."
THINK_BLANK = "My picture is blank."
CAPTION_PROMPT = "Describe the picture."
CAPTION_PHRASES = 8
"""Most phrases a caption names (a chart's ``describe`` can list many)."""
CORPUS_TURNS = 440
"""Teacher turns (prompts and targets) the tokenizer learns its merges from."""


def caption(phrases: tuple[str, ...]) -> str:
    """What a caption target says of a picture ``describe`` lists as ``phrases``: each once, in
    ``describe``'s order, at most ``CAPTION_PHRASES``. Sources list a fixed order of kinds
    (``clevr``: by colour, then shape), so the target is a set: the model has to see which
    things are there, not where (listing left to right taught places before kinds, and slowly).

    >>> caption(("a gray sphere", "a red cube", "a red cube"))
    'I see a gray sphere and a red cube.'
    >>> caption(("a bar chart",))
    'I see a bar chart.'
    """
    names = list(dict.fromkeys(phrases))[:CAPTION_PHRASES]
    return "I see " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + "."


def caption_examples(world: ToyWorld, seed: int) -> Iterator[tuple[Any, str]]:
    """Endless (observation, target) pairs on ``CAPTION_PROMPT``: the caption of each picture
    of the source (seeded ``seed + 10_000``), or, one time in ten, a blank white picture of
    the same size and "My picture is blank."."""
    from PIL import Image

    from vzframe.types import ImageItem, Observation

    source = world.source(seed + 10_000)
    rng, index = random.Random(f"captions:{seed}"), 0
    messages = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CAPTION_PROMPT}]},)
    while True:
        item = source.get(index)
        index += 1
        if rng.random() < 0.1:
            item = ImageItem("blank", Image.new("RGB", item.image.size, "#ffffff"), {"blank": True})
            target = f"<think>{THINK_BLANK}</think><answer>{BLANK_CLUE}</answer>"
        elif phrases := tuple(source.describe(item)):
            target = f"<think>{THINK_DESCRIBE}</think><answer>{caption(phrases)}</answer>"
        else:
            continue  # nothing to say of this picture
        yield Observation(1, "player", "clue", messages, (item,)), target


def teacher_games(world: ToyWorld, seed: int, *, clue_share: float = 1.0, clue_stage: str = "clue") -> Iterator[tuple[Any, str]]:
    """Endless (observation, target) pairs from whole games played by the game's teacher in
    every seat, on the source's pictures seeded ``seed``. Each tick is played as a run plays
    it: every mover observes the same state, then the moves are stepped in order. Every turn
    is yielded except turns of stage ``clue_stage``, each kept with probability ``clue_share``
    (all are played)."""
    from vzframe.rollout.play import ImageCursor, new_games, play_moves
    from vzframe.rollout.policy import TeacherPolicy

    source = world.source(seed)
    cursor = ImageCursor(source, rank=0, world=1)
    rng = random.Random(f"teacher:{seed}")
    policy = TeacherPolicy(world.teacher, world.facts(source), rng)
    while True:
        game = new_games(world.game_cls, world.game_config, [rng.randrange(2**31)], cursor)
        for moved in play_moves(game, policy):  # each move is yielded once stepped; stepping draws nothing from rng
            obs = moved.move.observation
            if obs.stage != clue_stage or rng.random() < clue_share:
                yield obs, moved.generation.text


def corpus(world: ToyWorld, seed: int, turns: int = CORPUS_TURNS) -> str:
    """Text the toy tokenizer learns its merges from: the tiny model's ``CORPUS``, the caption
    prompt and a few captions, and the prompts and targets of ``turns`` teacher turns (so the game's own
    phrases are few tokens)."""
    texts = [CORPUS, CAPTION_PROMPT, BLANK_CLUE, THINK_DESCRIBE]
    captions = caption_examples(world, seed + 20_000)
    texts += [next(captions)[1] for _ in range(40)]
    pairs = teacher_games(world, seed + 20_000)
    for _ in range(turns):
        obs, target = next(pairs)
        for message in obs.messages:
            content = message["content"]
            texts += [content] if isinstance(content, str) else [p["text"] for p in content if p.get("type") == "text"]
        texts.append(target)
    return "\n".join(texts)
