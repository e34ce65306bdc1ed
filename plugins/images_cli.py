"""``vzframe images preview``: look at what an image source feeds the players.

    vzframe images preview clevr --n 16 clevr.png
    vzframe images preview clevr --n 8 --spy-image modified twins.png changes=3
    vzframe images preview folder --n 12 mine.png path=~/photos max_pixels=100352

writes a contact sheet of pictures ``--start .. --start + n - 1`` of source NAME (any source a
loaded plugin registers; ``-p PLUGIN`` loads more), each labelled with its id. With
``--spy-image modified`` each picture stands beside its modified twin, with the changes
listed; with ``--spy-image blank`` beside the spy's blank picture. ``key=value`` settings
(``image_source.`` prefix optional) configure the source, over those of ``--config FILE``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from vzframe.config import ConfigError, deep_merge, load_yaml, parse_overrides, validate
from vzframe.hookspecs import hookimpl
from vzframe.plugins import build_registry, make_plugin_manager
from vzframe.types import ImageItem

LABEL = 12
"""Font size of the labels, in pixels."""


def make_source(name: str, settings: dict[str, Any], seed: int, plugins: Sequence[str] = ()) -> Any:
    """Build image source ``name`` from the default plugins plus ``plugins``, configured by ``settings``."""
    registry = build_registry(make_plugin_manager(list(plugins)))
    if name not in registry.image_sources:
        raise ConfigError(
            f"Unknown image source {name!r}. Available: {', '.join(sorted(registry.image_sources))}. "
            "Load the plugin that provides it with -p PLUGIN; see `vzframe plugins`."
        )
    cls = registry.image_sources[name]
    return cls(validate(cls.Config, settings, "image_source."), seed=seed)


def spy_picture(item: ImageItem, mode: str) -> ImageItem:
    """What the spy would see beside ``item``: its modified twin, or a blank of its size."""
    if mode == "blank":
        return ImageItem(f"blank:#ffffff:{item.image.width}x{item.image.height}", Image.new("RGB", item.image.size, "white"))
    if item.twin is None:
        raise ConfigError(f"--spy-image modified needs an image source that renders twins, e.g. clevr ({item.id!r} has none).")
    return item.twin()


def _changes(item: ImageItem) -> str:
    changes = item.meta.get("changes") or []
    return "; ".join(f"#{c['object']} {c['attribute']} {c['from']}->{c['to']}" for c in changes)


def _tile(item: ImageItem, width: int) -> Image.Image:
    height = max(1, round(item.image.height * width / item.image.width))
    return item.image.resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(rows: list[list[ImageItem]], tile: int, title: str, columns: int | None = None) -> Image.Image:
    """A grid of cells; a cell is one picture, or pictures side by side (original, then spy's),
    each with its id below, and the twin's changes if it has any."""
    font = ImageFont.load_default(size=LABEL)
    per_cell = max(len(r) for r in rows)
    tiles = [[_tile(item, tile) for item in r] for r in rows]
    tile_h = max(t.height for ts in tiles for t in ts)
    notes = any(_changes(item) for r in rows for item in r)
    cell_w = per_cell * tile + (per_cell - 1) * 4
    cell_h = tile_h + (LABEL + 4) * (1 + notes)
    if columns is None:
        columns = max(1, min(len(rows), round(math.sqrt(len(rows) * cell_h / cell_w * 1.6))))
    grid_rows = math.ceil(len(rows) / columns)
    gap, top = 10, LABEL + 16
    sheet = Image.new("RGB", (columns * (cell_w + gap) + gap, top + grid_rows * (cell_h + gap)), "#202020")
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 6), title, fill="white", font=font)
    for k, (items, images) in enumerate(zip(rows, tiles)):
        x = gap + (k % columns) * (cell_w + gap)
        y = top + (k // columns) * (cell_h + gap)
        for j, (item, image) in enumerate(zip(items, images)):
            left = x + j * (tile + 4)
            sheet.paste(image, (left, y))
            label = item.id if len(items) == 1 else ("citizens: " if j == 0 else "spy: ") + item.id
            draw.text((left, y + tile_h + 2), _fit(draw, label, font, tile), fill="#dddddd", font=font)
            if note := _changes(item):
                draw.text((x, y + tile_h + LABEL + 6), _fit(draw, note, font, cell_w), fill="#ffcc66", font=font)
    return sheet


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def cmd_preview(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    seed = args.seed
    if args.config:
        data = load_yaml(args.config)
        settings = dict(data.get("image_source") or {})
        seed = data.get("seed", seed) if args.seed is None else seed
    outs = [a for a in args.items if "=" not in a]
    if len(outs) != 1:
        raise ConfigError(f"Give exactly one output file (e.g. sheet.png) besides key=value settings; got {outs or 'none'}.")
    overrides = [a.removeprefix("image_source.") for a in args.items if "=" in a]
    settings = deep_merge(settings, parse_overrides(overrides))
    seed = 0 if seed is None else seed
    if args.n < 1:
        raise ConfigError("--n must be at least 1.")
    source = make_source(args.name, settings, seed, args.plugin)
    t0 = time.perf_counter()
    rows = []
    for index in range(args.start, args.start + args.n):
        item = source.get(index)
        rows.append([item, spy_picture(item, args.spy_image)] if args.spy_image else [item])
    seconds = time.perf_counter() - t0
    shown = " ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    spy = f"  spy image: {args.spy_image}" if args.spy_image else ""
    title = f"{args.name}  seed={seed}  pictures {args.start}..{args.start + args.n - 1}{spy}  {shown}".rstrip()
    out = Path(outs[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, args.tile, title, args.columns).save(out)
    pictures = sum(len(r) for r in rows)
    print(f"Wrote {out} ({pictures} pictures made in {seconds:.2f} s, {pictures / max(seconds, 1e-9):.1f}/s)")
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    images = subparsers.add_parser("images", help="look at image sources: vzframe images preview clevr --n 16 out.png")
    sub = images.add_subparsers(dest="images_command", required=True)
    p = sub.add_parser(
        "preview",
        help="write a contact sheet of an image source's pictures",
        description="Write a contact sheet, e.g. `vzframe images preview clevr --n 8 --spy-image modified out.png changes=3`.",
    )
    p.add_argument("name", help="image source: clevr, clevr_toy, charts, folder, shapes, or one a plugin adds")
    p.add_argument("items", nargs="+", metavar="OUT.png|key=value", help="the sheet to write, and image_source settings")
    p.add_argument("--n", type=int, default=16, help="pictures to show (default 16)")
    p.add_argument("--start", type=int, default=0, help="index of the first picture (default 0)")
    p.add_argument("--seed", type=int, default=None, help="the run seed (default: --config's, else 0)")
    p.add_argument("--spy-image", choices=("blank", "modified"), default=None, help="show the spy's picture beside each")
    p.add_argument("--tile", type=int, default=256, help="width of each picture on the sheet, in pixels")
    p.add_argument("--columns", type=int, default=None, help="cells per row (default: about square)")
    p.add_argument("--config", help="a run's YAML config: its image_source and seed are the defaults")
    p.add_argument("-p", "--plugin", action="append", default=[], help="also load this plugin (repeatable)")
    p.set_defaults(func=cmd_preview)
