"""``check_game``'s checks of single calls (``vzframe.testing``): the game class, who acts,
that wrong players are rejected, observations, turns and episodes."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image
from pydantic import BaseModel

from vzframe.protocols import Game
from vzframe.types import Action, Episode, ImageItem, Metric, Observation, PhaseSpec, Turn


def _check_class(game_cls: type[Game]) -> None:
    who = getattr(game_cls, "__name__", repr(game_cls))
    assert isinstance(getattr(game_cls, "name", None), str) and game_cls.name, f"{who}.name must be a non-empty str"
    config_cls = getattr(game_cls, "Config", None)
    assert isinstance(config_cls, type) and issubclass(config_cls, BaseModel), f"{who}.Config must be a pydantic model"
    roles = getattr(game_cls, "roles", ())
    assert roles and all(isinstance(getattr(r, "name", None), str) for r in roles), f"{who}.roles must name roles"
    assert all(isinstance(getattr(r, "brief", None), str) for r in roles), f"{who}.roles need a str brief"
    phases = getattr(game_cls, "phases", None)
    assert isinstance(phases, Mapping) and phases, f"{who}.phases must be a non-empty mapping"
    for name, spec in phases.items():
        assert isinstance(spec, PhaseSpec), f"{who}.phases[{name!r}] is {spec!r}, not a PhaseSpec"
        assert spec.advantage in ("group", "role"), f"{who}.phases[{name!r}].advantage is {spec.advantage!r}"
        assert isinstance(spec.zero_sum, bool), f"{who}.phases[{name!r}].zero_sum is {spec.zero_sum!r}, not a bool"
    metrics = getattr(game_cls, "metrics", None)
    assert isinstance(metrics, Mapping), (
        f"{who}.metrics must be a mapping of metric name -> vzframe.types.Metric: what its collect_metrics "
        f"reports ({{}} if nothing); got {metrics!r}"
    )
    for name, metric in metrics.items():
        assert isinstance(name, str) and name, f"{who}.metrics has the key {name!r}; metric names are non-empty str"
        assert isinstance(metric, Metric), (
            f"{who}.metrics[{name!r}] is {metric!r}; declare it as vzframe.types.Metric(label, headline=...)"
        )


def _make_config(game_cls: type[Game], config: Any) -> BaseModel:
    if isinstance(config, BaseModel):
        return config
    return game_cls.Config.model_validate(dict(config or {}))


def _check_acting(acting: Any, where: str, step: int) -> None:
    assert isinstance(acting, tuple), f"{where} turn {step}: to_act() returned {acting!r}, not a tuple"
    for p in acting:
        assert isinstance(p, int) and not isinstance(p, bool) and p >= 1, (
            f"{where} turn {step}: to_act() returned {acting!r}; players are ints from 1"
        )
    assert len(set(acting)) == len(acting), f"{where} turn {step}: to_act() repeats a player: {acting!r}"


def _check_rejects(game: Game, acting: tuple[int, ...], seats: set[int], where: str, step: int) -> None:
    """step() with a player who may not act must raise ValueError and change nothing."""
    idle = sorted(seats - set(acting))
    for wrong in (0, -1, *idle[:1]):
        try:
            game.step(wrong, "<answer>1</answer>")
        except ValueError:
            pass
        except Exception as exc:
            raise AssertionError(
                f"{where} turn {step}: step({wrong}) while to_act() is {acting} raised "
                f"{type(exc).__name__}: {exc}; expected ValueError"
            ) from exc
        else:
            raise AssertionError(f"{where} turn {step}: step({wrong}) was accepted while to_act() is {acting}")
        assert game.to_act() == acting, f"{where} turn {step}: a rejected step({wrong}) changed to_act()"


def _check_observation(obs: Any, player: int, where: str, step: int) -> None:
    at = f"{where} turn {step}: observe({player})"
    assert isinstance(obs, Observation), f"{at} returned {type(obs).__name__}, not an Observation"
    assert obs.player == player, f"{at} is for player {obs.player}"
    assert isinstance(obs.role, str) and isinstance(obs.stage, str), f"{at} needs str role and stage"
    assert obs.messages, f"{at} has no messages"
    placeholders = 0
    for message in obs.messages:
        ok = isinstance(message, dict) and "role" in message and "content" in message
        assert ok, f"{at}: bad message {message!r}"
        content = message["content"]
        if isinstance(content, str):
            continue
        assert isinstance(content, Sequence), f"{at}: content must be str or a list of parts"
        for part in content:
            assert isinstance(part, dict) and part.get("type") in ("image", "text"), f"{at}: bad part {part!r}"
            placeholders += part["type"] == "image"
            assert part["type"] == "image" or isinstance(part.get("text"), str), f"{at}: text part needs str text"
    assert placeholders == len(obs.images), f"{at} has {placeholders} image placeholders but {len(obs.images)} images"
    for im in obs.images:
        assert isinstance(im, ImageItem) and isinstance(im.image, Image.Image), f"{at}: {im!r} is not an ImageItem"
    try:
        json.dumps(obs.to_dict())
        obs.prompt_text()
    except Exception as exc:
        raise AssertionError(f"{at} is not JSON-serialisable: {exc}") from exc


def _check_turn(turn: Any, index: int, player: int, completion: str, obs: Observation, where: str) -> None:
    at = f"{where} turn {index}"
    assert isinstance(turn, Turn), f"{at}: step() returned {type(turn).__name__}, not a Turn"
    assert turn.index == index, f"{at}: Turn.index is {turn.index}; expected its position {index}"
    assert turn.player == player, f"{at}: Turn.player is {turn.player}; player {player} stepped"
    assert turn.completion == completion, f"{at}: Turn.completion differs from the completion given"
    assert (turn.role, turn.stage) == (obs.role, obs.stage), (
        f"{at}: Turn has role/stage {turn.role}/{turn.stage}; the observation had {obs.role}/{obs.stage}"
    )
    assert turn.images == tuple(im.id for im in obs.images), f"{at}: Turn.images {turn.images} != observed image ids"
    assert isinstance(turn.prompt, str), f"{at}: Turn.prompt must be str"
    assert isinstance(turn.action, Action) and isinstance(turn.action.kind, str), f"{at}: bad action {turn.action!r}"


def _check_episode(episode: Any, game_cls: type[Game], seed: int, turns: list[Turn], seats: set[int], where: str) -> None:
    assert isinstance(episode, Episode), f"{where}: episode() returned {type(episode).__name__}, not an Episode"
    assert episode.game == game_cls.name, f"{where}: Episode.game is {episode.game!r}; expected {game_cls.name!r}"
    assert episode.seed == seed, f"{where}: Episode.seed is {episode.seed!r}; expected {seed}"
    assert episode.turns == tuple(turns), f"{where}: Episode.turns differ from the Turns step() returned"
    assert isinstance(episode.roles, tuple), f"{where}: Episode.roles must be a tuple"
    top = max(seats, default=0)
    assert top <= len(episode.roles), f"{where}: player {top} acted but Episode.roles has {len(episode.roles)} roles"
    names = {r.name for r in game_cls.roles}
    assert set(episode.roles) <= names, f"{where}: Episode.roles {episode.roles} not all in {sorted(names)}"
    for t in episode.turns:
        assert t.role == episode.role_of(t.player), (
            f"{where} turn {t.index}: player {t.player} acted as {t.role!r} but Episode.roles says {episode.role_of(t.player)!r}"
        )


def _check_roundtrip(episode: Episode, where: str) -> None:
    try:
        text = json.dumps(episode.to_dict(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{where}: episode is not JSON-serialisable: {exc}") from exc
    back = Episode.from_dict(json.loads(text))
    if back != episode:
        raise AssertionError(f"{where}: episode changed in a JSON round-trip: {_first_difference(episode, back)}")


def _check_same(first: Episode, second: Episode, where: str) -> None:
    if first != second:
        raise AssertionError(f"{where}: same seed, different episode: {_first_difference(first, second)}")


def _first_difference(a: Episode, b: Episode) -> str:
    for name in ("game", "seed", "roles", "info"):
        if getattr(a, name) != getattr(b, name):
            return f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
    for ta, tb in itertools.zip_longest(a.turns, b.turns):
        if ta != tb:
            if ta is None or tb is None:
                return f"turn counts differ: {len(a.turns)} != {len(b.turns)}"
            fields = [f for f in Turn.__dataclass_fields__ if getattr(ta, f) != getattr(tb, f)]
            return f"turn {ta.index} differs in {fields}"
    return "unequal, but no field differs (check __eq__ of values in info)"
