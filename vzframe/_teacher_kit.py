"""``check_game``'s teacher checks (``vzframe.testing``): a game's optional teacher plays
whole games in every seat, twice per seed, and every move must be valid and replayable, must
leave the game as it found it, and ``clue_truth`` must judge clues by the player's picture."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel

from vzframe._image_kit import PICTURES_PER_EPISODE, image_source
from vzframe._state_kit import _snapshot, _unchanged
from vzframe.plugins import PluginError
from vzframe.protocols import Facts, Game, ImageDraw, ImageSource, Teacher, missing_members
from vzframe.rollout import Generation
from vzframe.rollout.play import play, play_moves
from vzframe.rollout.policy import Move, Policy, Referee, TeacherPolicy, text_move
from vzframe.types import Turn

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


class _TeacherRecord(Referee):
    """``clue_truth``'s verdict on every teacher move, asked before the tick's moves are
    stepped, and the move with its ``Turn`` once stepped."""

    def __init__(self, teacher: Any, facts: Facts) -> None:
        self.teacher, self.facts = teacher, facts
        self.truths: dict[int, bool | None] = {}
        self.moves: list[TaughtMove] = []

    def acted(self, move: Move, generation: Generation) -> None:
        self.truths[id(move)] = self.teacher.clue_truth(move.game, move.player, generation.text, self.facts)

    def stepped(self, move: Move, generation: Generation, turn: Turn) -> None:
        self.moves.append(TaughtMove(move.player, generation.text, self.truths.pop(id(move)), turn))


def play_teacher(game: Any, teacher: Any, facts: Facts, rng: random.Random) -> list[TaughtMove]:
    """Play ``game`` to the end with ``teacher`` in every seat, as a run plays (``play``):
    every player in ``to_act()`` is asked on the same state, then the moves are stepped in order."""
    record = _TeacherRecord(teacher, facts)
    play([game], TeacherPolicy(teacher, facts, rng), referee=record)
    return record.moves


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


class _Taught(Referee):
    """``_teach``'s teacher seat (its policy and its referee): asks the teacher for every move
    of a tick and ``clue_truth`` for each on the state the mover saw, with the game's state
    compared before and after every call (``watch``), and checks that each move is valid."""

    seeded = False

    def __init__(self, teacher: Teacher, facts: Facts, rng: random.Random, where: str, max_steps: int, watch: bool) -> None:
        self.teacher, self.facts, self.rng = teacher, facts, rng
        self.where, self.max_steps, self.watch = where, max_steps, watch
        self.ticks: list[Tick] = []
        self.done = 0

    def tick(self, index: int, game: Game, acting: tuple[int, ...]) -> None:
        assert not acting or self.done < self.max_steps, (
            f"{self.where}: did not end within {self.max_steps} teacher moves (to_act() is still {acting})"
        )

    def act(self, moves: Sequence[Move]) -> list[Generation]:
        game, acting = moves[0].game, tuple(m.player for m in moves)
        where, tick = self.where, []
        state = _snapshot(game, acting, f"{where} turn {self.done}") if self.watch else None
        for k, m in enumerate(moves):
            at, n, player = f"{where} turn {self.done + k}", self.done + k, m.player
            call = f"teacher.act(game, {player}, facts, rng)"
            move = _call(where, n, call, self.teacher.act, game, player, self.facts, self.rng)
            if state is not None:
                state = _unchanged(game, acting, state, at, call, "teacher.act")
            assert isinstance(move, str), f"{at}: teacher.act for player {player} returned {move!r}, not a str"
            call = f"teacher.clue_truth(game, {player}, {_excerpt(move)}, facts)"
            truth = _call(where, n, call, self.teacher.clue_truth, game, player, move, self.facts)
            if state is not None:
                state = _unchanged(game, acting, state, at, call, "teacher.clue_truth")
            assert truth is None or type(truth) is bool, (
                f"{at}: teacher.clue_truth for player {player} returned {truth!r}; expected True, False or None"
            )
            assert game.to_act() == acting, f"{at}: the teacher changed the game (to_act() was {acting})"
            tick.append((player, move, truth))
        self.ticks.append(tick)
        return [text_move(move) for _, move, _ in tick]

    def stepped(self, move: Move, generation: Generation, turn: Turn) -> None:
        assert turn.action.kind != "invalid", (
            f"{self.where} turn {self.done}: the teacher's move {_excerpt(generation.text)} for player {move.player} "
            f"({turn.role}, stage {turn.stage!r}) parsed to {turn.action!r}"
        )
        self.done += 1


def _teach(
    game_cls: type[Game], teacher: Teacher, cfg: BaseModel, seed: int, draw: ImageDraw, facts: Facts, where: str, max_steps: int,
    *, watch: bool,
) -> list[Tick]:
    """One game with the teacher in every seat, played as a run plays it (``play``): every
    player in ``to_act()`` is asked on the same state, then their moves are stepped in order.
    With ``watch``, the game's state is compared before and after every call of the teacher."""
    seat = _Taught(teacher, facts, random.Random(f"teacher:{seed}"), where, max_steps, watch)
    game = _call(where, 0, f"{game_cls.__name__}(config, seed=, images=)", lambda: game_cls(cfg, seed=seed, images=draw))
    _kit_play(game, seat, seat, where, lambda: seat.done)
    return seat.ticks


