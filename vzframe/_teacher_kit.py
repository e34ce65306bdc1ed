"""``check_game``'s teacher checks (``vzframe.testing``): a game's optional teacher plays
whole games in every seat, twice per seed, and every move must be valid and replayable, must
leave the game as it found it, and ``clue_truth`` must judge clues by the player's picture."""

from __future__ import annotations

import io
import itertools
import json
import math
import pickle
import random
import types
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from PIL import Image
from pydantic import BaseModel

from vzframe._image_kit import PICTURES_PER_EPISODE, image_source
from vzframe.protocols import Facts, Game, ImageDraw, ImageSource, Teacher, missing_members

# clue_truth's verdicts on the shipped teachers' clues (the spy game's, Odd One Out's, the plugin
# template's and the docs' SayGame's), measured with _teach and _judge_elsewhere:
#
#   images     games   own clues judged true      the same clues judged true of the next seed's pictures
#   clevr_toy   200    1.000 (all four games)     spy 0.132 (1200 clues), odd 0.135 (1600), template 0.155 (200), say 0.120 (200)
#   clevr        60    1.000                      spy 0.183, odd 0.204, template 0.250, say 0.233
#   charts       60    1.000                      spy 0.111, odd 0.115, template 0.100, say 0.117
#
# In windows of 10 games (check_game's default) the cross share reached 0.28 of 60 clues (spy)
# and 4 of 10 (template, say: one clue a game).

OWN_TRUE_MIN = 0.5
"""``clue_truth`` must judge at least this share of the teacher's own clues (its bool verdicts)
true: the shipped teachers' are all true. Room for a role whose clues must be false of the
picture it sees; a teacher whose clues are mostly false teaches lying."""
CROSS_TRUE_BOUND = 0.3
"""The most that an honest ``clue_truth`` judges of the teacher's true clues true of another
picture too (the same game, seats and moves on the next seed's pictures): 0.10 to 0.25 for the
shipped teachers. ``check_game`` fails when more are than this share gives with probability
``CROSS_P``: 6 of 6 clues, 9 of 10, 10 of 12, 30 of 60. A ``clue_truth`` that answers True
whatever the picture shows judges them all true."""
CROSS_P = 1e-3


class TaughtMove(NamedTuple):
    """One move of a game played by its teacher: who, what, ``clue_truth``'s verdict (judged
    before the move was stepped) and the game's ``Turn``."""

    player: int
    move: str
    truth: bool | None
    turn: Any


Tick = list[tuple[int, str, "bool | None"]]
"""One round of simultaneous moves: (player, move, clue_truth's verdict), asked on one state."""


def play_teacher(game: Any, teacher: Any, facts: Facts, rng: random.Random) -> list[TaughtMove]:
    """Play ``game`` to the end with ``teacher`` in every seat, as a run plays: every player in
    ``to_act()`` is asked on the same state, then the moves are stepped in order."""
    moves: list[TaughtMove] = []
    while acting := game.to_act():
        tick = [(p, m, teacher.clue_truth(game, p, m, facts)) for p in acting for m in [teacher.act(game, p, facts, rng)]]
        moves += [TaughtMove(p, m, truth, game.step(p, m)) for p, m, truth in tick]
    return moves


