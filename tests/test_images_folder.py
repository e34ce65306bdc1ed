"""The built-in ``folder`` image source: every kind of bad file, errors, resizing, order."""

from __future__ import annotations

import doctest
import io
import json
import math
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageFile

import plugins.folder
from plugins.folder import PATCH, Config, FolderSource, SkippedFilesWarning
from vzframe.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = {  # relative path -> (size, mode, format)
    "a.jpg": ((640, 480), "RGB", "JPEG"),
    "sub/b.png": ((300, 200), "RGBA", "PNG"),
    "sub/deeper/c.webp": ((200, 300), "RGB", "WEBP"),
    "D.JPEG": ((120, 100), "L", "JPEG"),
    "e.jpeg": ((1000, 250), "RGB", "JPEG"),
}


def _encoded(size: tuple[int, int], mode: str, fmt: str, seed: int = 0) -> bytes:
    gray = Image.linear_gradient("L").resize(size)
    if mode == "RGB":
        image = Image.merge("RGB", (gray, gray.rotate(90 + seed), Image.new("L", size, 40 * seed % 255)))
    else:
        image = gray.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


BAD = {  # relative path -> content, in sorted order
    "bad.jpg": b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10,
    "empty.png": b"",
    "notes.jpg": b"These are my notes, saved with the wrong extension.\n" * 20,
    "sub/tiny.png": _encoded((10, 12), "RGB", "PNG"),
    "trunc.jpg": _encoded((400, 300), "RGB", "JPEG")[:1500],
    "trunc.png": _encoded((400, 300), "RGB", "PNG")[:900],
}


@pytest.fixture
def folder(tmp_path):
    for k, (name, (size, mode, fmt)) in enumerate(GOOD.items()):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encoded(size, mode, fmt, seed=k))
    for name, content in BAD.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "README.txt").write_text("not a picture, and not named like one: ignored")
    return tmp_path


def make(path, seed: int = 0, **config) -> FolderSource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFilesWarning)
        return FolderSource(Config(path=str(path), **config), seed=seed)


def test_every_bad_file_kind_is_skipped_with_one_warning(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = FolderSource(Config(path=str(folder)), seed=0)
    skipped = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert f"Skipped 6 of 11 files in {folder}" in message
    names = sorted(BAD)
    for name in names[:5]:
        assert name in message
    assert names[5] not in message and "and 1 more" in message
    assert src.names == sorted(GOOD)
    reasons = dict(src.skipped)
    assert list(reasons) == names
    assert reasons["notes.jpg"] == "not an image" and reasons["bad.jpg"].startswith("unreadable")
    assert reasons["sub/tiny.png"] == "too small (10x12, min_side=32)"
    assert reasons["trunc.jpg"].startswith("unreadable") and "truncated" in reasons["trunc.jpg"]
    assert reasons["trunc.png"].startswith("unreadable") and reasons["empty.png"] == "not an image"


def test_a_clean_folder_warns_nothing(folder):
    for name in BAD:
        (folder / name).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(FolderSource(Config(path=str(folder)), seed=0)) == len(GOOD)


@pytest.mark.parametrize("max_pixels", [PATCH * PATCH * 4, 112 * 112, 448 * 448])
def test_resize_respects_the_pixel_budget_and_the_grid(folder, max_pixels):
    src = make(folder, max_pixels=max_pixels)
    for index in range(len(GOOD)):
        item = src.get(index)
        w, h = item.image.size
        ow, oh = GOOD[item.meta["path"]][0]
        assert item.image.mode == "RGB"
        assert w * h <= max_pixels and w % PATCH == 0 and h % PATCH == 0
        assert item.meta["original_size"] == [ow, oh] and item.meta["size"] == [w, h]
        if min(w, h) >= 3 * PATCH:  # coarse grids cannot keep the aspect exactly
            assert abs(math.log(w / h) - math.log(ow / oh)) < 0.2
        if ow * oh <= max_pixels:
            assert abs(w - ow) < PATCH and abs(h - oh) < PATCH, "small pictures only snap to the grid"


def test_ids_order_and_cycling(folder):
    src = make(folder)
    ids = [src.get(i).id for i in range(len(GOOD) * 2)]
    assert ids[: len(GOOD)] == [f"folder:{name}" for name in sorted(GOOD)]
    assert ids[len(GOOD) :] == ids[: len(GOOD)]
    assert src.get(1).meta["pass"] == 0 and src.get(len(GOOD) + 1).meta["pass"] == 1


def test_same_seed_same_pixels_and_seeded_shuffle(folder):
    a, b = make(folder, seed=4, shuffle=True), make(folder, seed=4, shuffle=True)
    first = [a.get(i) for i in range(len(GOOD) * 3)]
    assert [x.id for x in first] == [b.get(i).id for i in range(len(GOOD) * 3)]
    assert first[2].image.tobytes() == b.get(2).image.tobytes()
    passes = [[x.id for x in first[k * len(GOOD) : (k + 1) * len(GOOD)]] for k in range(3)]
    assert all(sorted(p) == sorted(f"folder:{n}" for n in GOOD) for p in passes), "each pass shows every picture once"
    orders = {tuple(make(folder, seed=s, shuffle=True).get(i).id for i in range(len(GOOD))) for s in range(6)}
    assert len(orders) >= 3, "the seed changes the order"


def test_transparency_is_flattened_onto_white(folder):
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 50, 100))
    image.save(folder / "alpha.png")
    src = make(folder)
    item = src.get(src.names.index("alpha.png"))
    assert item.image.getpixel((5, 50))[2] > 200 and item.image.getpixel((item.image.width - 5, 50)) == (255, 255, 255)


