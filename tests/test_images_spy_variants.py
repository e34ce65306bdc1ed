"""Variants of games.spy: the spy's modified twin (``spy_image``), the reference's judge
(``decision``), and the optional format and correctness terms of the vote reward."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from pydantic import ValidationError

import games.spy
from games.spy import SpyConfig, SpyGame, rewards
from plugins.clevr import ClevrSource
from plugins.clevr import Config as ClevrConfig
from plugins.shapes import Config as ShapesConfig
from plugins.shapes import ShapesSource
from vzframe.advantages import RoleBaselines, estimate_advantages
from vzframe.config import ConfigError
from vzframe.testing import check_game

FNS = {fn.name: fn for fn in rewards.REWARD_FNS}
CLEVR = ClevrSource(ClevrConfig(width=112, height=84, supersample=1, max_objects=5), seed=0)


def clevr_stream(seed: int):
    """Episode ``seed``'s pictures: consecutive clevr indices, so replays see the same ones."""
    counter = itertools.count(seed * 10)
    return lambda: CLEVR.get(next(counter))


def clue(player: int) -> str:
    return f"<think>mine {player}</think><answer>clue of {player}</answer>"


def play_clues(g: SpyGame) -> None:
    while g.stage == "clue":
        (player,) = g.to_act()
        g.step(player, clue(player))


@pytest.mark.parametrize(
    "cfg",
    [
        {"spy_image": "modified"},
        {"decision": "judge"},
        {"decision": "judge", "judge_samples": 3, "spy_image": "modified", "num_citizens": 4, "clue_rounds": 1},
        {"decision": "judge", "judge_samples": 2},
        {"spy_image": "modified", "format_weight": 0.3, "correct_bonus": 0.99, "clue_rounds": 3},
        {"spy_image": "blank", "blank_color": "#000", "decision": "vote", "num_citizens": 2},
    ],
)
def test_check_game_passes_for_every_variant(cfg):
    report = check_game(SpyGame, cfg, episodes=24, reward_fns=FNS, images=clevr_stream)
    c = SpyConfig(**cfg)
    voters = c.judge_samples if c.decision == "judge" else c.num_citizens
    assert report.turns_by_stage == {"clue": 24 * (c.num_citizens + 1) * c.clue_rounds, "decision": 24 * voters}


def test_modified_gives_the_spy_the_twin_and_citizens_the_original():
    for seed in range(4):
        g = SpyGame(SpyConfig(spy_image="modified"), seed=seed, images=clevr_stream(seed))
        original = CLEVR.get(seed * 10)
        twin = original.twin()
        for player in g.seats:
            (seen,) = g.observe(player).images
            assert seen.id == (twin.id if player == g.spy else original.id)
        (spy_view,) = g.observe(g.spy).images
        assert spy_view.image.tobytes() == twin.image.tobytes() != original.image.tobytes()
        assert len(spy_view.meta["changes"]) == 2
        play_clues(g)
        for voter in g.to_act():
            g.step(voter, "<answer>N/A</answer>")
        ep = g.episode()
        assert ep.info["spy_image"] == twin.id and ep.info["image"] == original.id
        assert all(t.images == (twin.id,) for t in ep.turns if t.player == g.spy)


def test_modified_needs_a_source_that_renders_twins():
    shapes = ShapesSource(ShapesConfig(), seed=0)
    with pytest.raises(ConfigError, match=r"spy_image=modified needs an image source that renders twins, e.g. images=clevr"):
        SpyGame(SpyConfig(spy_image="modified"), seed=0, images=lambda: shapes.get(0))
    SpyGame(SpyConfig(), seed=0, images=lambda: shapes.get(0))  # blank works with any source


def judge_game(seed: int = 1, **cfg) -> SpyGame:
    g = SpyGame(SpyConfig(decision="judge", **cfg), seed=seed, images=clevr_stream(seed))
    play_clues(g)
    return g


