"""The built-in ``shapes`` image source."""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import ImageColor
from pydantic import ValidationError

from plugins.shapes import COLORS, SHAPES, Config, ShapesSource
from vzframe.plugins import build_registry, make_plugin_manager
from vzframe.protocols import ImageSource


def source(seed: int = 0, **config) -> ShapesSource:
    return ShapesSource(Config(**config), seed=seed)


def test_same_seed_and_index_give_identical_pixels():
    a, b = source(seed=7), source(seed=7)
    for index in (0, 1, 5, 123):
        x, y = a.get(index), b.get(index)
        assert x.id == y.id == f"shapes:7:{index}"
        assert x.image.tobytes() == y.image.tobytes()
        assert x.meta == y.meta


def test_different_indices_and_seeds_give_different_images():
    src = source()
    distinct = {src.get(i).image.tobytes() for i in range(20)}
    assert len(distinct) >= 18
    others = source(seed=1)
    assert sum(src.get(i).image.tobytes() != others.get(i).image.tobytes() for i in range(10)) >= 9


@pytest.mark.parametrize("size", [56, 112, 168])
def test_size_is_respected(size):
    image = source(size=size).get(3).image
    assert image.size == (size, size)
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 100},  # not a multiple of 28
        {"size": 28},  # below 56
        {"min_shapes": 0},
        {"min_shapes": 5, "max_shapes": 4},
        {"background": "not-a-colour"},
        {"sizes": 112},  # typo: extra keys are rejected
    ],
)
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        Config(**bad)


def test_meta_matches_the_drawn_shapes():
    src = source(size=112)
    counts = Counter()
    for index in range(40):
        item = src.get(index)
        scene = item.meta["shapes"]
        counts[len(scene)] += 1
        for s in scene:
            assert s["shape"] in SHAPES and s["color"] in COLORS
            assert 0 <= s["x"] - s["size"] / 2 and s["x"] + s["size"] / 2 < 112
            assert 0 <= s["y"] - s["size"] / 2 and s["y"] + s["size"] / 2 < 112
        top = scene[-1]  # drawn last, so nothing covers its centre
        assert item.image.getpixel((top["x"], top["y"])) == ImageColor.getrgb(top["color"])
        # the background is the most common colour
        assert max(item.image.getcolors())[1] == ImageColor.getrgb("#f0f0f0")
    assert set(counts) == {1, 2, 3, 4}


def test_shape_count_follows_config():
    src = source(min_shapes=3, max_shapes=3)
    assert {len(src.get(i).meta["shapes"]) for i in range(10)} == {3}


def test_shapes_never_take_the_background_colour():
    src = source(background="red", min_shapes=6, max_shapes=6)
    colors = {s["color"] for i in range(30) for s in src.get(i).meta["shapes"]}
    assert "red" not in colors and len(colors) >= 5


def test_negative_index_is_an_error():
    with pytest.raises(IndexError):
        source().get(-1)


def test_register_image_sources():
    registry = build_registry(make_plugin_manager())  # shapes is a default plugin
    assert registry.image_sources["shapes"] is ShapesSource
    assert isinstance(source(), ImageSource)


def test_every_config_field_is_documented():
    assert Config.model_config["extra"] == "forbid"
    assert not [name for name, f in Config.model_fields.items() if not f.description]
