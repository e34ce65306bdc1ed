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

from vzframe.probes import GeneratedProbe, ProbeItem

SOURCES = ("charts",)


def _pictures(source: Any):
    index = 0
    while True:
        item = source.get(index)
        index += 1
        if item.meta.get("series") and item.meta.get("categories"):
            yield item


def _of(meta: dict) -> str:
    """How a question names the chart's categories: "month", "fruit", ... (its x label)."""
    return (meta.get("x_label") or "category").lower()


class Value(GeneratedProbe):
    name = "charts.value"
    label = "Charts: read a value"
    format = "charts.value"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        from plugins.charts import fmt

        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item in _pictures(source):
            if len(out) >= n:
                break
            meta = item.meta
            s = rng.randrange(len(meta["series"]))
            c = rng.randrange(len(meta["categories"]))
            series, category = meta["series"][s], meta["categories"][c]
            where = f" for {series['name']}" if len(meta["series"]) > 1 else ""
            question = f"What is the value of {category}{where}?"
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, (fmt(series["values"][c]),), meta["kind"]))
        return out


class Largest(GeneratedProbe):
    name = "charts.largest"
    label = "Charts: which is largest?"
    format = "charts.largest"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        out: list[ProbeItem] = []
        for item in _pictures(source):
            if len(out) >= n:
                break
            meta = item.meta
            if len(meta["series"]) != 1:
                continue
            values = meta["series"][0]["values"]
            top = max(values)
            if values.count(top) != 1:
                continue
            noun = "slice" if meta["kind"] == "pie" else _of(meta)
            question = f"Which {noun} has the largest value?"
            answer = (meta["categories"][values.index(top)],)
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, answer, meta["kind"], tuple(meta["categories"])))
        return out


class Compare(GeneratedProbe):
    name = "charts.compare"
    label = "Charts: is A greater than B?"
    format = "charts.compare"
    sources = SOURCES

    def items(self, source: Any, n: int, seed: int) -> list[ProbeItem]:
        rng, out = random.Random(f"{self.name}:{seed}"), []
        for item in _pictures(source):
            if len(out) >= n:
                break
            meta = item.meta
            if len(meta["series"]) != 1:
                continue
            values, names = meta["series"][0]["values"], meta["categories"]
            a, b = rng.sample(range(len(values)), 2)
            if values[a] == values[b]:
                continue
            if (values[a] > values[b]) != (rng.random() < 0.5):
                a, b = b, a  # half the answers yes, half no
            question = f"Is the value of {names[a]} greater than that of {names[b]}?"
            answer = ("yes",) if values[a] > values[b] else ("no",)
            out.append(ProbeItem(f"{self.name}:{len(out)}", item, question, answer, meta["kind"], ("yes", "no")))
        return out


PROBES = (Value(), Largest(), Compare())