def test_missing_empty_and_unusable_folders_fail_when_built(tmp_path):
    with pytest.raises(ConfigError, match="needs a directory: set image_source.path=DIR"):
        FolderSource(Config(), seed=0)
    with pytest.raises(ConfigError, match="does not exist. Set image_source.path=DIR"):
        FolderSource(Config(path=str(tmp_path / "nope")), seed=0)
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        FolderSource(Config(path=str(tmp_path / "file.jpg")), seed=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"holds no usable pictures \(0 skipped"):
        FolderSource(Config(path=str(empty)), seed=0)
    with pytest.warns(SkippedFilesWarning, match="Skipped 1 of 1"), pytest.raises(ConfigError, match=r"\(1 skipped"):
        FolderSource(Config(path=str(tmp_path)), seed=0)


def test_huggingface_dataset_directory(tmp_path, monkeypatch):
    """A saved dataset is read through ``datasets`` when it is installed (faked here)."""
    (tmp_path / "dataset_info.json").write_text("{}")
    rows = [{"img": Image.new("RGB", (600, 400), "red")}, {"img": {"bytes": _encoded((90, 60), "RGB", "PNG"), "path": None}}]

    class FakeImage:
        pass

    class FakeDataset:
        features = {"label": object(), "img": FakeImage()}
        column_names = ["label", "img"]

        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return rows[i]

    fake = types.SimpleNamespace(Image=FakeImage, DatasetDict=dict, load_from_disk=lambda path: FakeDataset())
    monkeypatch.setitem(sys.modules, "datasets", fake)
    src = FolderSource(Config(path=str(tmp_path), max_pixels=200 * 200), seed=0)
    items = [src.get(i) for i in range(3)]
    assert [i.id for i in items] == [f"hf:{tmp_path.name}/train:0", f"hf:{tmp_path.name}/train:1", f"hf:{tmp_path.name}/train:0"]
    assert items[0].image.size == (224, 140) and items[1].image.size == (84, 56)
    json.dumps(items[0].meta)

    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed
    with pytest.raises(ConfigError, match="pip install datasets"):
        FolderSource(Config(path=str(tmp_path)), seed=0)


def test_doctests_and_documented_fields():
    assert doctest.testmod(plugins.folder).failed == 0
    assert all(f.description for f in Config.model_fields.values())


def test_a_resumed_cursor_continues_with_the_same_pictures(folder):
    """What a resumed run relies on: the run's image cursor only stores its position."""
    from vzframe.rollout.play import ImageCursor

    src = make(folder, seed=9, shuffle=True)
    straight = ImageCursor(src, rank=0, world=1)
    ids = [straight.draw().id for _ in range(12)]
    resumed = ImageCursor(make(folder, seed=9, shuffle=True), rank=0, world=1, position=7)
    assert [resumed.draw().id for _ in range(5)] == ids[7:]