def _check_teacher(
    game_cls: type[Game], teacher: Teacher, cfg: BaseModel, source: ImageSource | None, seed: int, episodes: int, max_steps: int
) -> tuple[int, float | None]:
    """Play ``episodes`` games with the teacher in every seat, each twice, and once more on the
    next seed's pictures (``clue_truth`` only); return its moves and the share of True among
    its bool ``clue_truth`` answers."""
    who = f"{game_cls.__name__}.teacher"
    missing = missing_members(teacher, Teacher)
    assert not missing, (
        f"{who} ({type(teacher).__name__}) lacks {missing}: a teacher has act(game, player, facts, rng) and "
        "clue_truth(game, player, completion, facts) (vzframe.protocols.Teacher, docs/plugins.md)"
    )
    source = source or image_source("clevr_toy")
    facts, images = Facts.of(source), _drawn_once(source)
    own: Counter[bool] = Counter()
    cross: Counter[bool] = Counter()
    turns = 0
    for i in range(episodes):
        where = f"{who} episode {i} (seed={seed + i}, images={source.name})"
        ticks = _teach(game_cls, teacher, cfg, seed + i, images(seed + i), facts, where, max_steps, watch=True)
        again = _teach(game_cls, teacher, cfg, seed + i, images(seed + i), facts, where + " replay", max_steps, watch=False)
        moves, replayed = [m for tick in ticks for _, m, _ in tick], [m for tick in again for _, m, _ in tick]
        for k, (a, b) in enumerate(itertools.zip_longest(moves, replayed)):
            assert a == b, (
                f"{where} turn {k}: same seed, different teacher moves: {_excerpt(str(a))} then {_excerpt(str(b))}; "
                "take all randomness from the rng passed to act()"
            )
        own.update(truth for tick in ticks for _, _, truth in tick if truth is not None)
        cross += _judge_elsewhere(game_cls, teacher, cfg, seed + i, images(seed + i + 1), facts, ticks, where)
        turns += len(moves)
    _check_truths(who, own, cross, f"in {episodes} episodes (seeds {seed}..{seed + episodes - 1}, images={source.name})")
    judged = own[True] + own[False]
    return turns, (own[True] / judged if judged else None)


def _drawn_once(source: Any) -> Callable[[int], Callable[[], Any]]:
    """``images(seed)``, as ``_source_stream``, drawing each picture once: a replay shows the
    same pictures, and the cross check of ``clue_truth`` those of the next seed."""
    drawn: dict[int, Any] = {}

    def images(seed: int) -> Callable[[], Any]:
        counter = itertools.count(seed * PICTURES_PER_EPISODE)

        def draw() -> Any:
            index = next(counter)
            if index not in drawn:
                drawn[index] = source.get(index)
            return drawn[index]

        return draw

    return images


def _teach(
    game_cls: type[Game], teacher: Teacher, cfg: BaseModel, seed: int, draw: ImageDraw, facts: Facts, where: str, max_steps: int,
    *, watch: bool,
) -> list[Tick]:
    """One game with the teacher in every seat, played as a run plays it: every player in
    ``to_act()`` is asked on the same state, then their moves are stepped in order. With
    ``watch``, the game's state is compared before and after every call of the teacher."""
    rng = random.Random(f"teacher:{seed}")
    game = _call(where, 0, f"{game_cls.__name__}(config, seed=, images=)", lambda: game_cls(cfg, seed=seed, images=draw))
    ticks: list[Tick] = []
    done = 0
    while acting := _call(where, done, "to_act()", game.to_act):
        assert done < max_steps, f"{where}: did not end within {max_steps} teacher moves (to_act() is still {acting})"
        tick: Tick = []
        state = _snapshot(game, acting, f"{where} turn {done}") if watch else None
        for k, player in enumerate(acting):
            at, n = f"{where} turn {done + k}", done + k
            call = f"teacher.act(game, {player}, facts, rng)"
            move = _call(where, n, call, teacher.act, game, player, facts, rng)
            if state is not None:
                state = _unchanged(game, acting, state, at, call, "teacher.act")
            assert isinstance(move, str), f"{at}: teacher.act for player {player} returned {move!r}, not a str"
            call = f"teacher.clue_truth(game, {player}, {_excerpt(move)}, facts)"
            truth = _call(where, n, call, teacher.clue_truth, game, player, move, facts)
            if state is not None:
                state = _unchanged(game, acting, state, at, call, "teacher.clue_truth")
            assert truth is None or type(truth) is bool, (
                f"{at}: teacher.clue_truth for player {player} returned {truth!r}; expected True, False or None"
            )
            assert game.to_act() == acting, f"{at}: the teacher changed the game (to_act() was {acting})"
            tick.append((player, move, truth))
        for player, move, _ in tick:
            turn = _call(where, done, f"step({player}, {_excerpt(move)})", game.step, player, move)
            assert turn.action.kind != "invalid", (
                f"{where} turn {done}: the teacher's move {_excerpt(move)} for player {player} ({turn.role}, "
                f"stage {turn.stage!r}) parsed to {turn.action!r}"
            )
            done += 1
        ticks.append(tick)
    return ticks


