"""What a toy model is taught, none of it written by a person: caption targets from the image
source's ``describe``, the moves of the game's teacher in whole games, and the text the toy
tokenizer learns its merges from (``corpus``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

from plugins.toy_world.world import ToyWorld
from vzframe.models.tiny import CORPUS
from vzframe.parsing import without_article

BLANK_CLUE = "My picture is blank."
THINK_DESCRIBE = "I describe my picture."
THINK_BLANK = "My picture is blank."
CAPTION_PROMPT = "Describe the picture."
CAPTION_PHRASES = 8
"""Most phrases a caption names (a chart's ``describe`` can list many)."""
CORPUS_TURNS = 440
"""Teacher turns (prompts and targets) the tokenizer learns its merges from."""
CHECK_QUESTION = 'A player says: "{claim}" Is that true of your picture?'
"""How a check example asks (``check_examples``): the wording of the ``clevr.verify`` probe."""
CHECK_PROBE = "clevr.verify"
"""The probe whose question and answer format the check stage teaches (on the build's own
pictures, never the probe's): a built model's stamp lists it in ``probe_formats``."""
BLANK_SHARE = 0.1
"""Share of check pictures that are blank: every claim about one is false (the spy's view)."""

PHRASE_MEMORY = 512
"""Distinct phrases ``check_examples`` remembers for its false claims (the most recent): every
kind a CLEVR source has, and a bound for a source whose phrases never repeat."""


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


def claim_words(phrases: Iterable[str]) -> list[str]:
    """The words of ``describe``'s phrases that a one-word claim names: each phrase without its
    article, split, in order, each once.

    >>> claim_words(("a red cube", "an orange sphere", "a red sphere"))
    ['red', 'cube', 'orange', 'sphere']
    """
    return list(dict.fromkeys(w for p in phrases for w in without_article(p).split()))


def check_examples(world: ToyWorld, seed: int, *, words: float) -> Iterator[tuple[Any, str]]:
    """Endless (observation, target) pairs that ask whether a player's claim is true of the
    picture (``CHECK_QUESTION``), answered yes or no, on the source's pictures seeded ``seed +
    40_000``. Half the claims are true (a phrase ``describe`` gives for the picture: "There is a
    red cube."), half false: a phrase of another picture that this one lacks, sharing a word
    with one of its phrases where one does (the harder decoy: a red sphere beside a red cube).
    With probability ``words`` the claim is one word of such a phrase instead ("There is
    something red."), true when some phrase of the picture has it: the one-attribute check a
    small model learns first. One picture in ten is blank, and every claim about it is false.
    The reasoning repeats the claim and gives the verdict (``<think>red cube no</think>``), the
    shape of one check in a vote's reasoning (``games.spy.teacher.checks``)."""
    from PIL import Image

    from vzframe.probes import ANSWER_FORMAT
    from vzframe.types import ImageItem, Observation

    source = world.source(seed + 40_000)
    rng, index = random.Random(f"checks:{seed}"), 0
    seen_phrases: dict[str, None] = {}  # the last PHRASE_MEMORY distinct phrases, oldest first
    while True:
        item = source.get(index)
        index += 1
        phrases = tuple(dict.fromkeys(source.describe(item)))
        if not phrases:
            continue
        for phrase in phrases:
            seen_phrases.pop(phrase, None)
            seen_phrases[phrase] = None
        while len(seen_phrases) > PHRASE_MEMORY:
            del seen_phrases[next(iter(seen_phrases))]
        blank = rng.random() < BLANK_SHARE
        true = not blank and rng.random() < 0.5
        if rng.random() < words:
            own = claim_words(phrases)
            other = [w for w in claim_words(seen_phrases) if w not in own]
            if not other:
                continue
            said = rng.choice(own if true or blank else other)
            claim = f"There is something {said}."
        else:
            others = [p for p in seen_phrases if p not in phrases]
            if not others:
                continue
            own_words = set(claim_words(phrases))
            near = [p for p in others if own_words & set(claim_words((p,)))]
            false = rng.choice(near if near and rng.random() < 0.5 else others)
            said = rng.choice(phrases) if true or blank else false
            claim, said = f"There is {said}.", without_article(said)
        if blank:
            item = ImageItem("blank", Image.new("RGB", item.image.size, "#ffffff"), {"blank": True})
        question = f"{CHECK_QUESTION.format(claim=claim)} {ANSWER_FORMAT}"
        messages = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},)
        verdict = "yes" if true else "no"
        yield Observation(1, "player", "check", messages, (item,)), f"<think>{said} {verdict}</think><answer>{verdict}</answer>"


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
