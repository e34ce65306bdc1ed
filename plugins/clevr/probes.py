"""CLEVR probes: questions about a scene whose answers its scene graph knows.

Four probes, each its own figure, on the ``clevr`` or ``clevr_toy`` source (pictures seeded by
``vzframe.probes.probe_seed``, never a run's):

| probe | question | answers |
|---|---|---|
| ``clevr.exists`` | Is there a green cylinder in the picture? | yes / no (half each; the absent kinds share a colour or a shape with the scene where they can) |
| ``clevr.count`` | How many cubes are there? / How many objects are there? | a number (0 for a shape the scene lacks) |
| ``clevr.attribute`` | What color is the cube? / What shape is the red object? | a colour or a shape word (asked only of an object that is the only one of its shape or colour) |
| ``clevr.verify`` | A player says: "There is a green cylinder." Is that true of your picture? | yes / no: true claims, decoys (another picture's kinds) and blank pictures |

``clevr.verify`` is the spy game's decision skill asked directly: is a clue true of my picture?
Only objects that show at least ``MIN_VISIBLE`` of the picture's pixels are asked about or
counted, and a picture with an object hidden below that is not used for counts.
"""

from __future__ import annotations

import random
from typing import Any

from PIL import Image

from plugins.clevr.scene import COLORS, SHAPES
from vzframe.probes import GeneratedProbe, ProbeItem
from vzframe.types import ImageItem

MIN_VISIBLE = 0.002
"""Share of the picture's pixels an object must show to be asked about (37 pixels at 168x112)."""
SOURCES = ("clevr_toy", "clevr")
YES, NO = ("yes",), ("no",)
YES_NO = ("yes", "no")
COUNTS = tuple(str(i) for i in range(11))
_GREY = {"gray": ("gray", "grey")}


def _visible(item: ImageItem) -> list[dict]:
    """The objects of ``item``'s scene that show enough pixels to be asked about."""
    objects, seen = item.meta.get("objects") or [], item.meta.get("visible_pixels") or []
    least = MIN_VISIBLE * item.image.width * item.image.height
    return [o for o, v in zip(objects, seen) if v >= least]


def _kind(obj: dict) -> tuple[str, str]:
    return obj["color"], obj["shape"]


def _absent_kind(rng: random.Random, objects: list[dict]) -> tuple[str, str]:
    """A (colour, shape) no object of ``objects`` has; half the time one that shares a colour or
    a shape with some object (the harder decoy), where there is one."""
    present = {(o["color"], o["shape"]) for o in objects}
    absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    near = [(c, s) for c, s in absent if any(c == o["color"] or s == o["shape"] for o in objects)]
    return rng.choice(near if near and rng.random() < 0.5 else absent)


def _pictures(source: Any, start: int = 0):
    """The source's pictures from ``start`` on, with their askable objects."""
    index = start
    while True:
        item = source.get(index)
        index += 1
        yield item, _visible(item)


class Exists(GeneratedProbe):
    name = "clevr.exists"
    label = "CLEVR: is there a X?"
    format = "clevr.exists"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item, objects in _pictures(source):
            if len(out) >= n:
                break
            if not objects:
                continue
            present = rng.random() < 0.5
            color, shape = _kind(rng.choice(objects)) if present else _absent_kind(rng, item.meta["objects"])
            question = f"Is there a {color} {shape} in the picture?"
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, YES if present else NO, "present" if present else "absent", YES_NO))
        return out


class Count(GeneratedProbe):
    name = "clevr.count"
    label = "CLEVR: how many?"
    format = "clevr.count"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item, objects in _pictures(source):
            if len(out) >= n:
                break
            if not objects or len(objects) != len(item.meta["objects"]):
                continue  # something is hidden: the true count is not what can be seen
            if rng.random() < 1 / 3:
                question, count, kind = "How many objects are there?", len(objects), "objects"
            else:
                shape = rng.choice(SHAPES)
                question, count, kind = f"How many {shape}s are there?", sum(o["shape"] == shape for o in objects), shape
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, (str(count),), kind, COUNTS))
        return out


class Attribute(GeneratedProbe):
    name = "clevr.attribute"
    label = "CLEVR: what colour / shape?"
    format = "clevr.attribute"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item, objects in _pictures(source):
            if len(out) >= n:
                break
            everything = item.meta.get("objects") or []
            by_shape = [o for o in objects if sum(x["shape"] == o["shape"] for x in everything) == 1]
            by_color = [o for o in objects if sum(x["color"] == o["color"] for x in everything) == 1]
            asks = [("color", o) for o in by_shape] + [("shape", o) for o in by_color]
            if not asks:
                continue
            what, obj = rng.choice(asks)
            if what == "color":
                question, answers, choices = f"What color is the {obj['shape']}?", _GREY.get(obj["color"], (obj["color"],)), tuple(COLORS)
            else:
                question, answers, choices = f"What shape is the {obj['color']} object?", (obj["shape"],), SHAPES
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, answers, what, choices))
        return out


class Verify(GeneratedProbe):
    name = "clevr.verify"
    label = "CLEVR: is a player's claim true?"
    format = "clevr.verify"
    sources = SOURCES
    blank_share = 0.2
    """Share of items on a blank picture (every claim about it is false)."""

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item, objects in _pictures(source):
            if len(out) >= n:
                break
            if not objects:
                continue
            roll = rng.random()
            if roll < self.blank_share:  # the spy's view: a blank picture of the same size
                color, shape = _kind(rng.choice(objects))
                blank = Image.new("RGB", item.image.size, "#ffffff")
                shown, answers, kind = ImageItem(f"blank:{item.id}", blank, {"blank": True}), NO, "blank"
            elif roll < self.blank_share + (1 - self.blank_share) / 2:
                color, shape = _kind(rng.choice(objects))
                shown, answers, kind = item, YES, "true"
            else:
                color, shape = _absent_kind(rng, item.meta["objects"])
                shown, answers, kind = item, NO, "decoy"
            question = f'A player says: "There is a {color} {shape}." Is that true of your picture?'
            out.append(ProbeItem(f"{self.name}:{len(out)}", shown, question, answers, kind, YES_NO))
        return out


PROBES = (Exists(), Count(), Attribute(), Verify())