# ---- clue_truth: true of the player's own picture, not of any picture ------------------------


def _judge_elsewhere(
    game_cls: type[Game], teacher: Teacher, cfg: BaseModel, seed: int, draw: ImageDraw, facts: Facts, ticks: list[Tick], where: str
) -> Counter[bool]:
    """Replay the teacher's moves in the same game (same seed, so the same roles) on other
    pictures (``draw``), asking ``clue_truth`` before each move as ``_teach`` did; return its
    verdicts on the moves it judged true of their own pictures. Stops where the game's turn
    order departs from the original's (a game whose flow depends on its pictures)."""
    where = f"{where}, replayed on the next seed's pictures"
    game = _call(where, 0, f"{game_cls.__name__}(config, seed=, images=)", lambda: game_cls(cfg, seed=seed, images=draw))
    verdicts: Counter[bool] = Counter()
    done = 0
    for tick in ticks:
        if _call(where, done, "to_act()", game.to_act) != tuple(p for p, _, _ in tick):
            break
        for k, (player, move, truth) in enumerate(tick):
            call = f"teacher.clue_truth(game, {player}, {_excerpt(move)}, facts)"
            judged = _call(where, done + k, call, teacher.clue_truth, game, player, move, facts)
            if truth is True and type(judged) is bool:
                verdicts[judged] += 1
        for player, move, _ in tick:
            if player not in game.to_act():
                return verdicts
            _call(where, done, f"step({player}, {_excerpt(move)})", game.step, player, move)
            done += 1
    return verdicts


def _check_truths(who: str, own: Counter[bool], cross: Counter[bool], played: str) -> None:
    """The teacher's own clues are mostly judged true; judged against other pictures, mostly not."""
    fix = (
        "clue_truth must answer True only when the move states something the player's own picture shows, False "
        "when it states anything else, None when it states nothing about a picture or the player sees none "
        "(see docs/plugins.md 'A teacher')"
    )
    judged = own[True] + own[False]
    assert own[True] >= OWN_TRUE_MIN * judged, (
        f"{who}.clue_truth judged only {own[True]} of the teacher's {judged} own clues true (of its True/False "
        f"verdicts), {played}; at least {OWN_TRUE_MIN:.0%} should be, as the teacher's clues should state what its "
        "players' pictures show. Either act says what the pictures do not show, or clue_truth judges true clues "
        "false: it reads another picture, reads the move more strictly than act writes it, or judges something "
        f"else than truth (a clue's novelty, a player's role). {fix}"
    )
    n = cross[True] + cross[False]
    assert _tail(cross[True], n, CROSS_TRUE_BOUND) >= CROSS_P, (
        f"{who}.clue_truth judged {cross[True]} of the teacher's {n} clues that it judged true of their own "
        "pictures true of other pictures as well (the same games, seats and moves replayed on the next seed's "
        f"pictures), {played}. A clue about one picture is mostly false of another: an honest clue_truth judges "
        f"at most about {CROSS_TRUE_BOUND:.0%} of them true (the shipped games' 10 to 25%), so this one does not "
        f"follow the picture the player sees (it answers True whatever the picture shows, or ignores the move). "
        f"{fix}"
    )


def _tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p).

    >>> _tail(0, 5, 0.3), round(_tail(6, 6, 0.3), 6), round(_tail(30, 60, 0.3), 4)
    (1.0, 0.000729, 0.0009)
    """
    if k <= 0:
        return 1.0
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


# ---- the teacher only reads: the game's state before and after each call -------------------


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


def _call(where: str, step: int, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise AssertionError(f"{where} turn {step}: {what} raised {type(exc).__name__}: {exc}") from exc


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")
