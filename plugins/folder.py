"""Built-in image source ``folder``: your own pictures, from a directory or a local dataset.

    vzframe run games.spy images=folder image_source.path=~/photos image_source.max_pixels=200704

Every ``.jpg``, ``.jpeg``, ``.png`` and ``.webp`` file under ``path`` (recursively) is
checked once, when the source is built: files that are not images, are corrupt or truncated,
or whose shorter side is below ``min_side`` are skipped, with one warning that gives their
count and the first few paths. A missing folder, or one with no usable picture, is an error
before training starts. Pictures are served in sorted path order (or a seeded shuffle, a new
order each pass), scaled down to at most ``max_pixels`` with the aspect ratio kept and both
sides multiples of 28, and cycle when exhausted. Ids are ``folder:RELATIVE/PATH.jpg``; a
file name that is not valid UTF-8 keeps its undecodable bytes as lone surrogates
(``os.fsdecode``), which the run and the report handle.

Large pictures are decoded at a reduced size: a JPEG at 1/2, 1/4 or 1/8 scale (``draft``),
any other format in full once and then shrunk by an integer factor (``reduce``) before it is
converted, so the scan and a draw hold one decode at most, of a JPEG a small one. A picture
that would need more than ``max_decode_pixels`` pixels decoded (100 megapixels by default:
a PNG that size takes 400 MB decoded, twice that with transparency; counted from the file's
header) is skipped with the other unusable files, never decoded. Pillow's own limit applies on top: a file over
``2 * Image.MAX_IMAGE_PIXELS`` pixels (about 179 megapixels) is skipped too, even a JPEG.

If ``path`` is a Hugging Face ``datasets`` directory (made with ``save_to_disk``) and the
optional ``datasets`` package is installed, its image column is served instead (ids
``hf:NAME/SPLIT:ROW``).
"""

from __future__ import annotations

import io
import math
import random
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

from vzframe.config import ConfigError
from vzframe.hookspecs import hookimpl
from vzframe.types import ImageItem

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
PATCH = 28
"""Both sides of a served picture are multiples of this (Qwen-VL's patch grid)."""
SHOWN = 5
"""How many skipped paths the warning names."""
REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr")
"""Modes ``Image.reduce`` averages correctly; others (palette, 1-bit, 16-bit) are converted first."""


class SkippedFilesWarning(UserWarning):
    """Some files in the image folder were not usable pictures and are skipped."""


class TooLargeError(ValueError):
    """Decoding the picture would take more than ``max_decode_pixels`` pixels."""


class Config(BaseModel):
    """The ``folder`` image source."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    path: str | None = None
    """Directory of pictures (searched recursively), or a Hugging Face datasets directory."""
    max_pixels: int = Field(448 * 448, ge=PATCH * PATCH * 4)
    """Pixel budget: larger pictures are scaled down to at most this many pixels, aspect kept."""
    min_side: int = Field(32, ge=1)
    """Pictures whose shorter side is below this many pixels are skipped as too small."""
    max_decode_pixels: int = Field(100_000_000, ge=PATCH * PATCH * 4)
    """Pictures that would need more pixels than this decoded at once are skipped (a JPEG is decoded at up to 1/8 scale)."""
    shuffle: bool = False
    """Serve in a seeded random order (a new order each pass) instead of sorted by path."""
    split: str = "train"
    """Hugging Face dataset only: the split to serve, if the directory holds several."""
    image_column: str | None = None
    """Hugging Face dataset only: the column of pictures (default: the first image column)."""


def fit(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """Size to serve a ``width`` x ``height`` picture at: both sides multiples of 28, at most
    ``max_pixels``, never scaled up beyond rounding, and of all such sizes next to the ideal
    one, the one whose aspect ratio is closest (then the largest).

    >>> fit(4000, 3000, 448 * 448), fit(640, 480, 112 * 112), fit(100, 60, 448 * 448), fit(10, 500, 448 * 448)
    ((504, 392), (112, 84), (84, 56), (28, 504))
    """
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    steps = [(max(1, math.floor(side * scale / PATCH)), max(1, math.ceil(side * scale / PATCH))) for side in (width, height)]
    options = {(w * PATCH, h * PATCH) for w in steps[0] for h in steps[1]}
    within = [o for o in options if o[0] * o[1] <= max_pixels] or [(steps[0][0] * PATCH, steps[1][0] * PATCH)]
    aspect = math.log(width / height)
    return min(within, key=lambda o: (round(abs(math.log(o[0] / o[1]) - aspect), 3), -o[0] * o[1]))


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: EXIF rotation applied, transparency flattened onto white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def open_image(source: Any) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb warning: ``decode`` applies its own
    cap. Pillow's error, over twice its limit, is still raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def turned(image: Image.Image) -> bool:
    """Whether the picture's EXIF orientation swaps its sides (a quarter turn)."""
    return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)


