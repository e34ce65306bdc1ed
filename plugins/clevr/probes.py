"""CLEVR probes: questions about a scene whose answers its scene graph knows.

Four probes, each its own figure, on the ``clevr`` or ``clevr_toy`` source (pictures seeded by
``vzframe.probes.probe_seed``, never a run's):

| probe | question | answers |
|---|---|---|
| ``clevr.exists`` | Is there a green cylinder in the picture? | yes / no (half each; the absent kinds share a colour or a shape with the scene where they can) |
| ``clevr.count`` | How many cubes are there? / How many objects are there? | a number (0 for a shape the scene lacks) |
| ``clevr.attribute`` | What color is the cube? / What shape is the red object? | a colour or a shape word (asked only of an object that is the only one of its shape or colour) |
| ``clevr.verify`` | A player says: "There is a green cylinder." Is that true of your picture? | yes / no: true claims, decoys (another kind) and blank pictures |

``clevr.verify`` is the spy game's decision skill asked directly: is a clue true of my picture?
Only objects that show at least ``MIN_VISIBLE`` of the picture's pixels are asked about or
counted, and a picture with an object hidden below that is not used for counts.
"""

from __future__ import annotations

import random
from typing import Any

from PIL import Image

from plugins.clevr.scene import COLORS, SHAPES
from vzframe.probes import Ask, GeneratedProbe
from vzframe.types import ImageItem

MIN_VISIBLE = 0.002
"""Share of the picture's pixels an object must show to be asked about (37 pixels at 168x112)."""
SOURCES = ("clevr_toy", "clevr")
YES, NO = ("yes",), ("no",)
YES_NO = ("yes", "no")
COUNTS = tuple(str(i) for i in range(11))
_GREY = {"gray": ("gray", "grey")}


def visible(item: ImageItem) -> list[dict]:
    """The objects of ``item``'s scene that show enough pixels to be asked about."""
    objects, seen = item.meta.get("objects") or [], item.meta.get("visible_pixels") or []
    least = MIN_VISIBLE * item.image.width * item.image.height
    return [o for o, v in zip(objects, seen) if v >= least]


def kind(obj: dict) -> tuple[str, str]:
    return obj["color"], obj["shape"]


def absent_kind(rng: random.Random, objects: list[dict]) -> tuple[str, str]:
    """A (colour, shape) no object of ``objects`` has; half the time one that shares a colour or
    a shape with some object (the harder decoy), where there is one."""
    present = {kind(o) for o in objects}
    absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    near = [(c, s) for c, s in absent if any(c == o["color"] or s == o["shape"] for o in objects)]
    return rng.choice(near if near and rng.random() < 0.5 else absent)


class Exists(GeneratedProbe):
    name = format = "clevr.exists"
    label = "CLEVR: is there a X?"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        objects = visible(picture)
        if not objects:
            return None
        present = rng.random() < 0.5
        color, shape = kind(rng.choice(objects)) if present else absent_kind(rng, picture.meta["objects"])
        return Ask(f"Is there a {color} {shape} in the picture?", YES if present else NO,
                   "present" if present else "absent", YES_NO)  # fmt: skip


class Count(GeneratedProbe):
    name = format = "clevr.count"
    label = "CLEVR: how many?"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        objects = visible(picture)
        if not objects or len(objects) != len(picture.meta["objects"]):
            return None  # something is hidden: the true count is not what can be seen
        if rng.random() < 1 / 3:
            return Ask("How many objects are there?", (str(len(objects)),), "objects", COUNTS)
        shape = rng.choice(SHAPES)
        return Ask(f"How many {shape}s are there?", (str(sum(o["shape"] == shape for o in objects)),), shape, COUNTS)


class Attribute(GeneratedProbe):
    name = format = "clevr.attribute"
    label = "CLEVR: what colour / shape?"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        everything = picture.meta.get("objects") or []
        objects = visible(picture)
        by_shape = [o for o in objects if sum(x["shape"] == o["shape"] for x in everything) == 1]
        by_color = [o for o in objects if sum(x["color"] == o["color"] for x in everything) == 1]
        asks = [("color", o) for o in by_shape] + [("shape", o) for o in by_color]
        if not asks:
            return None
        what, obj = rng.choice(asks)
        if what == "color":
            return Ask(f"What color is the {obj['shape']}?", _GREY.get(obj["color"], (obj["color"],)), what, tuple(COLORS))
        return Ask(f"What shape is the {obj['color']} object?", (obj["shape"],), what, SHAPES)


class Verify(GeneratedProbe):
    name = format = "clevr.verify"
    label = "CLEVR: is a player's claim true?"
    sources = SOURCES
    blank_share = 0.2
    """Share of items on a blank picture (every claim about it is false)."""

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        objects = visible(picture)
        if not objects:
            return None
        roll = rng.random()
        shown, answers, what = None, NO, "decoy"
        if roll < self.blank_share:  # the spy's view: a blank picture of the same size
            color, shape = kind(rng.choice(objects))
            blank = Image.new("RGB", picture.image.size, "#ffffff")
            shown, what = ImageItem(f"blank:{picture.id}", blank, {"blank": True}), "blank"
        elif roll < self.blank_share + (1 - self.blank_share) / 2:
            color, shape = kind(rng.choice(objects))
            answers, what = YES, "true"
        else:
            color, shape = absent_kind(rng, picture.meta["objects"])
        return Ask(f'A player says: "There is a {color} {shape}." Is that true of your picture?', answers, what, YES_NO, shown)


PROBES = (Exists(), Count(), Attribute(), Verify())
