"""``check_game``'s watch on a teacher (``vzframe._teacher_kit``): the game's whole state
before and after each call, compared, and where it first changed, said as a path
(``game._clues had 2 items, now 3``)."""

from __future__ import annotations

import io
import json
import pickle
import random
import types
from typing import Any, NamedTuple

from PIL import Image


class _Picture(NamedTuple):
    """A PIL image as a snapshot keeps it: which one, its mode and size, 256 of its pixels (a
    16x16 grid, as cheap for a large picture as for a small one) and its ``info``."""

    id: int
    mode: str
    size: tuple[int, int]
    sample: bytes
    info: dict[str, Any]


class _Function(NamedTuple):
    """A lambda or local function as a snapshot keeps it: which one, and its closure's variables
    (a picture stream's position). Functions of a module pickle by name."""

    id: int
    cells: tuple[Any, ...]


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Image.Image):
            sample = obj.resize((16, 16), Image.Resampling.NEAREST).tobytes() if obj.width and obj.height else b""
            return _Picture, (id(obj), obj.mode, obj.size, sample, obj.info)
        if isinstance(obj, types.FunctionType) and "<" in obj.__qualname__:  # a lambda or local function
            return _Function, (id(obj), tuple(_cell(c) for c in obj.__closure__ or ()))
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _attributes(obj: Any) -> dict[str, Any]:
    names = [*getattr(obj, "__dict__", {})]
    names += [s for k in type(obj).__mro__ for s in getattr(k, "__slots__", ()) if s not in ("__dict__", "__weakref__")]
    return {n: getattr(obj, n, None) for n in dict.fromkeys(names)}


Snapshot = tuple[Any, tuple[str, ...]]
"""A game's pickled state, and what each acting player observes (JSON)."""


def _snapshot(game: Any, acting: tuple[int, ...], at: str) -> Snapshot:
    """Everything ``game`` holds, pickled (pictures by identity, mode, size, a sample of their
    pixels and their ``info``; ``random.Random`` by its state), and what each player in
    ``acting`` observes. One pickle of the whole state when it pickles, else one per attribute
    (an attribute that cannot be pickled by its repr)."""
    attributes = _attributes(game)
    try:
        state: Any = _dumps(attributes)
    except Exception:
        state = tuple((name, _dumps_or_repr(value)) for name, value in attributes.items())
    observed = []
    for p in acting:
        try:
            observed.append(json.dumps(game.observe(p).to_dict()))
        except Exception as exc:
            raise AssertionError(f"{at}: observe({p}) raised {type(exc).__name__}: {exc}") from exc
    return state, tuple(observed)


def _dumps_or_repr(value: Any) -> bytes | str:
    try:
        return _dumps(value)
    except Exception:
        return repr(value)


def _unchanged(game: Any, acting: tuple[int, ...], before: Snapshot, at: str, call: str, what: str) -> Snapshot:
    """The snapshot after ``call``; fails naming the first thing it changed."""
    after = _snapshot(game, acting, at)
    if after != before:
        path, change = _what_changed(before, after, acting)
        raise AssertionError(
            f"{at}: {call} changed the game: {path} {change}. {what} must only read the game: copy what it "
            "needs instead of changing it (list(...), sorted(...)), keep its own records outside the game, "
            "and take all randomness from the rng passed to act"
        )
    return after


def _what_changed(before: Snapshot, after: Snapshot, acting: tuple[int, ...]) -> tuple[str, str]:
    (state_a, seen_a), (state_b, seen_b) = before, after
    if state_a != state_b:
        if isinstance(state_a, bytes) and isinstance(state_b, bytes):
            path, a, b = "game", state_a, state_b
        else:  # pickled attribute by attribute
            pairs = [(f"game.{name}", x, y) for (name, x), (_, y) in zip(state_a, state_b) if x != y]
            path, a, b = pairs[0] if pairs else ("game", state_a, state_b)
        try:
            return _first_change(pickle.loads(a), pickle.loads(b), path)
        except Exception:  # an unpicklable attribute (compared by repr), or one that does not unpickle
            return path, "changed"
    for p, x, y in zip(acting, seen_a, seen_b):
        if x != y:
            k = next((k for k, (c, d) in enumerate(zip(x, y)) if c != d), min(len(x), len(y)))
            return f"observe({p})", f"changed: ...{x[max(k - 30, 0) : k + 30]}... is now ...{y[max(k - 30, 0) : k + 30]}..."
    return "game", "changed"


def _first_change(a: Any, b: Any, path: str) -> tuple[str, str]:
    """Where two unpickled snapshots first differ, and how (``game._clues``, ``had 2 items, now 3``)."""
    if type(a) is not type(b):
        return path, f"was {_show(a)}, now {_show(b)}"
    if isinstance(a, _Picture):
        if a.id != b.id:
            return path, "was replaced by another picture"
        if (a.mode, a.size) != (b.mode, b.size):
            return path, f"was a {a.mode} picture of size {a.size}, now a {b.mode} picture of size {b.size}"
        return (path, "had its pixels changed") if a.sample != b.sample else _first_change(a.info, b.info, f"{path}.info")
    if isinstance(a, _Function):
        if a.id != b.id:
            return path, "was replaced by another function"
        return _first_change(list(a.cells), list(b.cells), f"{path}.__closure__")
    if isinstance(a, random.Random):
        return path, "(a random.Random) had its state advanced: draw from the rng passed to act instead"
    if isinstance(a, dict) or (hasattr(a, "__dict__") and not isinstance(a, (list, tuple))):
        items_a, items_b = (a, b) if isinstance(a, dict) else (_attributes(a), _attributes(b))
        for k in [*items_a, *(k for k in items_b if k not in items_a)]:
            sub = f"{path}[{k!r}]" if isinstance(a, dict) and path != "game" else f"{path}.{k}"
            if k not in items_a or k not in items_b:
                return sub, "was added" if k not in items_a else "was removed"
            if _dumps(items_a[k]) != _dumps(items_b[k]):
                return _first_change(items_a[k], items_b[k], sub)
    elif isinstance(a, (list, tuple)):
        for k, (x, y) in enumerate(zip(a, b)):
            if _dumps(x) != _dumps(y):
                return _first_change(x, y, f"{path}[{k}]")
        if len(a) != len(b):
            return path, f"had {len(a)} items, now {len(b)}"
    if _dumps(a) == _dumps(b):
        return path, "was replaced by an equal copy, or now shares an object with another attribute"
    return path, f"was {_show(a)}, now {_show(b)}"


def _show(value: Any) -> str:
    """A value as a message shows it: short, or what kind of thing it is."""
    if isinstance(value, _Picture):
        return f"a {value.mode} picture of size {value.size}"
    text = repr(value)
    if len(text) <= 60:
        return text
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"{text[:60]}... ({len(text)} chars)"