def stored_fit(size: tuple[int, int], turn: bool, max_pixels: int) -> tuple[int, int]:
    """``fit`` of the upright picture, as a size of the picture stored in the file."""
    return fit(*size[::-1], max_pixels)[::-1] if turn else fit(*size, max_pixels)


def decode(image: Image.Image, max_pixels: int, max_decode_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """The picture as upright RGB, decoded at a reduced size still at least its served size
    (``fit``), and its full upright size. Raises ``TooLargeError`` before decoding anything
    when more than ``max_decode_pixels`` pixels would have to be decoded at once."""
    size = image.size
    # Pillow finds a PNG's EXIF chunk that follows the pixel data only by decoding them all.
    exif_first = image.format != "PNG" or "exif" in image.info
    turn = exif_first and turned(image)
    image.draft("RGB", stored_fit(size, turn, max_pixels))  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still >= that
    if getattr(image, "tile", None) and image.width * image.height > max_decode_pixels:
        raise TooLargeError(
            f"too large to decode ({size[0]}x{size[1]} needs {image.width * image.height:,} pixels decoded; "
            f"max_decode_pixels={max_decode_pixels})"
        )
    image.load()
    turn = turn if exif_first else turned(image)
    target = stored_fit(size, turn, max_pixels)
    factor = min(image.width // target[0], image.height // target[1]) // 2  # keep >= 2x the target for LANCZOS
    if factor >= 2:
        image = (image if image.mode in REDUCIBLE else to_rgb(image)).reduce(factor)
    return to_rgb(image), (size[::-1] if turn else size)


def check_file(path: Path, config: Config) -> str | None:
    """Why ``path`` is not a usable picture, or None if it is. Decodes it as ``get`` will (a
    JPEG at a reduced scale, which still reads every byte), so truncated files are caught here."""
    try:
        with open_image(path) as image:
            w, h = image.size
            if min(w, h) < config.min_side:
                return f"too small ({w}x{h}, min_side={config.min_side})"
            decode(image, config.max_pixels, config.max_decode_pixels)
    except Image.UnidentifiedImageError:
        return "not an image"
    except TooLargeError as exc:
        return str(exc)
    except Image.DecompressionBombError as exc:
        return f"too large to decode ({exc})"
    except Exception as exc:  # truncated, corrupt, unreadable
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def _is_hf_dataset(root: Path) -> bool:
    return any((root / name).is_file() for name in ("dataset_dict.json", "dataset_info.json", "state.json"))


class FolderSource:
    """Pictures from a directory (or a saved Hugging Face dataset), served deterministically."""

    name = "folder"
    Config = Config

    def __init__(self, config: Config, *, seed: int) -> None:
        self.config = config
        self.seed = seed
        if not config.path:
            raise ConfigError("images=folder needs a directory: set image_source.path=DIR (a folder of .jpg/.png/.webp pictures).")
        self.root = Path(config.path).expanduser().resolve()
        if not self.root.exists():
            raise ConfigError(f"Image folder {str(self.root)!r} does not exist. Set image_source.path=DIR to a folder of .jpg, .png or .webp pictures.")
        if not self.root.is_dir():
            raise ConfigError(f"image_source.path={config.path!r} is a file, not a folder. Point it at the folder that holds your pictures.")
        self.skipped: list[tuple[str, str]] = []
        self._dataset: Any = None
        if _is_hf_dataset(self.root):
            self._open_dataset()
            self.names = [str(i) for i in range(len(self._dataset))]
        else:
            self.names = self._scan()
        if not self.names:
            raise ConfigError(
                f"Image folder {str(self.root)!r} holds no usable pictures ({len(self.skipped)} skipped; searched "
                f"recursively for {', '.join(EXTENSIONS)}). Put pictures there or point image_source.path=... elsewhere."
            )

    def _scan(self) -> list[str]:
        files = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.suffix.lower() in EXTENSIONS and p.is_file()
        )
        good = []
        for name in files:
            reason = check_file(self.root / name, self.config)
            if reason is None:
                good.append(name)
            else:
                self.skipped.append((name, reason))
        if self.skipped:
            shown = "; ".join(f"{name} ({why})" for name, why in self.skipped[:SHOWN])
            more = f"; and {len(self.skipped) - SHOWN} more" if len(self.skipped) > SHOWN else ""
            warnings.warn(
                f"Skipped {len(self.skipped)} of {len(files)} files in {self.root} that are not usable pictures: {shown}{more}.",
                SkippedFilesWarning,
                stacklevel=3,
            )
        return good

    def _open_dataset(self) -> None:
        try:
            import datasets
        except ImportError:
            raise ConfigError(
                f"{str(self.root)!r} is a Hugging Face dataset directory; reading it needs the optional package "
                "`datasets` (pip install datasets), or point image_source.path=... at a folder of picture files."
            ) from None
        data = datasets.load_from_disk(str(self.root))
        if isinstance(data, datasets.DatasetDict):
            if self.config.split not in data:
                raise ConfigError(f"Dataset {str(self.root)!r} has no split {self.config.split!r}; it has {sorted(data)}. Set image_source.split=... .")
            data = data[self.config.split]
        column = self.config.image_column or next(
            (name for name, feature in data.features.items() if isinstance(feature, datasets.Image)), None
        )
        if column is None or column not in data.column_names:
            raise ConfigError(
                f"Dataset {str(self.root)!r} has no image column {column!r}; columns: {data.column_names}. Set image_source.image_column=... ."
            )
        self._dataset, self._column = data, column
        self._dataset_name = f"{self.root.name}/{self.config.split}"

    def __len__(self) -> int:
        return len(self.names)

    def order(self, epoch: int) -> list[int]:
        """Positions of ``names`` served in pass ``epoch`` over the pictures."""
        positions = list(range(len(self.names)))
        if self.config.shuffle:
            random.Random(f"{self.seed}:pass{epoch}").shuffle(positions)
        return positions

    def _load(self, name: str) -> tuple[Image.Image, tuple[int, int]]:
        """The picture, upright RGB and decoded at roughly its served size, and its full size."""
        if self._dataset is None:
            image = open_image(self.root / name)
        else:
            image = self._dataset[int(name)][self._column]
            if isinstance(image, dict):  # undecoded: {"bytes": ..., "path": ...}
                image = open_image(io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"])
        return decode(image, self.config.max_pixels, self.config.max_decode_pixels)

    def get(self, index: int) -> ImageItem:
        if index < 0:
            raise IndexError(f"image index must be >= 0; got {index}")
        epoch, position = divmod(index, len(self.names))
        name = self.names[self.order(epoch)[position]]
        image, original = self._load(name)
        served = image.resize(fit(*original, self.config.max_pixels), Image.Resampling.LANCZOS)
        item_id = f"folder:{name}" if self._dataset is None else f"hf:{self._dataset_name}:{name}"
        meta = {"path": name, "original_size": list(original), "size": list(served.size), "pass": epoch}
        return ImageItem(item_id, served, meta)


@hookimpl
def register_image_sources(register) -> None:
    register(FolderSource)
