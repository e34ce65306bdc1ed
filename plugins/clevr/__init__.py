"""Built-in image source ``clevr``: CLEVR-like 3-D scenes, rendered procedurally.

3 to 10 objects (cube, sphere, cylinder; CLEVR's 8 colours; large or small; matte rubber or
shiny metal) on a grey floor seen by a perspective camera, with shading, shadows and correct
occlusion (see ``render.py``). Needs no Blender and no download. ``get(i)`` is pure in
``(seed, i)``: its scene comes from ``random.Random(f"{seed}:{i}")`` alone.

``meta["objects"]`` is the scene graph: per object ``shape, color, size, material`` and its
place ``x, y`` (ground plane, CLEVR units), ``rotation`` (degrees), ``pixel`` (centre in the
picture) and ``depth``; ``meta["visible_pixels"]`` counts the pixels that show each object.
Every item can render its **modified twin** (``item.twin()``): the same scene with
``changes`` objects each given another colour, shape, material or size, positions kept; the
twin's ``meta["changes"]`` lists what changed (``{object, attribute, from, to}``) and
``meta["twin_of"]`` names the original. Every key, its values and units: docs/images.md.

Both sources can ``describe(item)`` a picture for a game's teacher: one phrase per kind of
object it shows, colour and shape (``("a red cube", "a gray sphere")``), as the toy world's
clues name them.
"""

from __future__ import annotations

import random
from functools import partial

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plugins.clevr.render import render
from plugins.clevr.scene import COLORS, SHAPES, Camera, differences, modify, sample_scene
from vzframe.hookspecs import hookimpl
from vzframe.types import ImageItem

__all__ = ["ClevrSource", "ClevrToySource", "Config", "ToyConfig", "describe_objects", "differences"]


class Config(BaseModel):
    """The ``clevr`` image source."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    width: int = Field(336, ge=56, le=2016, multiple_of=28)
    """Picture width in pixels (a multiple of 28, the Qwen-VL patch grid)."""
    height: int = Field(224, ge=56, le=2016, multiple_of=28)
    """Picture height in pixels (a multiple of 28)."""
    min_objects: int = Field(3, ge=1, le=10)
    """Fewest objects in a scene."""
    max_objects: int = Field(10, ge=1, le=10)
    """Most objects in a scene (crowded scenes may hold fewer if no free spot is found)."""
    changes: int = Field(2, ge=1, le=10)
    """Objects changed in the modified twin (colour, shape, material or size; positions kept)."""
    supersample: int = Field(2, ge=1, le=4)
    """Render this many times larger and reduce, for smooth edges (1 is fastest)."""
    fov: float = Field(50.0, ge=10.0, le=90.0)
    """The camera's horizontal field of view in degrees: smaller zooms in (larger objects,
    placed closer together)."""

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) must not exceed max_objects ({self.max_objects})")
        if self.changes > self.min_objects:
            raise ValueError(f"changes ({self.changes}) must not exceed min_objects ({self.min_objects})")
        return self


class ToyConfig(Config):
    """The ``clevr_toy`` source: the toy world's small scenes (``clevr`` with other defaults)."""

    width: int = Field(168, ge=56, le=2016, multiple_of=28)
    """Picture width in pixels (a multiple of 28, the Qwen-VL patch grid)."""
    height: int = Field(112, ge=56, le=2016, multiple_of=28)
    """Picture height in pixels (a multiple of 28)."""
    min_objects: int = Field(2, ge=1, le=10)
    """Fewest objects in a scene."""
    max_objects: int = Field(4, ge=1, le=10)
    """Most objects in a scene."""
    supersample: int = Field(1, ge=1, le=4)
    """Render this many times larger and reduce, for smooth edges (1 is fastest)."""
    fov: float = Field(30.0, ge=10.0, le=90.0)
    """The camera's horizontal field of view in degrees: 30 zooms in so an object spans two
    or three 14-pixel patches (at 50 most fit in one, and a toy model could not tell shapes)."""


def describe_objects(objects: list[dict]) -> tuple[str, ...]:
    """One phrase per kind of object (colour and shape) in the scene graph ``objects``,
    without repeats, in CLEVR's colour order then by shape (a set: not where they stand).

    >>> describe_objects([{"color": "red", "shape": "cube"}, {"color": "gray", "shape": "sphere"},
    ...                   {"color": "red", "shape": "cube"}])
    ('a gray sphere', 'a red cube')
    """
    colors, kinds = list(COLORS), {(o["color"], o["shape"]) for o in objects}

    def order(kind: tuple[str, str]) -> tuple:
        color, shape = kind
        return (colors.index(color) if color in colors else len(colors), color,
                SHAPES.index(shape) if shape in SHAPES else len(SHAPES), shape)

    return tuple(f"a {color} {shape}" for color, shape in sorted(kinds, key=order))


class ClevrSource:
    """Deterministic CLEVR-like scenes, each with a modified twin on demand."""

    name = "clevr"
    Config = Config
    prefix = "clevr"
    """Start of every picture id: ``clevr:SEED:INDEX``."""

    def __init__(self, config: Config, *, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.camera = Camera(config.width, config.height, hfov_degrees=config.fov)

    def scene(self, index: int) -> list[dict]:
        """The scene graph of picture ``index``, without rendering it."""
        if index < 0:
            raise IndexError(f"image index must be >= 0; got {index}")
        rng = random.Random(f"{self.seed}:{index}")
        return sample_scene(rng, self.camera, self.config.min_objects, self.config.max_objects)

    def get(self, index: int) -> ImageItem:
        objects = self.scene(index)
        image, visible = render(self.camera, objects, self.config.supersample)
        meta = {"objects": objects, "visible_pixels": visible}
        return ImageItem(f"{self.prefix}:{self.seed}:{index}", image, meta, twin=partial(self.twin, index, objects))

    def twin(self, index: int, objects: list[dict] | None = None) -> ImageItem:
        """Picture ``index`` with ``config.changes`` objects changed (pure in seed and index)."""
        objects = self.scene(index) if objects is None else objects
        rng = random.Random(f"{self.seed}:{index}:twin")
        changes = min(self.config.changes, len(objects))
        twin, changed = modify(rng, self.camera, objects, changes)
        image, visible = render(self.camera, twin, self.config.supersample)
        meta = {"objects": twin, "visible_pixels": visible, "changes": changed, "twin_of": f"{self.prefix}:{self.seed}:{index}"}
        return ImageItem(f"{self.prefix}:{self.seed}:{index}:twin{changes}", image, meta)

    def describe(self, item: ImageItem) -> tuple[str, ...]:
        """What ``item`` shows, from its scene graph (``describe_objects``); a blank picture
        (``meta["blank"]``) or one without objects shows nothing: ``()``."""
        if item.meta.get("blank"):
            return ()
        return describe_objects(item.meta.get("objects") or [])


class ClevrToySource(ClevrSource):
    """``clevr_toy``: the toy world's pictures (168x112, 2 to 4 objects), which model
    ``toy-world`` (``plugins.toy_world``) was warm-started on."""

    name = "clevr_toy"
    Config = ToyConfig
    prefix = "clevr_toy"


@hookimpl
def register_image_sources(register) -> None:
    register(ClevrSource)
    register(ClevrToySource)


@hookimpl
def register_probes(register) -> None:
    from plugins.clevr.probes import PROBES

    for probe in PROBES:
        register(probe)
