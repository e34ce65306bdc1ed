"""``check_game``'s teacher checks (``vzframe.testing``): a game's optional teacher plays
whole games in every seat, twice per seed, and every move must be valid and replayable."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from vzframe._image_kit import _source_stream, image_source
from vzframe.protocols import Facts, Teacher, missing_members


class TaughtMove(NamedTuple):
    """One move of a game played by its teacher: who, what, ``clue_truth``'s verdict (judged
    before the move was stepped) and the game's ``Turn``."""

    player: int
    move: str
    truth: bool | None
    turn: Any


def play_teacher(game: Any, teacher: Any, facts: Facts, rng: random.Random) -> list[TaughtMove]:
    """Play ``game`` to the end with ``teacher`` in every seat, as a run plays: every player in
    ``to_act()`` is asked on the same state, then the moves are stepped in order."""
    moves: list[TaughtMove] = []
    while acting := game.to_act():
        tick = [(p, m, teacher.clue_truth(game, p, m, facts)) for p in acting for m in [teacher.act(game, p, facts, rng)]]
        moves += [TaughtMove(p, m, truth, game.step(p, m)) for p, m, truth in tick]
    return moves


def _check_teacher(game_cls, cfg, source, seed: int, episodes: int, max_steps: int) -> tuple[int, float | None]:
    """Play ``episodes`` games with the teacher in every seat, each twice; return its moves and
    the share of True among its bool ``clue_truth`` answers."""
    who = f"{game_cls.__name__}.teacher"
    teacher = game_cls.teacher
    missing = missing_members(teacher, Teacher)
    assert not missing, (
        f"{who} ({type(teacher).__name__}) lacks {missing}: a teacher has act(game, player, facts, rng) and "
        "clue_truth(game, player, completion, facts) (vzframe.protocols.Teacher, docs/plugins.md)"
    )
    source = source or image_source("clevr_toy")
    facts, images = Facts.of(source), _source_stream(source)
    truths: Counter[bool] = Counter()
    turns = 0
    for i in range(episodes):
        where = f"{who} episode {i} (seed={seed + i}, images={source.name})"
        moves = _teach(game_cls, cfg, seed + i, images, facts, where, max_steps, truths)
        again = _teach(game_cls, cfg, seed + i, images, facts, where + " replay", max_steps, Counter())
        for k, (a, b) in enumerate(itertools.zip_longest(moves, again)):
            assert a == b, (
                f"{where} turn {k}: same seed, different teacher moves: {_excerpt(str(a))} then {_excerpt(str(b))}; "
                "take all randomness from the rng passed to act()"
            )
        turns += len(moves)
    assert truths[True] or not truths[False], (
        f"{who}.clue_truth judged all {truths[False]} of the teacher's own moves it answered a bool for False, "
        f"in {episodes} episodes (seeds {seed}..{seed + episodes - 1}): its clues should be true of the pictures"
    )
    judged = truths[True] + truths[False]
    return turns, (truths[True] / judged if judged else None)


def _teach(game_cls, cfg, seed, images, facts: Facts, where: str, max_steps: int, truths: Counter[bool]) -> list[str]:
    """One game with the teacher in every seat, played as a run plays it: every player in
    ``to_act()`` is asked on the same state, then their moves are stepped in order."""
    teacher, rng = game_cls.teacher, random.Random(f"teacher:{seed}")
    game = _call(where, 0, f"{game_cls.__name__}(config, seed=, images=)", lambda: game_cls(cfg, seed=seed, images=images(seed)))
    moves: list[str] = []
    while acting := _call(where, len(moves), "to_act()", game.to_act):
        assert len(moves) < max_steps, f"{where}: did not end within {max_steps} teacher moves (to_act() is still {acting})"
        tick = []
        for k, player in enumerate(acting):
            at = f"{where} turn {len(moves) + k}"
            move = _call(where, len(moves) + k, f"teacher.act(game, {player}, facts, rng)", teacher.act, game, player, facts, rng)
            assert isinstance(move, str), f"{at}: teacher.act for player {player} returned {move!r}, not a str"
            truth = _call(where, len(moves) + k, f"teacher.clue_truth(game, {player}, ...)", teacher.clue_truth, game, player, move, facts)
            assert truth is None or type(truth) is bool, (
                f"{at}: teacher.clue_truth for player {player} returned {truth!r}; expected True, False or None"
            )
            assert game.to_act() == acting, f"{at}: the teacher changed the game (to_act() was {acting})"
            tick.append((player, move))
            if truth is not None:
                truths[truth] += 1
        for player, move in tick:
            turn = _call(where, len(moves), f"step({player}, {_excerpt(move)})", game.step, player, move)
            assert turn.action.kind != "invalid", (
                f"{where} turn {len(moves)}: the teacher's move {_excerpt(move)} for player {player} ({turn.role}, "
                f"stage {turn.stage!r}) parsed to {turn.action!r}"
            )
            moves.append(move)
    return moves


def _call(where: str, step: int, what: str, fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise AssertionError(f"{where} turn {step}: {what} raised {type(exc).__name__}: {exc}") from exc


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")
