"""Image sources that can say what their pictures show (``describe``): clevr, clevr_toy and
charts do, from ``meta``; folder does not. Each phrase is true of the picture."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from plugins.charts import COLOR_NAMES, ChartsSource, describe_chart
from plugins.clevr import ClevrSource, ClevrToySource, describe_objects
from plugins.folder import FolderSource
from vzframe.protocols import DescribingSource, Facts, missing_members
from vzframe.testing import image_source
from vzframe.types import ImageItem

SMALL = {"width": 112, "height": 84, "supersample": 1}
BLANK = ImageItem("blank:#ffffff:112x84", Image.new("RGB", (112, 84), "#ffffff"), {"blank": True, "color": "#ffffff"})


@pytest.fixture(scope="module")
def clevr_sources():
    return [image_source("clevr_toy", seed=3), image_source("clevr", {**SMALL, "max_objects": 6}, seed=3)]


@pytest.fixture(scope="module")
def charts():
    return image_source("charts", {"width": 224, "height": 168, "supersample": 1}, seed=5)


def test_the_describing_sources_meet_the_protocol(clevr_sources, charts):
    for source in (*clevr_sources, charts):
        assert missing_members(source, DescribingSource) == []
    assert all(hasattr(cls, "describe") for cls in (ClevrSource, ClevrToySource, ChartsSource))


def test_folder_cannot_describe_and_facts_says_so():
    assert not hasattr(FolderSource, "describe")
    with pytest.raises(TypeError, match="'folder' cannot describe its pictures .*clevr, clevr_toy"):
        Facts.of(type("Folder", (), {"name": "folder", "get": lambda self, i: None})())


def test_clevr_phrases_are_the_colour_and_shape_of_every_object(clevr_sources):
    for source in clevr_sources:
        for index in range(20):
            item = source.get(index)
            phrases = source.describe(item)
            kinds = {f"a {o['color']} {o['shape']}" for o in item.meta["objects"]}
            assert set(phrases) == kinds and len(phrases) == len(kinds), (item.id, phrases)
            assert source.describe(item.twin()) == describe_objects(item.twin().meta["objects"])


def test_clevr_description_is_deduplicated_and_in_a_fixed_order():
    a = {"color": "red", "shape": "cube"}
    b = {"color": "gray", "shape": "sphere"}
    c = {"color": "red", "shape": "cylinder"}
    assert describe_objects([a, b, c, a]) == ("a gray sphere", "a red cube", "a red cylinder")
    assert describe_objects([c, a, b]) == describe_objects([a, b, c])  # a set: not where objects stand


def test_descriptions_are_deterministic(clevr_sources, charts):
    for source in (*clevr_sources, charts):
        again = type(source)(source.config, seed=source.seed)
        for index in (0, 7, 31):
            assert source.describe(source.get(index)) == again.describe(again.get(index)) != ()


def test_blank_and_empty_pictures_describe_as_nothing(clevr_sources, charts):
    for source in (*clevr_sources, charts):
        assert source.describe(BLANK) == ()
    empty = ImageItem("x", BLANK.image, {"objects": [], "visible_pixels": []})
    assert clevr_sources[0].describe(empty) == () and charts.describe(empty) == ()


def test_chart_phrases_match_the_meta(charts):
    kinds = set()
    for index in range(40):
        item = charts.get(index)
        meta, phrases = item.meta, charts.describe(item)
        kinds.add(meta["kind"])
        assert len(set(phrases)) == len(phrases)
        assert phrases[0] == f"a {meta['kind']} chart"
        assert f'a title "{meta["title"]}"' in phrases
        n, series = len(meta["categories"]), meta["series"]
        if meta["kind"] == "pie":
            assert f"a pie with {n} slices" in phrases
            assert [p for p in phrases if p.startswith("a slice labelled")] == [f'a slice labelled "{c}"' for c in meta["categories"]]
        else:
            count = {"bar": f"a chart with {n * len(series)} bars", "line": f"a chart with {len(series)} lines"}[meta["kind"]]
            assert count in phrases or (len(series) == 1 and "a chart with one line" in phrases)
            assert [p for p in phrases if p.startswith("a legend entry")] == [f'a legend entry "{s["name"]}"' for s in series]
            colours = [f"{'an' if c[0] in 'aeiou' else 'a'} {c} {meta['kind']}" for c in (COLOR_NAMES[s["color"]] for s in series)]
            assert [p for p in phrases if p in colours] == colours  # one colour per series
    assert kinds == {"bar", "line", "pie"}


def test_chart_colours_are_named():
    meta = {"kind": "line", "title": "T", "categories": ["a", "b"],
            "series": [{"name": "x", "values": [1, 2], "color": "#4e79a7"}, {"name": "y", "values": [2, 1], "color": "#f28e2b"}]}
    assert describe_chart(meta) == (
        "a line chart", "a chart with 2 lines", 'a title "T"', "a blue line", "an orange line",
        'a legend entry "x"', 'a legend entry "y"',
    )
    assert describe_chart({"kind": "scatter", "series": [{}]}) == () and describe_chart({}) == ()


def test_facts_decoys_are_phrases_of_other_pictures(clevr_sources):
    source = clevr_sources[0]
    facts = Facts.of(source)
    decoys = [facts.decoy(random.Random(k)) for k in range(30)]
    assert decoys == [facts.decoy(random.Random(k)) for k in range(30)]
    assert all(d.startswith("a ") and len(d.split()) == 3 for d in decoys) and len(set(decoys)) > 5



def test_fov_zooms_in_so_that_objects_are_larger():
    """``fov`` narrows the camera: at 30 degrees (``clevr_toy``'s default) the toy pictures'
    objects cover more pixels than at 50 (``clevr``'s; measured medians: 549 against 311)."""
    import statistics

    from plugins.clevr import ClevrToySource, ToyConfig

    def median_pixels(fov: float) -> float:
        source = ClevrToySource(ToyConfig(fov=fov), seed=1)
        return statistics.median(p for i in range(30) for p in source.get(i).meta["visible_pixels"])

    from plugins.clevr import Config

    assert ToyConfig().fov == 30 and Config().fov == 50
    assert median_pixels(30) > 450 > 350 > median_pixels(50)
