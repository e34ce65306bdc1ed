"""``play_async`` against ``play`` on a scripted engine that finishes requests in a scrambled
order: the same turns, simultaneous voters observed from one state before any of them is
stepped, and requests seeded by (game, request) whatever the order. The same checks on vLLM
itself are in tests/test_vllm.py."""

from __future__ import annotations

import random
import zlib

import pytest
import torch

from games.spy.game import SpyGame
from tests.conftest import make_image
from vzframe.plugins import PluginError
from vzframe.rollout import Generation
from vzframe.rollout.play import play, play_async


class ScriptedEngine:
    """Completions are a function of the prompt and the request's seed; ``finished`` hands
    back one or two random pending requests at a time."""

    per_request_seeds = True

    def __init__(self) -> None:
        self.pending: list[tuple[object, object, int]] = []
        self.order = random.Random(0)
        self.seeds: list[int] = []

    def _complete(self, obs, seed: int) -> Generation:
        self.seeds.append(seed)
        pick = zlib.crc32(f"{obs.prompt_text()}|{seed}".encode())
        if obs.stage == "clue":
            text = f"<think>mine {pick % 7}</think><answer>A shape, {pick % 5} of them.</answer>"
        else:
            text = f"<answer>{pick % 4 + 1}</answer>"
        return Generation(text=text, token_ids=tuple(range(pick % 9 + 1)), prompt_tokens=1)

    def generate(self, observations, seeds):
        return [self._complete(obs, seed) for obs, seed in zip(observations, seeds)]

    def add_request(self, key, observation, *, seed: int) -> None:
        self.pending.append((key, observation, seed))

    def cancel(self) -> None:
        self.pending.clear()

    def finished(self):
        done = []
        for _ in range(min(len(self.pending), self.order.choice([1, 2]))):
            key, obs, seed = self.pending.pop(self.order.randrange(len(self.pending)))
            done.append((key, self._complete(obs, seed)))
        return done


class LoggedSpy(SpyGame):
    """Logs every ``observe`` and ``step`` with the number of turns played at that moment."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, int, str, int]] = []
        self.stepping = False

    def observe(self, player):
        obs = super().observe(player)
        if not self.stepping:  # step observes too
            self.log.append(("observe", player, obs.stage, len(self._turns)))
        return obs

    def step(self, player, completion):
        self.log.append(("step", player, self.stage, len(self._turns)))
        self.stepping = True
        try:
            return super().step(player, completion)
        finally:
            self.stepping = False


def spy_games(n: int = 5) -> list[LoggedSpy]:
    return [LoggedSpy(None, seed=s, images=lambda s=s: make_image(s)) for s in range(n)]


def played(mode, engine, seed: int = 3):
    games = spy_games()
    torch.manual_seed(seed)
    rollout = mode(games, engine)
    return games, rollout, [[(t.player, t.stage, t.completion) for t in ep.turns] for ep in rollout.episodes]


def test_async_play_gives_tick_play_turns_in_any_completion_order():
    tick_engine, async_engine = ScriptedEngine(), ScriptedEngine()
    _, tick, tick_turns = played(play, tick_engine)
    _, fast, fast_turns = played(play_async, async_engine)
    assert fast_turns == tick_turns
    assert sorted(tick_engine.seeds) == sorted(async_engine.seeds)
    assert len(set(tick_engine.seeds)) == len(tick_engine.seeds)  # every request its own seed
    assert fast.tokens == tick.tokens
    for a, b in zip(fast.games, tick.games):
        assert {i: (o.prompt_text(), g.text) for i, (o, g) in a.generations.items()} == {
            i: (o.prompt_text(), g.text) for i, (o, g) in b.generations.items()
        }


def test_async_play_is_reproducible_and_follows_the_torch_seed():
    assert played(play_async, ScriptedEngine())[2] == played(play_async, ScriptedEngine())[2]
    assert played(play_async, ScriptedEngine(), seed=4)[2] != played(play_async, ScriptedEngine(), seed=3)[2]


def test_async_voters_see_the_same_state():
    games, _, _ = played(play_async, ScriptedEngine())
    for game in games:
        votes = [e for e in game.log if e[2] == "decision"]
        observed = [e for e in votes if e[0] == "observe"]
        stepped = [e for e in votes if e[0] == "step"]
        assert len(observed) == len(stepped) == game.num_players - 1
        assert votes.index(stepped[0]) == len(observed)  # every voter observed before the first vote
        assert {n for *_, n in observed} == {game.config.clue_rounds * game.num_players}


class Broken(LoggedSpy):
    def step(self, player, completion):
        if len(self._turns) == 2:
            raise ValueError("boom")
        return super().step(player, completion)


def test_a_game_that_raises_leaves_no_request_behind():
    engine = ScriptedEngine()
    with pytest.raises(PluginError, match="boom"):
        play_async([*spy_games(2), Broken(None, seed=9, images=lambda: make_image(9))], engine)
    assert engine.pending == []


def test_async_play_with_the_transformers_engine_is_refused_with_what_to_do():
    from vzframe.config import RolloutConfig

    with pytest.raises(ValueError, match="rollout.engine=vllm"):
        RolloutConfig(async_play=True)
    assert RolloutConfig(engine="vllm", async_play=True).async_play