def test_judge_samples_vote_at_once_seeing_the_citizens_picture_and_every_clue():
    g = judge_game(judge_samples=5)
    judges = g.to_act()
    assert judges == (5, 6, 7, 8, 9), "the k samples sit after the 4 players and move together"
    views = [g.observe(j) for j in judges]
    assert all(v.messages == views[0].messages for v in views), "k samples of one judge: the same prompt"
    for view in views:
        text = view.messages[-1]["content"][-1]["text"]
        assert view.role == "judge" and view.stage == "decision"
        assert view.images[0].id == CLEVR.get(10).id, "the citizens' picture, never the spy's"
        assert all(f"clue of {p}" in text for p in g.seats)
        assert "mine" not in text, "players' private reasoning stays private"
        assert "judge" in view.messages[0]["content"] and "votes for" not in view.messages[0]["content"]
    player_rules = g.observe(1).messages[0]["content"]
    assert "a judge who sees the citizens' picture decides" in player_rules
    votes = {5: f"<answer>{g.spy}</answer>", 6: "<answer>N/A</answer>", 7: "<answer>9</answer>"}
    for j in judges:
        g.step(j, votes.get(j, f"<think>t</think><answer>{g.spy}</answer>"))
    ep = g.episode()
    assert ep.roles[4:] == ("judge",) * 5 and ep.roles.count("spy") == 1 and ep.info["judges"] == 5
    decision = ep.turns_of("decision")
    assert [t.player for t in decision] == [5, 6, 7, 8, 9] and all(t.role == "judge" for t in decision)
    assert [t.action.kind for t in decision] == ["vote", "na", "invalid", "vote", "vote"]


def test_judge_votes_are_one_group_and_drive_metrics_and_clue_rewards():
    g = judge_game(seed=2, judge_samples=8)
    spy = g.spy
    citizen = next(p for p in g.seats if p != spy)
    texts = [f"<answer>{spy}</answer>"] * 5 + ["<answer>N/A</answer>"] * 2 + [f"<answer>{citizen}</answer>"]
    for judge, text in zip(g.to_act(), texts):
        g.step(judge, text)
    ep = g.episode()
    vote_r = rewards.VoteReward()(ep, g.config)
    assert sorted(vote_r.values()) == [-1.0, -0.5, -0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    ep = dataclasses.replace(ep, turns=tuple(dataclasses.replace(t, reward=vote_r.get(t.index)) for t in ep.turns))
    (scored,), _ = estimate_advantages([ep], SpyGame.phases, RoleBaselines(0.9))
    adv = [t.advantage for t in scored.turns_of("decision")]
    assert len(adv) == 8 and abs(sum(adv)) < 1e-6 and np.std(adv) == pytest.approx(1.0, abs=1e-4)
    m = games.spy.metrics([ep])
    assert m["acc"] == 5 / 8 and m["na"] == 2 / 8 and m["spy_caught"] == 1.0
    clue_r = rewards.ClueReward()(ep, g.config)
    per_player = {t.player: clue_r[t.index] for t in ep.turns_of("clue")}
    assert sorted(per_player) == [1, 2, 3, 4], "judges are not players"
    assert abs(sum(per_player.values())) < 1e-12
    assert per_player[spy] == pytest.approx(-0.1 * (5 - 1 / 3))


def test_format_and_correct_bonus_terms_are_off_by_default_and_configurable():
    g = SpyGame(SpyConfig(), seed=3, images=clevr_stream(3))
    play_clues(g)
    a, b, c = g.to_act()
    texts = {a: f"<think>sure</think><answer>{g.spy}</answer>", b: f"<answer>{g.spy}</answer>", c: "<answer>N/A</answer>"}
    for p in (a, b, c):
        g.step(p, texts[p])
    ep = g.episode()
    assert list(rewards.VoteReward()(ep, SpyConfig()).values()) == [1.0, 1.0, -0.5]
    cfg = SpyConfig(format_weight=0.3, correct_bonus=0.99)
    assert list(rewards.VoteReward()(ep, cfg).values()) == pytest.approx([1 + 0.99 + 0.3, 1 + 0.99 - 0.3, -0.5 - 0.3])


@pytest.mark.parametrize(
    "bad", [{"spy_image": "twin"}, {"decision": "jury"}, {"judge_samples": 0}, {"format_weight": -1}, {"correct_bonus": float("nan")}]
)
def test_variant_config_is_validated(bad):
    with pytest.raises(ValidationError):
        SpyConfig(**bad)
    assert all(f.description for f in SpyConfig.model_fields.values())
