"""Chart probes: questions about a chart whose answers its data knows (the ``charts`` source).

| probe | question | answers |
|---|---|---|
| ``charts.value`` | What is the value of Mar for Online? (one series: What is the value of Mar?) | the number on the chart's value label (within 1%) |
| ``charts.largest`` | Which month has the largest value? (for one series, or a pie: its largest slice) | the category's name (asked only when the largest is unique) |
| ``charts.compare`` | Is the value of Mar greater than that of May? (for one series) | yes / no (half each; never asked of equal values) |

Registered by ``plugins.charts`` (``register_probes``); pictures seeded by
``vzframe.probes.probe_seed``, never a run's.
"""

from __future__ import annotations

import random
from typing import Any

from vzframe.probes import Ask, GeneratedProbe
from vzframe.types import ImageItem

SOURCES = ("charts",)


def chart(picture: ImageItem) -> dict | None:
    """The chart's data, or None for a picture that is no chart."""
    meta = picture.meta
    return meta if meta.get("series") and meta.get("categories") else None


class Value(GeneratedProbe):
    name = format = "charts.value"
    label = "Charts: read a value"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        from plugins.charts import fmt

        if (meta := chart(picture)) is None:
            return None
        s, c = rng.randrange(len(meta["series"])), rng.randrange(len(meta["categories"]))
        series, category = meta["series"][s], meta["categories"][c]
        where = f" for {series['name']}" if len(meta["series"]) > 1 else ""
        return Ask(f"What is the value of {category}{where}?", (fmt(series["values"][c]),), meta["kind"])


class Largest(GeneratedProbe):
    name = format = "charts.largest"
    label = "Charts: which is largest?"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        if (meta := chart(picture)) is None or len(meta["series"]) != 1:
            return None
        values = meta["series"][0]["values"]
        if values.count(max(values)) != 1:
            return None
        noun = "slice" if meta["kind"] == "pie" else (meta.get("x_label") or "category").lower()
        answer = (meta["categories"][values.index(max(values))],)
        return Ask(f"Which {noun} has the largest value?", answer, meta["kind"], tuple(meta["categories"]))


class Compare(GeneratedProbe):
    name = format = "charts.compare"
    label = "Charts: is A greater than B?"
    sources = SOURCES

    def ask(self, picture: ImageItem, rng: random.Random, source: Any) -> Ask | None:
        if (meta := chart(picture)) is None or len(meta["series"]) != 1:
            return None
        values, names = meta["series"][0]["values"], meta["categories"]
        a, b = rng.sample(range(len(values)), 2)
        if values[a] == values[b]:
            return None
        if (values[a] > values[b]) != (rng.random() < 0.5):
            a, b = b, a  # half the answers yes, half no
        answer = ("yes",) if values[a] > values[b] else ("no",)
        return Ask(f"Is the value of {names[a]} greater than that of {names[b]}?", answer, meta["kind"], ("yes", "no"))


PROBES = (Value(), Largest(), Compare())
