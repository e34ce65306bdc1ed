"""Built-in image source ``charts``: bar, line and pie charts of random data, drawn with PIL.

Every chart has a title, a legend and value labels; bar and line charts also have axis
labels, ticks and grid lines. ``get(i)`` is pure in ``(seed, i)``. ``meta`` holds what was
drawn: ``kind``, ``title``, ``x_label``, ``y_label``, ``categories``, ``series`` (each
``{name, values, color}``) and ``layout`` (bar/line: the plot box ``[x0, y0, x1, y1]`` in
pixels and the value range ``y_max`` at its top, 0 at its bottom; pie: ``center``,
``radius``, and slices drawn clockwise from 12 o'clock in category order). A pie's one series
also has ``colors``, one per slice. Every key, its values and units: docs/images.md.

``describe(item)`` says what a chart shows, for a game's teacher (``describe_chart``). The
chart probes (``plugins/chart_probes.py``: a value, the largest, a comparison) ask about it.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Literal

from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vzframe.hookspecs import hookimpl
from vzframe.types import ImageItem

Kind = Literal["bar", "line", "pie"]
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")
"""Series and slice colours (Tableau 10), all distinct from the white background and grey ink."""
COLOR_NAMES = dict(zip(PALETTE, ("blue", "orange", "red", "teal", "green", "yellow", "purple", "brown")))
"""What a person calls each palette colour (``describe``)."""
INK, GRID = "#333333", "#dddddd"

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
YEARS = tuple(str(y) for y in range(2015, 2027))
TOPICS: tuple[tuple[str, str, str, tuple[str, ...], float, tuple[str, str, str]], ...] = (
    # (title, x label, y label with unit, categories, typical value, series names)
    ("Monthly sales", "Month", "Sales (k$)", MONTHS, 120, ("Online", "Retail", "Wholesale")),
    ("Rainfall by month", "Month", "Rainfall (mm)", MONTHS, 80, ("Oslo", "Lima", "Perth")),
    ("Website visits", "Day", "Visits", DAYS, 900, ("Desktop", "Mobile", "Tablet")),
    ("Fruit harvest", "Fruit", "Harvest (t)", ("Apple", "Pear", "Plum", "Cherry", "Grape", "Peach", "Kiwi", "Mango"), 40, ("2023", "2024", "2025")),
    ("Energy by source", "Source", "Energy (TWh)", ("Coal", "Gas", "Solar", "Wind", "Hydro", "Nuclear", "Oil", "Biomass"), 60, ("2000", "2010", "2020")),
    ("Exam results", "Subject", "Average score", ("Math", "Physics", "History", "Art", "Biology", "Music", "French", "Chemistry"), 70, ("Class A", "Class B", "Class C")),
    ("Annual revenue", "Year", "Revenue (M$)", YEARS, 25, ("Product X", "Product Y", "Product Z")),
    ("City population", "City", "Population (k)", ("Avon", "Brixton", "Corby", "Dunmore", "Elgin", "Fenwick", "Garth", "Hollis"), 400, ("1990", "2005", "2020")),
    ("Survey answers", "Answer", "Respondents", ("Never", "Rarely", "Sometimes", "Often", "Always", "Unsure", "Other", "No reply"), 150, ("Age 18-34", "Age 35-54", "Age 55+")),
    ("Store visitors", "Store", "Visitors", ("North", "South", "East", "West", "Central", "Harbour", "Airport", "Mall"), 300, ("Weekday", "Weekend", "Holiday")),
)


class Config(BaseModel):
    """The ``charts`` image source."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    width: int = Field(448, ge=224, le=2016, multiple_of=28)
    """Picture width in pixels (a multiple of 28, the Qwen-VL patch grid)."""
    height: int = Field(336, ge=168, le=2016, multiple_of=28)
    """Picture height in pixels (a multiple of 28)."""
    kinds: list[Kind] = Field(default_factory=lambda: ["bar", "line", "pie"], min_length=1)
    """Chart kinds to draw, picked uniformly per picture."""
    min_points: int = Field(3, ge=2, le=8)
    """Fewest categories (bars per series, points per line, pie slices)."""
    max_points: int = Field(7, ge=2, le=8)
    """Most categories."""
    max_series: int = Field(3, ge=1, le=3)
    """Most data series in a bar or line chart (pies have one)."""
    supersample: int = Field(2, ge=1, le=4)
    """Draw this many times larger and reduce, for smooth lines and edges (1 is fastest)."""

    @model_validator(mode="after")
    def _min_le_max(self) -> Config:
        if self.min_points > self.max_points:
            raise ValueError(f"min_points ({self.min_points}) must not exceed max_points ({self.max_points})")
        return self


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` pixels (the same on every machine)."""
    return ImageFont.load_default(size=size)


def nice_max(value: float) -> tuple[float, float]:
    """A round axis maximum above ``value`` (with room for labels) and its tick step.

    >>> nice_max(87), nice_max(0.9), nice_max(1234)
    ((100.0, 20.0), (1.0, 0.2), (1500.0, 250.0))
    """
    target = max(value * 1.1, 1e-9)
    magnitude = 10 ** math.floor(math.log10(target / 5))
    for m in (1, 2, 2.5, 5, 10):
        step = m * magnitude
        if target / step <= 5.5:
            break
    return float(math.ceil(target / step) * step), float(step)


def fmt(value: float) -> str:
    """A value label: integers plainly, others with one decimal.

    >>> fmt(12.0), fmt(3.25), fmt(1500.0)
    ('12', '3.2', '1500')
    """
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def sample_data(rng: random.Random, config: Config) -> dict:
    """Kind, labels, categories and series of one chart."""
    kind = rng.choice(config.kinds)
    title, x_label, y_label, pool, typical, series_names = rng.choice(TOPICS)
    n = rng.randint(config.min_points, config.max_points)
    start = rng.randrange(len(pool) - n + 1)
    categories = list(pool[start : start + n]) if pool in (MONTHS, DAYS, YEARS) else rng.sample(pool, n)
    n_series = 1 if kind == "pie" else rng.randint(1, config.max_series)
    if kind == "bar":
        n_series = min(n_series, max(1, 15 // n))  # keep bars wide enough for their labels
    names = list(series_names[:n_series]) if n_series > 1 else [y_label.split(" (")[0]]
    decimals = typical < 50 and rng.random() < 0.5
    series = []
    for s, name in enumerate(names):
        level = typical * rng.uniform(0.5, 1.5)
        values = [level * rng.uniform(0.25, 1.0) for _ in categories]
        values = [round(v, 1) if decimals else float(max(1, round(v))) for v in values]
        series.append({"name": name, "values": values, "color": PALETTE[s]})
    if kind == "pie":
        series[0]["name"] = title
        title = f"{title} (share)"
    return {"kind": kind, "title": title, "x_label": x_label, "y_label": y_label, "categories": categories, "series": series}


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, anchor: str, fill: str = INK) -> None:
    draw.text(xy, text, fill=fill, font=font(size), anchor=anchor)


def _legend(draw: ImageDraw.ImageDraw, items: list[tuple[str, str]], right: int, top: int, size: int) -> int:
    """A framed legend whose right edge is at ``right``; returns its width."""
    f = font(size)
    width = max(draw.textlength(name, font=f) for name, _ in items) + size * 2.2
    line = size + 4
    box = (right - width, top, right, top + line * len(items) + 6)
    draw.rectangle(box, fill="white", outline=GRID)
    for k, (name, color) in enumerate(items):
        y = top + 4 + k * line
        draw.rectangle((box[0] + 5, y + 2, box[0] + 5 + size - 4, y + size - 2), fill=color)
        _text(draw, (box[0] + size + 6, y + size / 2), name, size, "lm")
    return int(width)


def _axes(draw: ImageDraw.ImageDraw, data: dict, box: tuple[int, int, int, int], y_max: float, step: float, size: int) -> None:
    """Grid lines, ticks, tick labels, axis lines and axis labels of a bar or line chart."""
    x0, y0, x1, y1 = box
    thin = max(1, size // 10)
    ticks = round(y_max / step)
    for k in range(ticks + 1):
        y = y1 - (y1 - y0) * k / ticks
        if k:
            draw.line((x0, y, x1, y), fill=GRID, width=thin)
        draw.line((x0 - size // 2, y, x0, y), fill=INK, width=thin)
        _text(draw, (x0 - size // 2 - 2, y), fmt(round(k * step, 6)), size, "rm")
    draw.line((x0, y0, x0, y1), fill=INK, width=thin)
    draw.line((x0, y1, x1, y1), fill=INK, width=thin)
    _text(draw, ((x0 + x1) / 2, draw.im.size[1] - 4), data["x_label"], size, "md")
    label = Image.new("L", (int(draw.textlength(data["y_label"], font=font(size))) + 4, size + 4), 0)
    ImageDraw.Draw(label).text((2, 2), data["y_label"], fill=255, font=font(size))
    label = label.rotate(90, expand=True)
    draw.bitmap((2, (y0 + y1) / 2 - label.size[1] / 2), label, fill=INK)


def draw_chart(data: dict, width: int, height: int) -> tuple[Image.Image, dict]:
    """Draw ``data``; returns the picture and its layout (see the module docstring)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    unit = max(10, round(width / 40))
    small, title_size = unit, round(unit * 1.45)
    _text(draw, (width / 2, 6), data["title"], title_size, "ma")
    top = 6 + title_size + 10
    if data["kind"] == "pie":
        return image, _pie(draw, data, width, height, top, small)
    legend_items = [(s["name"], s["color"]) for s in data["series"]]
    legend_w = _legend(draw, legend_items, width - 6, top, small)
    box = (unit * 4 + 8, top + 4, width - legend_w - 16, height - unit * 3 - 4)
    peak = max(v for s in data["series"] for v in s["values"])
    y_max, step = nice_max(peak)
    _axes(draw, data, box, y_max, step, small)
    x0, y0, x1, y1 = box
    n = len(data["categories"])
    slot = (x1 - x0) / n
    for c, name in enumerate(data["categories"]):
        _text(draw, (x0 + slot * (c + 0.5), y1 + 5), name, small, "ma")

    def y_of(v: float) -> float:
        return y1 - (y1 - y0) * v / y_max

    if data["kind"] == "bar":
        m = len(data["series"])
        bar = slot * 0.8 / m
        for s, series in enumerate(data["series"]):
            for c, v in enumerate(series["values"]):
                left = x0 + slot * c + slot * 0.1 + bar * s
                draw.rectangle((round(left) + 1, round(y_of(v)), round(left + bar) - 1, y1 - 1), fill=series["color"])
                _text(draw, (left + bar / 2, y_of(v) - 2), fmt(v), max(small - 2 * (m > 1), 8), "md")
    else:
        r = max(3, unit // 3)
        for series in data["series"]:
            points = [(x0 + slot * (c + 0.5), y_of(v)) for c, v in enumerate(series["values"])]
            draw.line(points, fill=series["color"], width=max(2, unit // 5), joint="curve")
            for x, y in points:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=series["color"])
        for c in range(n):  # the highest value's label above its point, the others' below
            column = [s["values"][c] for s in data["series"]]
            for s, v in enumerate(column):
                above = v == max(column) and column.index(v) == s
                y = y_of(v) - r - 2 if above else y_of(v) + r + 2
                _text(draw, (x0 + slot * (c + 0.5), y), fmt(v), max(small - 2, 8), "md" if above else "ma")
    return image, {"plot": list(box), "y_max": y_max}


def _pie(draw: ImageDraw.ImageDraw, data: dict, width: int, height: int, top: int, size: int) -> dict:
    values, categories = data["series"][0]["values"], data["categories"]
    colors = list(PALETTE[: len(values)])
    data["series"][0]["colors"] = colors
    legend_items = [(f"{c} ({fmt(v)})", col) for c, v, col in zip(categories, values, colors)]
    legend_w = _legend(draw, legend_items, width - 6, top, size)
    radius = min((width - legend_w - 30) / 2, (height - top) / 2 - size)
    cx, cy = (width - legend_w - 6) / 2, top + (height - top) / 2
    total, angle = sum(values), -90.0
    for v, color in zip(values, colors):
        sweep = 360 * v / total
        draw.pieslice((cx - radius, cy - radius, cx + radius, cy + radius), angle, angle + sweep, fill=color, outline="white")
        if sweep > 18:
            mid = math.radians(angle + sweep / 2)
            _text(draw, (cx + 0.62 * radius * math.cos(mid), cy + 0.62 * radius * math.sin(mid)), f"{100 * v / total:.0f}%", size, "mm", "white")
        angle += sweep
    return {"center": [round(cx, 2), round(cy, 2)], "radius": round(radius, 2)}


def describe_chart(meta: dict) -> tuple[str, ...]:
    """Short phrases, each true of the chart ``meta`` describes: its kind, how many bars,
    lines or slices it has, its title, then each series' colour and legend name (a pie: its
    slices' labels; their colours are always the palette's first few). In that order, without
    repeats; ``()`` for a picture that is no chart.

    >>> describe_chart({"kind": "bar", "title": "Fruit harvest", "categories": ["Apple", "Pear", "Kiwi"],
    ...                 "series": [{"name": "2023", "values": [1, 2, 3], "color": "#4e79a7"}]})
    ('a bar chart', 'a chart with 3 bars', 'a title "Fruit harvest"', 'a blue bar', 'a legend entry "2023"')
    >>> describe_chart({"kind": "pie", "title": "Energy (share)", "categories": ["Coal", "Gas"],
    ...                 "series": [{"name": "Energy", "values": [1, 2], "colors": ["#4e79a7", "#f28e2b"]}]})[1:]
    ('a pie with 2 slices', 'a title "Energy (share)"', 'a slice labelled "Coal"', 'a slice labelled "Gas"')
    """
    kind, series, categories = meta.get("kind"), meta.get("series") or [], meta.get("categories") or []
    if kind not in ("bar", "line", "pie") or not series:
        return ()
    if kind == "bar":
        count = f"a chart with {len(categories) * len(series)} bars"
    elif kind == "line":
        count = "a chart with one line" if len(series) == 1 else f"a chart with {len(series)} lines"
    else:
        count = f"a pie with {len(categories)} slices"
    phrases = [f"a {kind} chart", count, f'a title "{meta.get("title", "")}"']
    if kind == "pie":  # its slices take the palette in order: their labels tell pies apart
        phrases += [f'a slice labelled "{c}"' for c in categories]
    else:
        for s in series:
            name = COLOR_NAMES.get(s["color"], s["color"])
            phrases.append(f"{'an' if name[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {name} {kind}")
        phrases += [f'a legend entry "{s["name"]}"' for s in series]
    return tuple(dict.fromkeys(phrases))


class ChartsSource:
    """Deterministic bar, line and pie charts of random data."""

    name = "charts"
    Config = Config

    def __init__(self, config: Config, *, seed: int) -> None:
        self.config = config
        self.seed = seed

    def data(self, index: int) -> dict:
        """What picture ``index`` shows, without drawing it."""
        if index < 0:
            raise IndexError(f"image index must be >= 0; got {index}")
        return sample_data(random.Random(f"{self.seed}:{index}"), self.config)

    def get(self, index: int) -> ImageItem:
        data = self.data(index)
        s = self.config.supersample
        image, layout = draw_chart(data, self.config.width * s, self.config.height * s)
        if s > 1:
            image = image.reduce(s)
            layout = {k: [round(x / s, 2) for x in v] if isinstance(v, list) else (v if k == "y_max" else round(v / s, 2)) for k, v in layout.items()}
        return ImageItem(f"charts:{self.seed}:{index}", image, {**data, "layout": layout})

    def describe(self, item: ImageItem) -> tuple[str, ...]:
        """What chart ``item`` shows (``describe_chart`` of its meta); ``()`` for a blank picture."""
        return () if item.meta.get("blank") else describe_chart(item.meta)


@hookimpl
def register_image_sources(register) -> None:
    register(ChartsSource)


@hookimpl
def register_probes(register) -> None:
    from plugins.chart_probes import PROBES

    for probe in PROBES:
        register(probe)
