"""Probes: zero-label questions with verifiable answers, to ask whether self-play transferred.

Vision-Zero's claim is that playing the game makes a model better at seeing and reasoning on
tasks it never trained on. A **probe** is such a task: a seeded, held-out set of
``(picture, question, answers)`` items that a plugin generates from an image source's own
knowledge of its pictures (CLEVR's scene graph, a chart's data), with a prompt and a scorer.
Nobody labels anything. Plugins register probes with the hook ``register_probes``; a user's own
labelled set on disk is one too (``vzframe.probes.labelled``). ``vzframe probe RUN_DIR`` scores
the base model and every checkpoint on them (``vzframe.probes.command``).

A probe is an object with

- ``name`` (``"clevr.exists"``), ``label`` (a short line for tables) and ``format`` (the name of
  its question format: a base model's stamp may list the formats its warm start taught, so a
  report can tell a sharpened skill from a transferred one: ``in_warm_start``);
- ``sources``: the image sources it can draw from, the first the default (``()`` for a probe
  that brings its own pictures);
- ``items(source, n, seed)``: ``n`` items drawn from ``source`` (seeded ``seed``), pure in both;
- ``score(item, answer)``: 1.0 if ``answer`` (the model's, already taken out of its
  ``<answer>`` tag and normalised) is right, else 0.0.

Two ways to ask a model (``vzframe probe --score``): ``generate`` (default) samples an answer
through the run's rollout engine and scores it; ``likelihood`` ranks an item's ``choices`` by
the log-probability of ``<answer>CHOICE</answer>`` after the prompt, as lm-eval-harness scores
multiple choice: a model that never learnt the answer format (a toy base) is still measured.

**Held out by construction.** A probe's pictures come from its source seeded with
``probe_seed(name, seed)``, a number in ``[2**63, 2**64)``. A run's seed is below ``2**63``
(``RunConfig.seed``), and toy builds, evaluations and the league use small seeds; sources are
pure in ``(seed, index)`` and name their pictures by both (``clevr_toy:SEED:INDEX``), so no probe
picture is ever a picture a run trains or is evaluated on (tests/test_probes.py checks the ids
against a run's and a toy build's).
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from vzframe.parsing import extract_answer, normalize_answer
from vzframe.types import ImageItem, Observation

PROBE_SEED_BASE = 2**63
"""Every probe seed is at least this; every run seed is below it (``RunConfig.seed``)."""

ANSWER_FORMAT = "Think briefly in <think></think>, then give only the answer in <answer></answer>."
"""Appended to every probe question: the answer format of vzframe's games."""

MAX_ANSWER_CHARS = 200
"""A model answer longer than this (after normalisation) is wrong unread."""


@dataclass(frozen=True)
class ProbeItem:
    """One question about one picture, with every answer that counts as right."""

    id: str
    """Stable and unique within its probe, e.g. ``clevr.exists:17``."""
    image: ImageItem | None
    question: str
    answers: tuple[str, ...]
    kind: str = ""
    """A sub-kind for breakdowns (``"decoy"``, ``"blank"``, ``"bar"``); free text."""
    choices: tuple[str, ...] = ()
    """The closed set of answers to rank by likelihood (``vzframe probe --score likelihood``),
    when the question has one (yes / no, the eight colours); empty for an open answer."""


@runtime_checkable
class Probe(Protocol):
    """What ``register_probes`` registers (module docstring)."""

    name: str
    label: str
    format: str
    sources: tuple[str, ...]

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]: ...

    def score(self, item: ProbeItem, answer: str) -> float: ...


def probe_seed(name: str, seed: int = 0) -> int:
    """The seed of probe ``name``'s pictures: in ``[2**63, 2**64)``, out of every run's range,
    and different for every probe name and user ``seed`` (``0 <= seed < 2**24``).

    >>> probe_seed("clevr.exists") >= 2**63, probe_seed("clevr.exists") != probe_seed("clevr.count")
    (True, True)
    """
    if not 0 <= seed < 2**24:
        raise ValueError(f"a probe seed must be in [0, 2**24); got {seed}")
    return PROBE_SEED_BASE + (zlib.crc32(name.encode()) << 24) + seed


