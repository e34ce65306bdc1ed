"""``vzframe images preview``: contact sheets of every built-in source, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from plugins.clevr import ClevrSource
from plugins.clevr import Config as ClevrConfig
from vzframe.cli import main

CLI = ["plugins.images_cli"]
FAST_CLEVR = ["width=112", "height=84", "image_source.supersample=1"]


def test_register_commands_adds_images_preview(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["images", "preview", "clevr", "--n", "4", str(out), *FAST_CLEVR], plugins=CLI) == 0
    assert f"Wrote {out} (4 pictures" in capsys.readouterr().out
    sheet = Image.open(out)
    assert sheet.width > 2 * 256 and sheet.height > 256


def test_modified_twins_stand_beside_their_originals(tmp_path):
    out = tmp_path / "twins.png"
    args = ["images", "preview", "clevr", "--n", "2", "--columns", "1", "--tile", "112", "--spy-image", "modified"]
    assert main([*args, str(out), *FAST_CLEVR], plugins=CLI) == 0
    sheet = np.asarray(Image.open(out).convert("RGB"))
    src = ClevrSource(ClevrConfig(width=112, height=84, supersample=1), seed=0)
    rows = []
    for index in range(2):
        item = src.get(index)
        original, twin = _find(sheet, np.asarray(item.image)), _find(sheet, np.asarray(item.twin().image))
        assert original and twin, f"picture {index} and its twin are on the sheet"
        assert original[0] == twin[0] and original[1] < twin[1], "the twin stands to the right of its original"
        rows.append(original[0])
    assert rows[0] < rows[1]


def _find(sheet: np.ndarray, picture: np.ndarray) -> tuple[int, int] | None:
    """(y, x) of the top-left corner where ``picture`` appears pixel for pixel on ``sheet``."""
    h, w = picture.shape[:2]
    for y in range(sheet.shape[0] - h + 1):
        for x in np.flatnonzero((sheet[y, : sheet.shape[1] - w + 1] == picture[0, 0]).all(-1)):
            if (sheet[y : y + h, x : x + w] == picture).all():
                return y, int(x)
    return None


@pytest.mark.parametrize(
    "name, extra", [("charts", ["width=224", "height=168"]), ("shapes", []), ("clevr", FAST_CLEVR), ("clevr_toy", [])]
)
def test_every_builtin_source_previews(tmp_path, name, extra):
    out = tmp_path / f"{name}.png"
    assert main(["images", "preview", name, "--n", "3", "--tile", "96", str(out), *extra], plugins=CLI) == 0
    assert Image.open(out).size[0] >= 96


def test_folder_source_with_blank_spy_pictures(tmp_path):
    pictures = tmp_path / "pics"
    pictures.mkdir()
    for k in range(3):
        Image.new("RGB", (90 + 30 * k, 80), (200, 40 * k, 40)).save(pictures / f"{k}.png")
    out = tmp_path / "out" / "folder.png"
    args = ["images", "preview", "folder", "--n", "3", "--spy-image", "blank", str(out), f"path={pictures}"]
    assert main(args, plugins=CLI) == 0 and out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "x.png"], "Unknown image source 'nope'. Available: charts, clevr, clevr_toy, folder, shapes"),
        (["charts", "--spy-image", "modified", "x.png"], "needs an image source that renders twins"),
        (["clevr", "x.png", "objects=3"], "Unknown config key 'image_source.objects'"),
        (["folder", "x.png"], "set image_source.path=DIR"),
        (["clevr", "a.png", "b.png"], "exactly one output file"),
    ],
)
def test_errors_say_what_to_do(tmp_path, capsys, args, message):
    assert main(["images", "preview", *args], plugins=CLI) == 2
    assert message in capsys.readouterr().err


def test_config_file_supplies_source_settings(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 7\nimage_source:\n  width: 112\n  height: 56\n  supersample: 1\n")
    out = tmp_path / "c.png"
    assert main(["images", "preview", "clevr", "--n", "1", "--tile", "112", "--config", str(config), str(out)], plugins=CLI) == 0
    src = ClevrSource(ClevrConfig(width=112, height=56, supersample=1), seed=7)
    assert _find(np.asarray(Image.open(out).convert("RGB")), np.asarray(src.get(0).image))


def test_the_image_benchmark_measures_every_builtin_source():
    from pathlib import Path

    from vzframe.plugins import build_registry, make_plugin_manager

    bench = (Path(__file__).resolve().parents[1] / "bench" / "images.py").read_text()
    missing = [name for name in build_registry(make_plugin_manager()).image_sources if f'("{name}", ' not in bench]
    assert not missing, f"bench/images.py has no case for {missing}"
