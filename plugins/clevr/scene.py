"""CLEVR-like scene graphs: sampling a scene, the camera, and the modified twin.

A scene is a list of objects, each a JSON-friendly dict ``{shape, color, size, material, x,
y, rotation}`` plus, once projected, ``pixel`` (its centre in the picture) and ``depth``.
Positions are on the ground plane z = 0 in ``[-3, 3]^2`` (CLEVR's units); every object's
footprint is a disc of radius ``RADIUS[size]`` (a cube's half-side is ``r / sqrt(2)``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property

import numpy as np

SHAPES = ("cube", "sphere", "cylinder")
COLORS: dict[str, tuple[int, int, int]] = {  # CLEVR's eight colours
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SIZES: dict[str, float] = {"large": 0.7, "small": 0.35}
MATERIALS = ("rubber", "metal")
ATTRIBUTES = ("color", "shape", "material", "size")
"""What a twin may change about an object; its position and rotation never change."""
MIN_GAP = 0.25
"""Smallest distance between two footprints on the ground."""
MAX_OCCLUDED = 0.45
"""Largest share of an object's outline that nearer objects may cover."""


def height(obj: dict) -> float:
    """Height of the object's top above the ground."""
    r = SIZES[obj["size"]]
    return 2 * r / math.sqrt(2) if obj["shape"] == "cube" else 2 * r


