"""Pictures for game checks and plugin tests, re-exported by ``vzframe.testing``.

``image_source(name)`` builds a registered image source as a run builds it, ``draw_images``
takes pictures from one; ``check_game`` draws an episode's pictures through ``_image_stream``
(plain rectangles) or ``_source_stream`` (an image source).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image
from pydantic import BaseModel

from vzframe.plugins import PluginError
from vzframe.protocols import ImageDraw, ImageSource
from vzframe.types import ImageItem

__all__ = ["PICTURES_PER_EPISODE", "draw_images", "image_source"]


def _image_stream(seed: int) -> ImageDraw:
    """Deterministic plain rectangles (not square, so size mix-ups show)."""
    rng, counter = random.Random(seed), itertools.count()

    def draw() -> ImageItem:
        color = tuple(rng.randrange(256) for _ in range(3))
        return ImageItem(f"check:{seed}:{next(counter)}", Image.new("RGB", (40, 24), color), {"color": color})

    return draw


PICTURES_PER_EPISODE = 64
"""``check_game`` on an image source: the indices each episode's pictures start apart."""


def _source_stream(source: ImageSource) -> Callable[[int], ImageDraw]:
    """``images(seed)`` over an image source: the same pictures for the same seed."""

    def images(seed: int) -> ImageDraw:
        counter = itertools.count(seed * PICTURES_PER_EPISODE)
        return lambda: source.get(next(counter))

    return images


def image_source(
    name: str, config: BaseModel | Mapping[str, Any] | None = None, seed: int = 0, plugins: Sequence[str] = ()
) -> ImageSource:
    """The image source registered as ``name``, built as a run builds it: found among the
    default plugins' sources (``shapes``, ``clevr``, ``clevr_toy``, ``charts``, ``folder``)
    and those of ``plugins``, its ``config`` (the ``image_source.KEY`` settings as a mapping,
    or the source's ``Config``) validated, seeded with ``seed``. A bad setting raises
    ``ConfigError`` naming the key; an unknown name, ``PluginError`` listing the sources.

    >>> source = image_source("shapes", {"size": 56}, seed=3)
    >>> item = source.get(0)
    >>> item.id, item.image.size, sorted(item.meta["shapes"][0])
    ('shapes:3:0', (56, 56), ['color', 'shape', 'size', 'x', 'y'])
    """
    from vzframe.config import validate
    from vzframe.plugins import build_registry, make_plugin_manager

    registry = build_registry(make_plugin_manager(list(plugins)))
    cls: type[ImageSource] | None = registry.image_sources.get(name)
    if cls is None:
        raise PluginError(
            f"Unknown image source {name!r}. Registered: {', '.join(sorted(registry.image_sources))}. "
            "Pass the plugin that registers it: image_source(name, plugins=['my_package.images'])."
        )
    if not isinstance(config, cls.Config):
        config = validate(cls.Config, dict(config or {}), "image_source.")
    return cls(config, seed=seed)


def draw_images(
    name: str, n: int, config: BaseModel | Mapping[str, Any] | None = None, seed: int = 0, *,
    start: int = 0, plugins: Sequence[str] = (),
) -> list[ImageItem]:
    """Pictures ``start .. start + n - 1`` of image source ``name`` (see ``image_source``),
    exactly what a run with the same seed, source and settings is served on one rank.

    >>> [item.id for item in draw_images("clevr_toy", 2, {"max_objects": 2}, start=5)]
    ['clevr_toy:0:5', 'clevr_toy:0:6']
    """
    source = image_source(name, config, seed, plugins)
    return [source.get(index) for index in range(start, start + n)]
