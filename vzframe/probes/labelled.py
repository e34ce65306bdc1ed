"""A user's own labelled set as a probe: a real benchmark, offline.

Either a JSONL file, one item a line::

    {"image": "pics/0001.png", "question": "How many dogs are there?", "answers": ["2", "two"]}

(``image`` relative to the file's folder or absolute; ``answer`` may stand for a one-element
``answers``; ``id``, ``kind`` and ``choices``, the closed set ``--score likelihood`` ranks, are
optional), or a Hugging Face dataset saved with ``save_to_disk`` whose
rows have ``image`` (a picture, or a path), ``question`` and ``answers`` (or ``answer``); that
needs ``pip install datasets``. ``vzframe probe RUN --labelled FILE_OR_DIR``, or register
``LabelledSet(path, name=...)`` from a plugin's ``register_probes``.

Nothing in the file is executed: lines are read with ``json.loads``, pictures with PIL, a
saved dataset with ``datasets.load_from_disk`` (Arrow). An item whose picture is missing or
unreadable, or whose answers are empty, is skipped with one warning naming it (``problems``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vzframe.probes import ProbeItem, any_answer
from vzframe.types import ImageItem

MAX_LINE_CHARS = 1 << 20
"""A JSONL line longer than this is skipped unread."""


class LabelledSet:
    """A probe over the items of a JSONL file or a saved dataset (module docstring)."""

    sources: tuple[str, ...] = ()

    def __init__(self, path: str | Path, *, name: str | None = None, split: str | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"labelled set {str(path)!r} does not exist; give a .jsonl file or a saved dataset's folder")
        stem = self.path.stem if self.path.is_file() else self.path.name
        self.name = name or f"set.{stem}"
        self.label = f"Your set: {stem}"
        self.format = f"labelled:{stem}"
        self.split = split
        self.problems: list[str] = []
        """Why each skipped item was skipped, filled by ``items``."""

    def items(self, source: Any, n: int | None, seed: int) -> list[ProbeItem]:
        """Up to ``n`` valid items (all of them for ``None``), a seeded sample kept in file order."""
        self.problems = []
        rows = list(self._rows())
        if n is not None and n < len(rows):
            keep = sorted(random.Random(f"{self.name}:{seed}").sample(range(len(rows)), n))
            rows = [rows[i] for i in keep]
        out = []
        for where, row in rows:
            item = self._item(where, row)
            if item is not None:
                out.append(item)
        return out

    def score(self, item: ProbeItem, answer: str) -> float:
        return any_answer(answer, item.answers)

    def _rows(self) -> Iterator[tuple[str, Any]]:
        """``(where, row)`` for every row: ``where`` names it in warnings."""
        if self.path.is_file():
            with open(self.path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    where = f"{self.path.name} line {number}"
                    if not line.strip():
                        continue
                    if len(line) > MAX_LINE_CHARS:
                        self.problems.append(f"{where}: longer than {MAX_LINE_CHARS} characters")
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError as exc:
                        self.problems.append(f"{where}: not JSON ({exc})")
                        continue
                    yield where, row
            return
        try:
            import datasets
        except ImportError:
            raise RuntimeError(f"{self.path} is a folder: reading a saved dataset needs `pip install datasets`.") from None
        data = datasets.load_from_disk(str(self.path))
        if isinstance(data, datasets.DatasetDict):
            split = self.split or ("test" if "test" in data else next(iter(data)))
            data = data[split]
        for number, row in enumerate(data):
            yield f"{self.path.name} row {number}", row

    def _item(self, where: str, row: Any) -> ProbeItem | None:
        if not isinstance(row, dict):
            self.problems.append(f"{where}: not an object")
            return None
        question, given = row.get("question"), row.get("answers", row.get("answer"))
        listed = [given] if isinstance(given, (str, int, float)) and not isinstance(given, bool) else given
        listed = listed if isinstance(listed, (list, tuple)) else ()  # true or an object: no answer, not a crash
        answers = tuple(str(a).strip() for a in listed if isinstance(a, (str, int, float)) and str(a).strip())
        if not isinstance(question, str) or not question.strip():
            self.problems.append(f"{where}: no question")
            return None
        if not answers:
            self.problems.append(f"{where}: no answer")
            return None
        image = self._picture(where, row.get("image"))
        if image is None:
            return None
        ident = str(row.get("id", where))
        offered = row.get("choices")
        choices = tuple(str(c) for c in offered if isinstance(c, (str, int, float)) and str(c).strip()) if isinstance(offered, list) else ()
        return ProbeItem(f"{self.name}:{ident}", image, question.strip(), answers, str(row.get("kind", "")), choices)

    def _picture(self, where: str, value: Any) -> ImageItem | None:
        from PIL import Image

        if isinstance(value, Image.Image):
            return ImageItem(f"{self.name}:{where}", value.convert("RGB"), {})
        if not isinstance(value, str) or not value:
            self.problems.append(f"{where}: no image")
            return None
        file = Path(value).expanduser()
        file = file if file.is_absolute() else (self.path.parent if self.path.is_file() else self.path) / file
        try:
            with Image.open(file) as im:
                picture = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            self.problems.append(f"{where}: picture {value!r} is missing or unreadable ({type(exc).__name__})")
            return None
        return ImageItem(f"{self.name}:{value}", picture, {"path": value})


def write_jsonl(items: list[ProbeItem], dest: str | Path) -> Path:
    """Write ``items`` as a labelled set: ``dest`` (a .jsonl file) and its pictures in
    ``dest``'s folder under ``DEST_STEM-images/``. How a probe becomes a benchmark other tools
    (lmms-eval) can read; ``LabelledSet(dest)`` reads it back."""
    dest = Path(dest)
    pictures = dest.with_name(dest.stem + "-images")
    pictures.mkdir(parents=True, exist_ok=True)
    with open(dest, "w") as f:
        for number, item in enumerate(items):
            name = f"{number:05d}.png"
            if item.image is not None:
                item.image.image.save(pictures / name)
            row = {"id": item.id, "image": f"{pictures.name}/{name}", "question": item.question, "answers": list(item.answers)}
            f.write(json.dumps({**row, "kind": item.kind, "choices": list(item.choices)}) + "\n")
    return dest
