"""Render a CLEVR-like scene with numpy ray casting and PIL: no Blender, no downloads.

Each pixel's ray meets the ground plane and each object exactly (spheres, rotated cubes,
upright cylinders), so the nearest surface wins and occlusion is right whatever the order.
Surfaces are lit by a key, a fill and a rim light. Rubber is matte (diffuse light, a faint
sheen); metal is a tinted mirror: a second ray from each metal pixel finds the other
objects, the floor or a soft studio sky, plus a sharp highlight. Shadows are the objects'
outlines projected along the key light onto the floor, blurred, plus a soft contact shadow
under each object. The picture is rendered ``supersample`` times larger and reduced, which
smooths the edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from plugins.clevr.scene import COLORS, SIZES, Camera, bounding_sphere, height

KEY = np.array([-0.55, -0.35, 0.76]) / np.linalg.norm([-0.55, -0.35, 0.76])
"""Direction towards the key light (it casts the shadows)."""
FILL = np.array([0.7, -0.6, 0.45]) / np.linalg.norm([0.7, -0.6, 0.45])
RIM = np.array([0.1, 0.9, 0.45]) / np.linalg.norm([0.1, 0.9, 0.45])
FLOOR = np.array([0.62, 0.62, 0.61], dtype=np.float32)
INF = np.float32(np.inf)
GAMMA = [round(255 * (i / 255) ** (1 / 1.1)) for i in range(256)] * 3
"""A slight gamma lift, applied as a lookup table."""


@lru_cache(maxsize=8)
def _view(camera: Camera, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the empty scene looks like, the same for every picture: each pixel's ray, its
    distance to the floor (inf above the horizon), and the lit floor's colour there."""
    rays = camera.rays(scale)
    origin = np.array(camera.position, dtype=np.float32)
    dz = rays[..., 2]
    t_floor = np.where(dz < -1e-6, -origin[2] / np.where(dz < -1e-6, dz, -1), INF).astype(np.float32)
    p = origin + np.where(np.isfinite(t_floor), t_floor, 60.0)[..., None] * rays
    floor = (FLOOR * _floor_light(p)[..., None]).astype(np.float32)
    for array in (rays, t_floor, floor):
        array.setflags(write=False)
    return rays, t_floor, floor


def _window(camera: Camera, obj: dict, scale: int) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) that holds the object's outline."""
    centre, radius = bounding_sphere(obj)
    (uv,), (depth,) = camera.project(centre[None], scale)
    _, _, _, half = camera.basis()
    r = radius / max(depth - radius, 1e-3) / half * camera.width * scale / 2 + 2
    w, h = camera.width * scale, camera.height * scale
    return max(int(uv[0] - r), 0), max(int(uv[1] - r), 0), min(int(uv[0] + r) + 1, w), min(int(uv[1] + r) + 1, h)


def _hit_sphere(o: np.ndarray, d: np.ndarray, obj: dict) -> tuple[np.ndarray, np.ndarray]:
    r = SIZES[obj["size"]]
    c = np.array([obj["x"], obj["y"], r], dtype=np.float32)
    oc = o - c
    b = (d * oc).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0)), INF)
    t = np.where(t > 0, t, INF)
    n = (o + t[..., None] * d - c) / r
    return t, n


def _hit_cylinder(o: np.ndarray, d: np.ndarray, obj: dict) -> tuple[np.ndarray, np.ndarray]:
    r, top = SIZES[obj["size"]], height(obj)
    ox, oy, oz = o[..., 0] - obj["x"], o[..., 1] - obj["y"], o[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    disc = b * b - a * (ox * ox + oy * oy - r * r)
    side = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-9), INF)
    z = oz + side * dz
    side = np.where((side > 0) & (z >= 0) & (z <= top), side, INF)
    cap = np.where(dz < -1e-9, (top - oz) / np.where(dz < -1e-9, dz, -1), INF)
    inside = (ox + cap * dx) ** 2 + (oy + cap * dy) ** 2 <= r * r
    cap = np.where(inside & (cap > 0), cap, INF)
    t = np.minimum(side, cap)
    px, py = ox + t * dx, oy + t * dy
    n = np.stack([px / r, py / r, np.zeros_like(px)], axis=-1)
    n = np.where((cap <= side)[..., None], np.array([0, 0, 1], dtype=np.float32), n)
    return t, n


def _hit_cube(o: np.ndarray, d: np.ndarray, obj: dict) -> tuple[np.ndarray, np.ndarray]:
    s = SIZES[obj["size"]] / math.sqrt(2)
    angle = math.radians(obj["rotation"])
    cos, sin = math.cos(angle), math.sin(angle)
    to_local = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], dtype=np.float32)
    ol = (o - np.array([obj["x"], obj["y"], s], dtype=np.float32)) @ to_local.T
    dl = d @ to_local.T
    safe = np.where(np.abs(dl) < 1e-9, 1e-9, dl)
    t1, t2 = (-s - ol) / safe, (s - ol) / safe
    tmin = np.minimum(t1, t2).max(axis=-1)
    tmax = np.maximum(t1, t2).min(axis=-1)
    t = np.where((tmax >= tmin) & (tmin > 0), tmin, INF)
    q = (ol + np.where(np.isfinite(t), t, 0)[..., None] * dl) / s
    axis = np.abs(q).argmax(axis=-1)
    nl = np.zeros_like(q)
    np.put_along_axis(nl, axis[..., None], np.sign(np.take_along_axis(q, axis[..., None], -1)), -1)
    return t, nl @ to_local  # rotate back: to_local is orthonormal, so its inverse is its transpose