def test_a_file_name_that_is_not_utf8_is_served_and_saved(tmp_path):
    """``os.fsdecode`` keeps undecodable bytes as lone surrogates; the run names its picture
    file after the id anyway (``image_filename``, ``save_images``)."""
    from vzframe.rundir import image_filename, save_images

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    try:
        fd = os.open(os.fsencode(pictures) + b"/\xff\xfe.png", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:  # a file system that only takes UTF-8 names
        pytest.skip("this file system refuses non-UTF-8 file names")
    with os.fdopen(fd, "wb") as f:
        f.write(_encoded((64, 48), "RGB", "PNG"))
    item = make(pictures).get(0)
    assert item.id == "folder:\udcff\udcfe.png" and item.image.size == (84, 56)
    name = image_filename(item.id)
    assert name.isascii() and name.endswith(".png")
    out = tmp_path / "run"
    out.mkdir()
    save_images(out, [types.SimpleNamespace(images=[item]), types.SimpleNamespace(images=[item])])
    assert [p.name for p in (out / "images").iterdir()] == [name]
    assert Image.open(out / "images" / name).size == (84, 56)
    assert json.loads(json.dumps({"images": [item.id]})) == {"images": [item.id]}  # how episodes.jsonl keeps it


MEASURE = """
import json, re, sys, warnings
from PIL import Image
from plugins.folder import Config, FolderSource

def peak_mb(step):  # Linux: reset the peak resident size, run step, read the peak back
    status = lambda key: int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read())[1]) / 1024
    open("/proc/self/clear_refs", "w").write("5")
    start = status("VmRSS")
    out = step()
    return out, status("VmHWM") - start

warnings.simplefilter("error", Image.DecompressionBombWarning)
source, scan = peak_mb(lambda: FolderSource(Config(path=sys.argv[1]), seed=0))
item, draw = peak_mb(lambda: source.get(0))
print(json.dumps({"size": item.image.size, "scan": scan, "draw": draw}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures peak memory through Linux's /proc")
@pytest.mark.parametrize(
    ("name", "size", "mode", "bound_mb"),
    [
        ("big.jpg", (6000, 6000), "L", 20),  # decoded at 1/8 scale, 750x750 (the full picture is 36 MB)
        ("big.png", (4000, 4000), "RGB", 80),  # one full decode, 64 MB (three copies, 190 MB, before)
    ],
)
def test_a_big_picture_is_decoded_at_a_reduced_size(tmp_path, name, size, mode, bound_mb):
    """Peak memory of the scan and of one draw stay near one reduced decode, measured in a
    fresh process (Pillow's pixel buffers are invisible to ``tracemalloc``)."""
    Image.new(mode, size, 90).save(tmp_path / name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    measured = json.loads(done.stdout)
    assert tuple(measured["size"]) == (448, 448)
    assert measured["scan"] < bound_mb and measured["draw"] < bound_mb, measured


def test_a_picture_over_the_decode_cap_is_skipped_before_decoding(tmp_path, monkeypatch):
    """The cap counts pixels decoded: a JPEG shrinks while it decodes, so only the PNG of the
    same size is over it. The skipped one is never decoded."""
    Image.new("RGB", (600, 600), "red").save(tmp_path / "a.jpg")
    Image.new("RGB", (600, 600), "red").save(tmp_path / "b.png")
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded") if self.format == "PNG" else load(self))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = FolderSource(Config(path=str(tmp_path), max_pixels=112 * 112, max_decode_pixels=100_000), seed=0)
    assert src.names == ["a.jpg"]
    (skipped,) = [str(w.message) for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert "b.png (too large to decode (600x600 needs 360,000 pixels decoded; max_decode_pixels=100000))" in skipped


def test_pillows_decompression_bomb_limit_skips_and_never_crashes(tmp_path, monkeypatch):
    Image.new("RGB", (600, 400), "red").save(tmp_path / "a.jpg")
    Image.new("RGB", (700, 700), "red").save(tmp_path / "b.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # a.jpg: Pillow warns; b.jpg: over twice, Pillow's error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("always", SkippedFilesWarning)
        src = FolderSource(Config(path=str(tmp_path)), seed=0)
        assert src.get(0).id == "folder:a.jpg"
    (skipped,) = [str(w.message) for w in caught]
    assert "b.jpg (too large to decode (Image size (490000 pixels) exceeds limit" in skipped