def observation(item: ProbeItem) -> Observation:
    """The chat a model answers for ``item``: its picture, its question and ``ANSWER_FORMAT``."""
    content: list[dict[str, Any]] = [{"type": "image"}] if item.image is not None else []
    content.append({"type": "text", "text": f"{item.question} {ANSWER_FORMAT}"})
    images = (item.image,) if item.image is not None else ()
    return Observation(1, "probe", "probe", ({"role": "user", "content": content},), images)


def model_answer(completion: str) -> tuple[str, bool]:
    """The answer in a completion and whether it came in an ``<answer>`` tag: the tag's content,
    else the whole completion (a model that ignores the format may still answer), normalised
    by ``normalize_answer``. Linear in the completion.

    >>> model_answer("<think>two red</think><answer> 2 </answer>"), model_answer("Yes.")
    (('2', True), ('Yes.', False))
    """
    tagged = extract_answer(completion)
    return normalize_answer(completion if tagged is None else tagged), tagged is not None


_WORDS = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}  # fmt: skip
_ARTICLES = {"a", "an", "the"}


def words(text: str) -> tuple[str, ...]:
    """``text`` lowercased into words (letters and digits), number words as digits, articles
    dropped, one scan: how answers are compared.

    >>> words("The answer: Two RED cubes."), words("3.50 k$")
    (('answer', '2', 'red', 'cubes'), ('3.50', 'k'))
    """
    if len(text) > MAX_ANSWER_CHARS:
        return ()
    found = (NUMBER_WORDS.get(w, w) for w in _WORDS.findall(text.lower()))
    return tuple(w for w in found if w not in _ARTICLES)


def same_answer(answer: str, truth: str) -> bool:
    """Whether ``answer`` says ``truth``: the same words (``words``), or, for a number, the same
    value within 1% (so "12.0" is "12", and "1,500" is "1500").

    >>> same_answer("Yes.", "yes"), same_answer("a red cube", "red cube"), same_answer("12.0", "12")
    (True, True, True)
    >>> same_answer("yes, no", "yes"), same_answer("13", "12"), same_answer("1,500", "1500")
    (False, False, True)
    """
    a, t = words(answer.replace(",", "")), words(truth.replace(",", ""))
    if not a or not t:
        return False
    if a == t:
        return True
    x, y = _number(a), _number(t)
    return x is not None and y is not None and abs(x - y) <= 0.01 * max(abs(y), 1e-9)


def _number(ws: tuple[str, ...]) -> float | None:
    if len(ws) != 1:
        return None
    try:
        return float(ws[0])
    except ValueError:
        return None


def any_answer(answer: str, answers: Sequence[str]) -> float:
    """1.0 if ``answer`` is any of ``answers`` (``same_answer``), else 0.0: the usual scorer."""
    return 1.0 if any(same_answer(answer, t) for t in answers) else 0.0


@dataclass(frozen=True)
class Ask:
    """What ``GeneratedProbe.ask`` asks of one picture: the question, every right answer, a
    sub-kind, the closed set of choices (if any), and the picture to show when it is not the
    one drawn (a blank picture, a twin)."""

    question: str
    answers: tuple[str, ...]
    kind: str = ""
    choices: tuple[str, ...] = ()
    image: ImageItem | None = None


MAX_DRAWS_PER_ITEM = 50
"""``GeneratedProbe.items`` gives up after this many pictures per item asked for (plus 100)."""


class GeneratedProbe:
    """Base class of probes generated from an image source. Write ``ask(picture, rng, source)``:
    the question to ask of one picture drawn from ``source`` (an ``Ask``), or None to skip it.
    ``items`` draws the source's pictures in order, numbers the items (``NAME:0``, ``NAME:1``,
    ...) and takes every random choice from one generator seeded by the probe's name and
    ``seed``; ``score`` is ``any_answer``."""

    name = ""
    label = ""
    format = ""
    sources: tuple[str, ...] = ()

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        raise NotImplementedError

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng = random.Random(f"{self.name}:{seed}")
        out: list[ProbeItem] = []
        for index in range(MAX_DRAWS_PER_ITEM * n + 100):
            if len(out) >= n:
                break
            picture = source.get(index)
            asked = self.ask(picture, rng, source)
            if asked is not None:
                shown = asked.image if asked.image is not None else picture
                out.append(ProbeItem(f"{self.name}:{len(out)}", shown, asked.question, tuple(asked.answers), asked.kind,
                                     tuple(asked.choices)))  # fmt: skip
        return out

    def score(self, item: ProbeItem, answer: str) -> float:
        return any_answer(answer, item.answers)