def _kit_play(game: Game, policy: Policy, referee: Referee, where: str, turn: Callable[[], int], order: random.Random | None = None) -> None:
    """Play ``game`` to the end for a kit (``play_moves``): an error the game raised becomes an
    ``AssertionError`` naming the episode and the turn (``turn()``: how many moves were stepped)."""
    try:
        for _ in play_moves([game], policy, referee=referee, order=order):
            pass
    except PluginError as exc:
        raise AssertionError(f"{where} turn {turn()}: {exc}") from exc


# ---- clue_truth: true of the player's own picture, not of any picture ------------------------


class _Departed(Exception):
    """A replay's game went another way than the original's."""


class _Replay(Referee):
    """``_judge_elsewhere``'s seat: replays recorded ticks, asking ``clue_truth`` of each move
    first, until the game's turn order departs from the recording."""

    seeded = False

    def __init__(self, teacher: Teacher, facts: Facts, ticks: list[Tick], where: str) -> None:
        self.teacher, self.facts, self.where = teacher, facts, where
        self.ticks, self.at = iter(ticks), 0
        self.current: Tick = []
        self.verdicts: Counter[bool] = Counter()

    def tick(self, index: int, game: Game, acting: tuple[int, ...]) -> None:
        if acting:
            self.current = next(self.ticks, [])
            if acting != tuple(p for p, _, _ in self.current):
                raise _Departed

    def act(self, moves: Sequence[Move]) -> list[Generation]:
        for k, (m, (player, move, truth)) in enumerate(zip(moves, self.current)):
            call = f"teacher.clue_truth(game, {player}, {_excerpt(move)}, facts)"
            judged = _call(self.where, self.at + k, call, self.teacher.clue_truth, m.game, player, move, self.facts)
            if truth is True and type(judged) is bool:
                self.verdicts[judged] += 1
        self.at += len(moves)
        return [text_move(move) for _, move, _ in self.current]


def _judge_elsewhere(
    game_cls: type[Game], teacher: Teacher, cfg: BaseModel, seed: int, draw: ImageDraw, facts: Facts, ticks: list[Tick], where: str
) -> Counter[bool]:
    """Replay the teacher's moves in the same game (same seed, so the same roles) on other
    pictures (``draw``), asking ``clue_truth`` before each tick's moves as ``_teach`` did;
    return its verdicts on the moves it judged true of their own pictures. Stops where the
    game's turn order departs from the original's (a game whose flow depends on its pictures)."""
    where = f"{where}, replayed on the next seed's pictures"
    game = _call(where, 0, f"{game_cls.__name__}(config, seed=, images=)", lambda: game_cls(cfg, seed=seed, images=draw))
    replay = _Replay(teacher, facts, ticks, where)
    try:
        _kit_play(game, replay, replay, where, lambda: replay.at)
    except _Departed:
        pass
    return replay.verdicts


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


def _call(where: str, step: int, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise AssertionError(f"{where} turn {step}: {what} raised {type(exc).__name__}: {exc}") from exc


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")