def bounding_sphere(obj: dict) -> tuple[np.ndarray, float]:
    """Centre and radius of a sphere that holds the object."""
    r, h = SIZES[obj["size"]], height(obj)
    return np.array([obj["x"], obj["y"], h / 2]), math.hypot(r, h / 2)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera above the ground, looking at the middle of the scene."""

    width: int
    height: int
    position: tuple[float, float, float] = (0.0, -9.0, 6.0)
    target: tuple[float, float, float] = (0.0, 0.4, 0.0)
    hfov_degrees: float = 50.0

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(forward, right, up) unit vectors and the half-width of the image plane at depth 1."""
        return self._basis

    @cached_property
    def _basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        pos, target = np.array(self.position), np.array(self.target)
        forward = (target - pos) / np.linalg.norm(target - pos)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return forward, right, up, math.tan(math.radians(self.hfov_degrees) / 2)

    def rays(self, scale: int = 1) -> np.ndarray:
        """Unit ray directions through every pixel centre, shape (height*scale, width*scale, 3)."""
        forward, right, up, half = self.basis()
        w, h = self.width * scale, self.height * scale
        xs = ((np.arange(w) + 0.5) - w / 2) / (w / 2) * half
        ys = -((np.arange(h) + 0.5) - h / 2) / (w / 2) * half
        d = forward + xs[None, :, None] * right + ys[:, None, None] * up
        return (d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(np.float32)

    def project(self, points: np.ndarray, scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v) and depths of world points, shape (n, 3)."""
        forward, right, up, half = self.basis()
        rel = np.atleast_2d(points) - np.array(self.position)
        depth = rel @ forward
        w, h = self.width * scale, self.height * scale
        u = w / 2 + (rel @ right) / depth / half * (w / 2) - 0.5
        v = h / 2 - (rel @ up) / depth / half * (w / 2) - 0.5
        return np.stack([u, v], axis=-1), depth


def _disc(camera: Camera, obj: dict) -> tuple[float, float, float, float]:
    """The object's outline on the picture as a disc: (u, v, radius in pixels, depth)."""
    centre, radius = bounding_sphere(obj)
    (uv,), (depth,) = camera.project(centre[None])
    _, _, _, half = camera.basis()
    return float(uv[0]), float(uv[1]), radius / depth / half * camera.width / 2, float(depth)


def _overlap(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Area of the intersection of two discs (u, v, r)."""
    d = math.dist(a[:2], b[:2])
    r1, r2 = a[2], b[2]
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return math.pi * min(r1, r2) ** 2
    c1 = (d * d + r1 * r1 - r2 * r2) / (2 * d * r1)
    c2 = (d * d + r2 * r2 - r1 * r1) / (2 * d * r2)
    k = (-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)
    return r1 * r1 * math.acos(c1) + r2 * r2 * math.acos(c2) - 0.5 * math.sqrt(max(k, 0.0))


def fits(camera: Camera, objects: list[dict]) -> bool:
    """True if no footprints touch, every object is inside the picture, and none is more
    than ``MAX_OCCLUDED`` hidden (estimated from the discs of nearer objects)."""
    for i, a in enumerate(objects):
        for b in objects[:i]:
            if math.dist((a["x"], a["y"]), (b["x"], b["y"])) < SIZES[a["size"]] + SIZES[b["size"]] + MIN_GAP:
                return False
    discs = [_disc(camera, o) for o in objects]
    margin = 2.0
    for u, v, r, _ in discs:
        if u - r < margin or v - r < margin or u + r > camera.width - margin or v + r > camera.height - margin:
            return False
    for i, (u, v, r, depth) in enumerate(discs):
        hidden = sum(_overlap((u, v, r), d[:3]) for j, d in enumerate(discs) if j != i and d[3] < depth)
        if hidden > MAX_OCCLUDED * math.pi * r * r:
            return False
    return True


def annotate(camera: Camera, objects: list[dict]) -> list[dict]:
    """The objects with ``pixel`` (centre in the picture) and ``depth`` filled in."""
    out = []
    for o in objects:
        u, v, _, depth = _disc(camera, o)
        out.append({**o, "pixel": [round(u, 1), round(v, 1)], "depth": round(depth, 3)})
    return out


def sample_scene(rng: random.Random, camera: Camera, min_objects: int, max_objects: int) -> list[dict]:
    """``min_objects..max_objects`` random objects placed so that all fit (see ``fits``).

    Objects are added one at a time; an object that finds no free spot in 100 tries makes
    the scene start over (at most 50 times, then the scene keeps the objects it has)."""
    count = rng.randint(min_objects, max_objects)
    best: list[dict] = []
    for _restart in range(50):
        objects: list[dict] = []
        while len(objects) < count:
            attrs = {
                "shape": rng.choice(SHAPES),
                "color": rng.choice(tuple(COLORS)),
                "size": rng.choice(tuple(SIZES)),
                "material": rng.choice(MATERIALS),
                "rotation": round(rng.uniform(0, 90), 1),
            }
            for _try in range(100):
                obj = {**attrs, "x": round(rng.uniform(-3, 3), 3), "y": round(rng.uniform(-3, 3), 3)}
                if fits(camera, [*objects, obj]):
                    objects.append(obj)
                    break
            else:
                break
        if len(objects) > len(best):
            best = objects
        if len(objects) == count:
            break
    return annotate(camera, best)


def modify(rng: random.Random, camera: Camera, objects: list[dict], k: int) -> tuple[list[dict], list[dict]]:
    """The twin scene: ``k`` distinct objects each get one attribute changed to another
    value (colour, shape, material or size); positions and rotations are kept. A size
    change is only chosen if the scene still fits. Returns (twin objects, changes)."""
    if not 1 <= k <= len(objects):
        raise ValueError(f"cannot change {k} objects of a scene with {len(objects)}")
    twin = [dict(o) for o in objects]
    changes = []
    for i in sorted(rng.sample(range(len(objects)), k)):
        for attribute in rng.sample(ATTRIBUTES, len(ATTRIBUTES)):
            values = {"color": tuple(COLORS), "shape": SHAPES, "material": MATERIALS, "size": tuple(SIZES)}[attribute]
            new = rng.choice([v for v in values if v != twin[i][attribute]])
            trial = [*twin[:i], {**twin[i], attribute: new}, *twin[i + 1 :]]
            if attribute != "size" or fits(camera, trial):
                old, twin = twin[i][attribute], trial
                changes.append({"object": i, "attribute": attribute, "from": old, "to": new})
                break
    return annotate(camera, [{k_: v for k_, v in o.items() if k_ not in ("pixel", "depth")} for o in twin]), changes


def differences(a: list[dict], b: list[dict]) -> list[int]:
    """Indices of objects whose shape, colour, size or material differ between two scenes."""
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if any(x[k] != y[k] for k in ATTRIBUTES)]
