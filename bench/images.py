"""Pictures per second of every built-in image source (shapes, clevr, clevr_toy, charts,
folder), against a baseline run beside them.

    python bench/images.py [--seconds 2]

The baseline is the plainest picture PIL makes: ``Image.new`` of the same size with one
rectangle, saved as PNG (what the run does with every picture it shows). Each source runs
for ``--seconds`` on fresh indices; the ratio is source rate / baseline rate at that source's
picture size, measured right before it, so a loaded machine slows both sides alike. The folder source reads 1024x768 JPEGs from a
temporary folder (its one-off check of every file when built is timed separately).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from plugins.charts import ChartsSource
from plugins.charts import Config as ChartsConfig
from plugins.clevr import ClevrSource, ClevrToySource, ToyConfig
from plugins.clevr import Config as ClevrConfig
from plugins.folder import Config as FolderConfig
from plugins.folder import FolderSource
from plugins.shapes import Config as ShapesConfig
from plugins.shapes import ShapesSource


def rate(make: Callable[[int], object], seconds: float) -> float:
    """Calls of ``make(i)`` per second, for i = 0, 1, ... until ``seconds`` have passed."""
    make(0)  # warm caches (fonts, camera rays)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        make(count + 1)
        count += 1
    return count / elapsed


def baseline(size: tuple[int, int]) -> Callable[[int], object]:
    def make(i: int) -> Image.Image:
        image = Image.new("RGB", size, "#f0f0f0")
        ImageDraw.Draw(image).rectangle((i % 10, 5, size[0] // 2, size[1] // 2), fill="red")
        image.save(io.BytesIO(), format="PNG")
        return image

    return make


def photo_folder(root: Path, count: int = 32) -> Path:
    """``count`` 1024x768 JPEGs of smooth noise, like camera photos to a decoder."""
    for k in range(count):
        image = Image.effect_noise((128, 96), 60 + k).resize((1024, 768), Image.Resampling.BICUBIC)
        Image.merge("RGB", (image, image.rotate(180), image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))).save(root / f"{k:03d}.jpg", quality=90)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    clevr = ClevrSource(ClevrConfig(), seed=0)
    clevr_fast = ClevrSource(ClevrConfig(supersample=1), seed=0)
    clevr_toy = ClevrToySource(ToyConfig(), seed=0)
    charts = ChartsSource(ChartsConfig(), seed=0)
    shapes = ShapesSource(ShapesConfig(), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = photo_folder(Path(tmp))
        t0 = time.perf_counter()
        folder = FolderSource(FolderConfig(path=tmp), seed=0)
        check = (time.perf_counter() - t0) / len(folder)
        folder_size = tuple(folder.get(0).image.size)
        cases = [
            ("shapes", "default", (112, 112), shapes.get),
            ("clevr", "default (supersample=2)", (336, 224), clevr.get),
            ("clevr", "supersample=1", (336, 224), clevr_fast.get),
            ("clevr twin", "twin of a fresh picture", (336, 224), lambda i: clevr.twin(i)),
            ("clevr_toy", "default (2-4 objects, supersample=1)", (168, 112), clevr_toy.get),
            ("charts", "default (supersample=2)", (448, 336), charts.get),
            ("folder", f"1024x768 JPEG -> {folder_size[0]}x{folder_size[1]}", folder_size, folder.get),
        ]
        print(f"{'source':11} {'setting':37} {'size':>9} {'pictures/s':>10} {'ms each':>8} {'baseline/s':>10} {'ratio':>7}")
        for name, setting, size, make in cases:
            base = rate(baseline(size), args.seconds / 2)
            per_second = rate(make, args.seconds)
            print(
                f"{name:11} {setting:37} {size[0]:>4}x{size[1]:<4} {per_second:10.1f} {1000 / per_second:8.2f} "
                f"{base:10.0f} {per_second / base:7.3f}"
            )
        print(f"\nfolder: checking each file when the source is built took {check * 1000:.1f} ms per file ({root.name}).")


if __name__ == "__main__":
    main()
