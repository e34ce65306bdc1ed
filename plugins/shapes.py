"""Built-in image source ``shapes``: a few coloured shapes on a plain background.

Needs no download, so a CPU smoke run works out of the box. ``get(i)`` draws picture ``i``
from ``random.Random(f"{seed}:{i}")`` alone, so the same seed and index give the same pixels
on any machine. ``meta["shapes"]`` lists the scene: ``{shape, color, x, y, size}`` per shape,
with ``(x, y)`` its centre and ``size`` the side of its bounding box, in pixels.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageColor, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vzframe.hookspecs import hookimpl
from vzframe.types import ImageItem

SHAPES = ("circle", "square", "triangle", "star")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "brown")


class Config(BaseModel):
    """The ``shapes`` image source."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    size: int = Field(112, ge=56, multiple_of=28)
    """Side of the square picture in pixels (a multiple of 28, the Qwen-VL patch grid)."""
    min_shapes: int = Field(1, ge=1)
    """Fewest shapes in a picture."""
    max_shapes: int = Field(4, ge=1, le=12)
    """Most shapes in a picture."""
    background: str = "#f0f0f0"
    """Background colour, any colour PIL understands ("#f0f0f0", "white", ...)."""

    @field_validator("background")
    @classmethod
    def _known_colour(cls, value: str) -> str:
        try:
            ImageColor.getrgb(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a colour PIL knows; try a name like 'white' or '#f0f0f0'") from None
        return value

    @model_validator(mode="after")
    def _min_le_max(self) -> Config:
        if self.min_shapes > self.max_shapes:
            raise ValueError(f"min_shapes ({self.min_shapes}) must not exceed max_shapes ({self.max_shapes})")
        return self


def _draw(draw: ImageDraw.ImageDraw, shape: str, color: str, x: int, y: int, size: int) -> None:
    r = size / 2
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=color)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=color)
    else:  # star: five points, alternating outer and inner radius
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
        draw.polygon(points, fill=color)


class ShapesSource:
    """Deterministic pictures of 1..max_shapes shapes, placed without overlap when possible."""

    name = "shapes"
    Config = Config

    def __init__(self, config: Config, *, seed: int) -> None:
        self.config = config
        self.seed = seed
        background = ImageColor.getrgb(config.background)
        self.colors = tuple(c for c in COLORS if ImageColor.getrgb(c) != background)

    def scene(self, index: int) -> list[dict]:
        """The shapes of picture ``index``, without drawing it."""
        c = self.config
        rng = random.Random(f"{self.seed}:{index}")
        scene: list[dict] = []
        for _ in range(rng.randint(c.min_shapes, c.max_shapes)):
            shape, color = rng.choice(SHAPES), rng.choice(self.colors)
            size = rng.randint(c.size // 8, c.size // 4)
            for _attempt in range(50):  # keep the last try if no free spot is found
                x = rng.randint(size // 2 + 1, c.size - size // 2 - 2)
                y = rng.randint(size // 2 + 1, c.size - size // 2 - 2)
                if all(math.dist((x, y), (s["x"], s["y"])) > (size + s["size"]) * 0.75 for s in scene):
                    break
            scene.append({"shape": shape, "color": color, "x": x, "y": y, "size": size})
        return scene

    def get(self, index: int) -> ImageItem:
        if index < 0:
            raise IndexError(f"image index must be >= 0; got {index}")
        scene = self.scene(index)
        image = Image.new("RGB", (self.config.size, self.config.size), self.config.background)
        draw = ImageDraw.Draw(image)
        for s in scene:
            _draw(draw, s["shape"], s["color"], s["x"], s["y"], s["size"])
        return ImageItem(id=f"shapes:{self.seed}:{index}", image=image, meta={"shapes": scene})


@hookimpl
def register_image_sources(register) -> None:
    register(ShapesSource)