HIT = {"sphere": _hit_sphere, "cylinder": _hit_cylinder, "cube": _hit_cube}
"""Ray-object intersection: ``(origin, directions, obj) -> (t, normals)``, t = inf on a miss.
The origin is one point (3,) or one per ray (..., 3)."""


def _trace(objects: list[dict], o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of rays against the floor and every object: (t, object id or -1, normals)."""
    t_best = np.where(d[..., 2] < -1e-6, -o[..., 2] / np.where(d[..., 2] < -1e-6, d[..., 2], -1), INF).astype(np.float32)
    ids = np.full(t_best.shape, -1, dtype=np.int16)
    normals = np.zeros(d.shape, dtype=np.float32)
    for i, obj in enumerate(objects):
        centre, radius = bounding_sphere(obj)  # cheap test first: only rays that pass near it
        oc = o - centre.astype(np.float32)
        b, c = (d * oc).sum(-1), (oc * oc).sum(-1) - radius * radius
        near = np.flatnonzero((b * b - c > 0) & ((b < 0) | (c < 0)))  # ahead of the ray, or around its origin
        if not near.size:
            continue
        t, n = HIT[obj["shape"]](o[near] if o.ndim > 1 else o, d[near], obj)
        nearer = t < t_best[near]
        hit = near[nearer]
        t_best[hit], ids[hit], normals[hit] = t[nearer], i, n[nearer]
    return t_best, ids, normals


def _floor_light(p: np.ndarray) -> np.ndarray:
    """Light on the floor at points ``p``: a soft pool around the middle of the scene."""
    return 0.78 + 0.3 * np.exp(-((p[..., 0] + 0.8) ** 2 + (p[..., 1] - 0.5) ** 2) / 40.0)


def _hull(points: np.ndarray) -> list[tuple[float, float]]:
    """Convex hull (monotone chain) of 2-D points, counter-clockwise."""
    pts = sorted(set(map(tuple, np.round(points, 4).tolist())))
    if len(pts) < 3:
        return pts

    def half(seq: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


def _outline_points(obj: dict) -> np.ndarray:
    """Points on the object's surface whose shadow outlines the shadow of the whole object."""
    r, top = SIZES[obj["size"]], height(obj)
    ring = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    if obj["shape"] == "sphere":
        a = np.cross(KEY, [0.0, 0.0, 1.0])
        a /= np.linalg.norm(a)
        b = np.cross(KEY, a)
        return np.array([obj["x"], obj["y"], r]) + r * (np.outer(np.cos(ring), a) + np.outer(np.sin(ring), b))
    if obj["shape"] == "cylinder":
        circle = np.stack([obj["x"] + r * np.cos(ring), obj["y"] + r * np.sin(ring)], axis=-1)
        return np.concatenate([np.c_[circle, np.zeros(24)], np.c_[circle, np.full(24, top)]])
    s, angle = r / math.sqrt(2), math.radians(obj["rotation"])
    corners = np.array([(sx, sy) for sx in (-s, s) for sy in (-s, s)])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xy = corners @ rot.T + [obj["x"], obj["y"]]
    return np.concatenate([np.c_[xy, np.zeros(4)], np.c_[xy, np.full(4, top)]])


def _shadow_mask(camera: Camera, objects: list[dict], scale: int) -> np.ndarray:
    """How dark the floor is at each pixel from cast and contact shadows, 0..1. Drawn and
    blurred at the picture's size, then enlarged to the render's: shadows are soft anyway."""
    w, h = camera.width, camera.height
    cast = Image.new("L", (w, h), 0)
    contact = Image.new("L", (w, h), 0)
    draw_cast, draw_contact = ImageDraw.Draw(cast), ImageDraw.Draw(contact)
    ring = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    for obj in objects:
        pts = _outline_points(obj)
        ground = pts[:, :2] - pts[:, 2:3] / KEY[2] * KEY[:2]
        hull = np.array(_hull(ground))
        uv, _ = camera.project(np.c_[hull, np.zeros(len(hull))])
        draw_cast.polygon([tuple(p) for p in uv], fill=255)
        r = SIZES[obj["size"]] * 1.05
        foot = np.c_[obj["x"] + r * np.cos(ring), obj["y"] + r * np.sin(ring), np.zeros(32)]
        uv, _ = camera.project(foot)
        draw_contact.polygon([tuple(p) for p in uv], fill=255)
    cast = Image.eval(cast.filter(ImageFilter.GaussianBlur(2.2)), lambda v: v * 55 // 100)
    contact = Image.eval(contact.filter(ImageFilter.GaussianBlur(4.0)), lambda v: v * 35 // 100)
    mask = ImageChops.lighter(cast, contact)
    if scale > 1:
        mask = mask.resize((w * scale, h * scale), Image.Resampling.BILINEAR)
    return np.asarray(mask, np.float32) / 255


def _sky(r: np.ndarray) -> np.ndarray:
    """Brightness of the studio above the floor in direction ``r``: dark at the horizon,
    brighter upwards, a broad soft box around the key light and a sharp spot at its centre."""
    z = np.clip(r[..., 2], 0, 1)
    towards = np.clip(r @ KEY.astype(np.float32), 0, 1)
    return 0.25 + 0.55 * z**0.6 - 0.15 * np.exp(-((z / 0.1) ** 2)) + 0.5 * towards**6 + 0.9 * towards**40


def _diffuse(n: np.ndarray) -> np.ndarray:
    key, fill, rim = (np.clip(n @ v.astype(np.float32), 0, 1) for v in (KEY, FILL, RIM))
    return 0.8 * key + 0.3 * fill + 0.2 * rim


def _reflection(objects: list[dict], table: np.ndarray, p: np.ndarray, n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """What a mirror at ``p`` sees in direction ``r``: another object (lit, matte), the
    floor, or the studio."""
    t, ids, normals = _trace(objects, p + 1e-3 * n, r)
    seen = np.repeat(_sky(r)[..., None], 3, axis=-1)
    floor = (ids < 0) & np.isfinite(t)
    if floor.any():
        q = p[floor] + t[floor, None] * r[floor]
        seen[floor] = FLOOR * (_floor_light(q) * (1 - 0.3 * np.clip(t[floor] / 25, 0, 1)))[..., None]
    other = ids >= 0
    if other.any():
        seen[other] = table[ids[other]] * (0.45 + 0.6 * _diffuse(normals[other]))[..., None]
    return seen


def _shade(objects: list[dict], d: np.ndarray, p: np.ndarray, n: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Colour of every object pixel (``ids >= 0``), in 0..1."""
    diffuse = _diffuse(n)
    to_eye = -d
    half_key = (KEY + to_eye) / np.linalg.norm(KEY + to_eye, axis=-1, keepdims=True)
    sheen = np.clip((n * half_key).sum(-1), 0, 1) ** 12
    table = np.array([COLORS[o["color"]] for o in objects], dtype=np.float32) / 255
    base = table[ids]
    rgb = base * (0.16 + 0.78 * diffuse)[..., None] + (0.08 * sheen)[..., None]
    metal = np.array([o["material"] == "metal" for o in objects])[ids]
    if metal.any():
        dm, nm = d[metal], n[metal]
        reflect = dm - 2 * (dm * nm).sum(-1, keepdims=True) * nm
        seen = _reflection(objects, table, p[metal], nm, reflect)
        fresnel = 0.75 + 0.25 * (1 - np.clip((nm * -dm).sum(-1), 0, 1)) ** 3
        spark = np.clip(reflect @ KEY.astype(np.float32), 0, 1) ** 120 * 1.2
        tint = base[metal] * 0.92 + 0.08
        mirror = tint * seen * (1.2 * fresnel)[..., None]
        rgb[metal] = mirror + base[metal] * (0.12 * diffuse[metal])[..., None] + spark[..., None]
    return rgb


def render(camera: Camera, objects: list[dict], supersample: int = 2) -> tuple[Image.Image, list[int]]:
    """The picture of ``objects`` and each object's visible pixel count (at full scale)."""
    s = supersample
    rays, t_floor, floor = _view(camera, s)
    origin = np.array(camera.position, dtype=np.float32)
    t_best = t_floor.copy()
    ids = np.full(t_best.shape, -1, dtype=np.int16)
    normals = np.zeros(rays.shape, dtype=np.float32)
    for i, obj in enumerate(objects):  # only the rays near each object can hit it
        x0, y0, x1, y1 = _window(camera, obj, s)
        if x0 >= x1 or y0 >= y1:
            continue
        t, n = HIT[obj["shape"]](origin, rays[y0:y1, x0:x1], obj)
        nearer = t < t_best[y0:y1, x0:x1]
        t_best[y0:y1, x0:x1][nearer] = t[nearer]
        ids[y0:y1, x0:x1][nearer] = i
        normals[y0:y1, x0:x1][nearer] = n[nearer]

    rgb = floor * (1 - _shadow_mask(camera, objects, s))[..., None]
    on_object = ids >= 0
    if on_object.any():
        d = rays[on_object]
        p = origin + t_best[on_object][..., None] * d
        rgb[on_object] = _shade(objects, d, p, normals[on_object], ids[on_object])
    pixels = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB").point(GAMMA)
    if s > 1:
        image = image.reduce(s)
    visible = np.bincount(ids[on_object].astype(np.int64), minlength=len(objects)) // (s * s)
    return image, [int(v) for v in visible]
