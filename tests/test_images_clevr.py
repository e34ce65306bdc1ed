"""The built-in ``clevr`` image source: determinism, scene graphs, rendering, twins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from plugins.clevr import ClevrSource, Config, differences
from plugins.clevr.render import render
from plugins.clevr.scene import ATTRIBUTES, COLORS, MATERIALS, SHAPES, SIZES, Camera, fits
from vzframe.plugins import build_registry, make_plugin_manager
from vzframe.protocols import ImageSource

SMALL = {"width": 168, "height": 112, "supersample": 1}
"""Small, fast pictures for most tests."""


def source(seed: int = 0, **config) -> ClevrSource:
    return ClevrSource(Config(**{**SMALL, **config}), seed=seed)


def test_same_seed_and_index_give_identical_pixels_meta_and_twin():
    a, b = source(seed=3), source(seed=3)
    for index in (0, 7):
        x, y = a.get(index), b.get(index)
        assert x.id == y.id == f"clevr:3:{index}"
        assert x.image.tobytes() == y.image.tobytes()
        assert x.meta == y.meta
        tx, ty = x.twin(), y.twin()
        assert tx.id == ty.id == f"clevr:3:{index}:twin2"
        assert tx.image.tobytes() == ty.image.tobytes() and tx.meta == ty.meta
        assert a.twin(index).meta == tx.meta  # the twin is pure in (seed, index) too


def test_different_indices_and_seeds_give_different_scenes():
    src = source()
    items = [src.get(i) for i in range(6)]
    assert len({it.image.tobytes() for it in items}) == 6
    assert len({str(it.meta["objects"]) for it in items}) == 6
    assert source(seed=1).get(0).image.tobytes() != items[0].image.tobytes()


def test_scene_graph_is_valid_and_json_friendly():
    import json

    src = source(min_objects=3, max_objects=10)
    counts = set()
    for index in range(12):
        item = src.get(index)
        objects = item.meta["objects"]
        counts.add(len(objects))
        assert 3 <= len(objects) <= 10
        json.dumps(item.meta)
        for o in objects:
            assert o["shape"] in SHAPES and o["color"] in COLORS and o["size"] in SIZES and o["material"] in MATERIALS
            assert -3 <= o["x"] <= 3 and -3 <= o["y"] <= 3
            u, v = o["pixel"]
            assert 0 <= u < 168 and 0 <= v < 112
        for i, a in enumerate(objects):  # footprints never touch
            for b in objects[:i]:
                assert math.dist((a["x"], a["y"]), (b["x"], b["y"])) >= SIZES[a["size"]] + SIZES[b["size"]]
        assert all(v > 0 for v in item.meta["visible_pixels"]), "every object shows in the picture"
    assert len(counts) >= 3


@pytest.mark.parametrize("k", [1, 2, 3])
def test_twin_differs_in_exactly_k_objects(k):
    src = source(changes=k, min_objects=4)
    for index in range(6):
        item = src.get(index)
        twin = item.twin()
        before, after = item.meta["objects"], twin.meta["objects"]
        changed = differences(before, after)
        assert len(changed) == k
        assert sorted(c["object"] for c in twin.meta["changes"]) == changed
        for c in twin.meta["changes"]:
            o, t = before[c["object"]], after[c["object"]]
            assert c["attribute"] in ATTRIBUTES and c["from"] == o[c["attribute"]] != c["to"] == t[c["attribute"]]
            assert sum(o[a] != t[a] for a in ATTRIBUTES) == 1, "one attribute per changed object"
        assert [(o["x"], o["y"], o["rotation"]) for o in before] == [(o["x"], o["y"], o["rotation"]) for o in after]
        assert twin.meta["twin_of"] == item.id
        assert twin.image.size == item.image.size
        diff = np.abs(np.asarray(twin.image, np.int16) - np.asarray(item.image, np.int16)).max(axis=-1)
        assert (diff > 30).sum() >= 10, "the change must be visible"


def test_differences_sees_each_attribute():
    scene = [{"shape": "cube", "color": "red", "size": "large", "material": "metal", "x": 0, "y": 0}]
    assert differences(scene, scene) == []
    for attribute, value in (("shape", "sphere"), ("color", "blue"), ("size", "small"), ("material", "rubber")):
        assert differences(scene, [{**scene[0], attribute: value}]) == [0]


def _obj(shape: str, color: str, x: float, y: float, **kw) -> dict:
    return {"shape": shape, "color": color, "size": "large", "material": "rubber", "rotation": 20.0, "x": x, "y": y, **kw}


def _rgb_at(image, camera: Camera, obj: dict) -> np.ndarray:
    ((u, v),), _ = camera.project(np.array([[obj["x"], obj["y"], 0.5]]))
    return np.asarray(image, np.float32)[round(v), round(u)]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_renders_in_its_colour_on_grey_floor(shape):
    camera = Camera(168, 112)
    obj = _obj(shape, "red", 0.0, 0.0)
    image, visible = render(camera, [obj], supersample=1)
    r, g, b = _rgb_at(image, camera, obj)
    assert r > 1.8 * g and r > 1.8 * b, "the object's pixels are red"
    corner = np.asarray(image, np.float32)[-3, 3]
    assert abs(corner[0] - corner[1]) < 8 and abs(corner[1] - corner[2]) < 8, "the floor is grey"
    assert visible[0] > 100


def test_nearer_object_hides_the_farther_one_whatever_the_order():
    camera = Camera(168, 112)
    near = _obj("cube", "blue", 0.0, -1.5)
    far = _obj("sphere", "yellow", 0.0, 1.0)
    for objects in ([near, far], [far, near]):
        image, visible = render(camera, objects, supersample=1)
        r, g, b = _rgb_at(image, camera, near)
        assert b > r and b > g, "the blue cube in front wins"
        assert all(v > 0 for v in visible)


def test_shadows_darken_the_floor_behind_objects():
    camera = Camera(168, 112)
    empty, _ = render(camera, [], supersample=1)
    scene, _ = render(camera, [_obj("cylinder", "green", 0.0, 0.0)], supersample=1)
    floor = np.asarray(empty, np.float32).mean(-1)
    darker = floor - np.asarray(scene, np.float32).mean(-1)
    assert (darker > 15).sum() > 200, "the object and its shadow"
    ((u, v),), _ = camera.project(np.array([[0.9, 0.5, 0.0]]))  # on the floor, away from the key light
    assert darker[round(v), round(u)] > 10


def test_metal_has_brighter_highlights_than_rubber():
    camera = Camera(168, 112)
    peaks = {}
    for material in MATERIALS:
        image, _ = render(camera, [_obj("sphere", "blue", 0.0, 0.0, material=material)], supersample=1)
        peaks[material] = np.asarray(image, np.float32).min(axis=-1).max()  # whitest pixel
    assert peaks["metal"] > peaks["rubber"] + 40


def test_supersampling_keeps_the_size():
    item = ClevrSource(Config(width=112, height=84, supersample=2), seed=0).get(0)
    assert item.image.size == (112, 84) and item.image.mode == "RGB"


def test_crowded_scenes_still_fit():
    camera = Camera(168, 112)
    src = source(min_objects=10, max_objects=10)
    for index in range(3):
        objects = src.scene(index)
        assert len(objects) >= 8 and fits(camera, objects)


@pytest.mark.parametrize(
    "bad",
    [{"width": 100}, {"height": 28}, {"min_objects": 0}, {"min_objects": 5, "max_objects": 4}, {"changes": 4, "min_objects": 3}, {"objects": 3}],
)
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        Config(**bad)


def test_negative_index_is_an_error():
    with pytest.raises(IndexError):
        source().get(-1)


def test_register_image_sources_makes_every_builtin_a_default():
    registry = build_registry(make_plugin_manager())
    assert {"shapes", "clevr", "charts", "folder"} <= set(registry.image_sources)
    assert registry.image_sources["clevr"] is ClevrSource
    assert isinstance(source(), ImageSource)
    assert all(f.description for f in Config.model_fields.values())
