"""The built-in ``charts`` image source: what ``meta`` says is what the picture shows."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from PIL import ImageColor
from pydantic import ValidationError

import plugins.charts
from plugins.charts import PALETTE, ChartsSource, Config


def source(seed: int = 0, **config) -> ChartsSource:
    return ChartsSource(Config(**config), seed=seed)


def first(kind: str, n: int = 1, seed: int = 0, **config) -> list:
    """The first ``n`` charts of ``kind`` (charts of every kind are drawn from one stream)."""
    src, found = source(seed, kinds=[kind], **config), []
    for index in range(n):
        found.append(src.get(index))
    return found


def test_same_seed_and_index_give_identical_pixels_and_meta():
    a, b = source(seed=5), source(seed=5)
    for index in (0, 1, 2, 9):
        x, y = a.get(index), b.get(index)
        assert x.id == y.id == f"charts:5:{index}"
        assert x.image.tobytes() == y.image.tobytes() and x.meta == y.meta
    assert len({a.get(i).image.tobytes() for i in range(8)}) == 8


def test_kinds_and_sizes_follow_config():
    src = source(width=336, height=252, min_points=4, max_points=5)
    kinds = set()
    for index in range(24):
        item = src.get(index)
        json.dumps(item.meta)
        kinds.add(item.meta["kind"])
        assert item.image.size == (336, 252)
        assert 4 <= len(item.meta["categories"]) <= 5
        assert all(len(s["values"]) == len(item.meta["categories"]) for s in item.meta["series"])
        assert item.meta["title"] and item.meta["x_label"] and item.meta["y_label"]
    assert kinds == {"bar", "line", "pie"}
    assert {s.get(0).meta["kind"] for s in (source(kinds=["pie"]), source(kinds=["line"]))} == {"pie", "line"}


def _runs(row: np.ndarray, colors: dict[tuple[int, int, int], int]) -> list[tuple[int, int, int]]:
    """(series, first x, last x) of each run of a series colour along a row of pixels."""
    runs: list[tuple[int, int, int]] = []
    for x, pixel in enumerate(map(tuple, row)):
        series = colors.get(pixel)
        if series is None:
            continue
        if runs and runs[-1][0] == series and runs[-1][2] == x - 1:
            runs[-1] = (series, runs[-1][1], x)
        else:
            runs.append((series, x, x))
    return [r for r in runs if r[2] - r[1] >= 2]


@pytest.mark.parametrize("seed", range(4))
def test_bar_count_order_and_heights_match_the_data(seed):
    (item,) = first("bar", seed=seed)
    meta = item.meta
    pixels = np.asarray(item.image)
    x0, y0, x1, y1 = meta["layout"]["plot"]
    colors = {ImageColor.getrgb(s["color"]): k for k, s in enumerate(meta["series"])}
    runs = _runs(pixels[math.floor(y1) - 3], colors)
    n_series, n_cats = len(meta["series"]), len(meta["categories"])
    assert len(runs) == n_series * n_cats, "one bar per value"
    assert [r[0] for r in runs] == [s for _ in range(n_cats) for s in range(n_series)], "series side by side"
    scale = (y1 - y0) / meta["layout"]["y_max"]
    for (series, left, right), value in zip(runs, (meta["series"][s]["values"][c] for c in range(n_cats) for s in range(n_series))):
        column = pixels[:, (left + right) // 2]
        color = tuple(column[math.floor(y1) - 3])
        top = math.floor(y1) - 3
        while top > 0 and tuple(column[top - 1]) == color:
            top -= 1
        assert abs((y1 - top) - value * scale) <= 2.0, f"bar of {value} is {y1 - top:.1f}px, expected {value * scale:.1f}"


@pytest.mark.parametrize("seed", range(3))
def test_pie_slices_match_the_data(seed):
    (item,) = first("pie", seed=seed)
    meta = item.meta
    values = meta["series"][0]["values"]
    (cx, cy), radius = meta["layout"]["center"], meta["layout"]["radius"]
    pixels = np.asarray(item.image).astype(np.int32)
    ys, xs = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    disk = (xs - cx) ** 2 + (ys - cy) ** 2 <= (radius * 0.97) ** 2
    shares = []
    for color in PALETTE[: len(values) + 1]:
        match = (pixels == ImageColor.getrgb(color)).all(-1) & disk
        shares.append(match.sum() / disk.sum())
    assert sum(s > 0.004 for s in shares) == len(values), "one slice per value, in the palette's order"
    assert shares[len(values)] == 0
    for share, value in zip(shares, values):
        assert abs(share - value / sum(values)) < 0.03


@pytest.mark.parametrize("seed", range(3))
def test_line_points_sit_at_their_values(seed):
    (item,) = first("line", seed=seed, max_series=2)
    meta = item.meta
    pixels = np.asarray(item.image)
    x0, y0, x1, y1 = meta["layout"]["plot"]
    slot = (x1 - x0) / len(meta["categories"])
    hits = total = 0
    for series in meta["series"]:
        color = ImageColor.getrgb(series["color"])
        for c, value in enumerate(series["values"]):
            x = x0 + slot * (c + 0.5)
            y = y1 - (y1 - y0) * value / meta["layout"]["y_max"]
            total += 1
            hits += tuple(pixels[round(y), round(x)]) == color
    last = meta["series"][-1]  # drawn last: none of its markers is covered
    assert hits >= total - (len(meta["series"]) - 1) * 2
    assert hits >= len(last["values"])


def test_layout_is_inside_the_picture():
    for item in (source(seed=2).get(i) for i in range(9)):
        w, h = item.image.size
        layout = item.meta["layout"]
        if "plot" in layout:
            x0, y0, x1, y1 = layout["plot"]
            assert 0 < x0 < x1 < w and 0 < y0 < y1 < h
            assert layout["y_max"] >= max(v for s in item.meta["series"] for v in s["values"])
        else:
            (cx, cy), r = layout["center"], layout["radius"]
            assert 0 <= cx - r and cx + r <= w and 0 <= cy - r and cy + r <= h


@pytest.mark.parametrize("bad", [{"width": 100}, {"kinds": []}, {"kinds": ["scatter"]}, {"min_points": 6, "max_points": 3}, {"colour": 1}])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        Config(**bad)


def test_doctests_and_documented_fields():
    assert doctest.testmod(plugins.charts).failed == 0
    assert all(f.description for f in Config.model_fields.values())
