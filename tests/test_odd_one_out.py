"""The second game, games.odd_one_out: conformance, flow, privacy of the role, rewards,
metrics, hooks, and a one-step run with every scheduler."""

from __future__ import annotations

import doctest
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

import games.odd_one_out
from games.odd_one_out import OddOneOutConfig, OddOneOutGame, game, prompts, rewards
from games.odd_one_out.rewards import REWARD_FNS, ClueReward, VoteReward, clue_rewards, vote_reward
from vzframe.gamespec import metrics_of, outcome_of, reward_fns_of
from vzframe.plugins import build_registry, make_plugin_manager
from vzframe.testing import check_game
from vzframe.types import Action, Episode, ImageItem

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=150, deadline=None)
COLORS = ("red", "green", "blue", "yellow", "purple")


def image_stream(ids=None):
    """Pictures test:0, test:1, ... (or the ids given, in order), each a different colour."""
    counter = itertools.count()
    names = iter(ids) if ids is not None else (f"test:{i}" for i in itertools.count())

    def draw() -> ImageItem:
        i = next(counter)
        return ImageItem(next(names), Image.new("RGB", (56, 40), COLORS[i % len(COLORS)]))

    return draw


def make(seed: int = 0, **cfg) -> OddOneOutGame:
    return OddOneOutGame(OddOneOutConfig(**cfg), seed=seed, images=image_stream())


def clue(player: int, rnd: int) -> str:
    return f"<think>secret-{player}-{rnd}</think><answer>public-{player}-{rnd}</answer>"


def play(g: OddOneOutGame, votes=lambda odd, player: "<answer>N/A</answer>") -> list[tuple[int, ...]]:
    """Play to the end: scripted clues, then ``votes(odd, player)`` for each vote; return every to_act()."""
    order, spoken = [], itertools.count(0)
    while acting := g.to_act():
        order.append(acting)
        player = acting[0]
        if g.stage == "clue":
            g.step(player, clue(player, next(spoken) // g.num_players + 1))
        else:
            g.step(player, votes(g.odd, player))
    return order


# ---- conformance ----------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [{}, {"num_players": 3}, {"num_players": 6}, {"clue_rounds": 1}, {"clue_rounds": 3}])
def test_check_game_passes(cfg):
    report = check_game(OddOneOutGame, cfg, episodes=40, reward_fns={fn.name: fn for fn in REWARD_FNS})
    c = OddOneOutConfig(**cfg)
    assert report.turns_by_stage == {"clue": 40 * c.num_players * c.clue_rounds, "decision": 40 * c.num_players}
    assert 0 < report.invalid < report.turns


def test_doctests():
    for module in (game, rewards):
        assert doctest.testmod(module).failed == 0


def test_config_validation():
    with pytest.raises(ValidationError, match="extra"):
        OddOneOutConfig(num_player=4)
    for bad in ({"num_players": 2}, {"clue_rounds": 0}, {"beta": float("nan")}, {"max_clue_chars": 0}):
        with pytest.raises(ValidationError):
            OddOneOutConfig(**bad)
    assert all(f.description for f in OddOneOutConfig.model_fields.values())


# ---- flow and pictures ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_turn_order_everyone_votes(seed):
    g = make(seed)
    order = play(g)
    assert order[:8] == [(p,) for p in range(1, 5)] * 2
    assert order[8:] == [(1, 2, 3, 4), (2, 3, 4), (3, 4), (4,)]
    ep = g.episode()
    assert [t.player for t in ep.turns_of("decision")] == [1, 2, 3, 4]
    assert [t.index for t in ep.turns] == list(range(12)) and g.to_act() == ()


def test_odd_seat_uniform_and_seeded():
    seats = [make(s).odd for s in range(400)]
    assert all(60 < seats.count(p) < 140 for p in range(1, 5))
    assert [make(s).odd for s in range(20)] == seats[:20]


def test_odd_player_sees_the_next_picture_of_the_stream():
    g = make(2)
    for p in range(1, 5):
        (item,) = g.observe(p).images
        assert item.id == ("test:1" if p == g.odd else "test:0")
    colours = {g.observe(p).images[0].image.getpixel((0, 0)) for p in range(1, 5)}
    assert colours == {(255, 0, 0), (0, 128, 0)}  # two real pictures, no blank one


def test_a_repeated_picture_is_drawn_again():
    g = OddOneOutGame(OddOneOutConfig(), seed=0, images=image_stream(["a", "a", "a", "b"]))
    play(g)
    assert (g.episode().info["image"], g.episode().info["odd_image"]) == ("a", "b")
    with pytest.raises(ValueError, match="two different pictures"):
        OddOneOutGame(OddOneOutConfig(), seed=0, images=image_stream(["same"] * 20))


def _text(observation) -> tuple[str, str]:
    return observation.messages[0]["content"], observation.messages[1]["content"][1]["text"]


def test_prompts_never_reveal_the_role():
    """Player 1's prompts are word for word the same whether it is the odd one or not."""
    odd_at_1 = next(s for s in itertools.count() if make(s).odd == 1)
    odd_at_2 = next(s for s in itertools.count() if make(s).odd == 2)
    seen = {}
    for seed in (odd_at_1, odd_at_2):
        g = make(seed)
        play(g)
        seen[seed] = [t.prompt for t in g.episode().turns if t.player == 1]
        assert g.observe(1).role == ("odd" if seed == odd_at_1 else "common")
    assert seen[odd_at_1] == seen[odd_at_2]
    assert games.odd_one_out.roles.ODD.brief == games.odd_one_out.roles.COMMON.brief


def test_prompts_are_private_and_show_public_clues():
    g = make(3)
    play(g)
    for t in g.episode().turns:
        for u in g.episode().turns[: t.index]:
            if u.stage == "clue":
                assert f"Player {u.player}: public-{u.player}-" in t.prompt
                assert (f"secret-{u.player}-" in t.prompt) == (u.player == t.player)
    assert prompts.DECISION_TASK in g.episode().turns[-1].prompt


def test_voters_do_not_see_each_others_votes():
    g = make(4)
    for rnd, p in itertools.product((1, 2), (1, 2, 3, 4)):
        g.step(p, clue(p, rnd))
    before = {p: g.observe(p).to_dict() for p in g.to_act()}
    g.step(1, "<think>vote-secret</think><answer>2</answer>")
    assert all(g.observe(p).to_dict() == before[p] for p in (2, 3, 4))


def test_self_votes_are_valid_and_misuse_raises():
    g = make(5)
    with pytest.raises(ValueError, match="cannot act"):
        g.step(2, clue(2, 1))
    with pytest.raises(RuntimeError, match="before the game is over"):
        g.episode()
    play(g, votes=lambda odd, p: f"<answer>{p}</answer>")
    assert [t.action for t in g.episode().turns_of("decision")] == [Action("vote", p) for p in range(1, 5)]
    with pytest.raises(ValueError):
        g.step(1, "<answer>2</answer>")
    assert Episode.from_dict(g.episode().to_dict()) == g.episode()


# ---- rewards --------------------------------------------------------------------------

actions = st.one_of(
    st.builds(Action, st.just("vote"), st.integers(-1, 8)),
    st.just(Action("na")),
    st.just(Action("invalid", None, "x")),
)
coef = st.floats(0, 10, allow_nan=False)


@FAST
@given(st.integers(3, 7), st.data(), coef, coef)
def test_clue_rewards_zero_sum_and_formula(n, data, beta, lam):
    odd = data.draw(st.integers(1, n))
    votes = data.draw(st.lists(st.tuples(st.integers(1, n), actions), max_size=n))
    cfg = OddOneOutConfig(num_players=n, beta=beta, lam=lam)
    r = clue_rewards(votes, odd, n, cfg)
    assert sorted(r) == list(range(1, n + 1))
    assert abs(sum(r.values())) < 1e-9 * max(1.0, beta, lam) * (len(votes) + 1)
    got = {p: sum(a.kind == "vote" and a.value == p and v != p for v, a in votes) for p in r}  # self-votes excluded
    mean_c = sum(got[p] for p in r if p != odd) / (n - 1)
    psi = got[odd] - mean_c
    assert r[odd] == pytest.approx(-beta * psi)
    for p in r:
        if p != odd:
            assert r[p] == pytest.approx(beta / (n - 1) * psi - lam * (got[p] - mean_c), abs=1e-12)


@FAST
@given(actions, st.integers(1, 5))
def test_vote_reward_table(action, odd):
    cfg = OddOneOutConfig(vote_correct=2.0, vote_na=-0.25, vote_wrong=-3.0)
    expected = {"na": -0.25, "invalid": -3.0}.get(action.kind, 2.0 if action.value == odd else -3.0)
    assert vote_reward(action, odd, cfg) == expected


def test_reward_fns_on_a_played_game():
    g = make(6)
    play(g, votes=lambda odd, p: f"<answer>{odd}</answer>" if p != 4 else "<answer>N/A</answer>")
    ep, cfg = g.episode(), OddOneOutConfig()
    votes = VoteReward()(ep, cfg)
    assert list(votes.values()) == [1.0, 1.0, 1.0, -0.5]
    clues = ClueReward()(ep, cfg)
    assert set(clues) == {t.index for t in ep.turns_of("clue")}
    assert abs(sum(clues[t.index] for t in ep.turns_of("clue") if t.index < 4)) < 1e-12  # one round sums to 0
    assert clues[next(t.index for t in ep.turns if t.player == g.odd)] < 0  # found: the odd one loses


# ---- metrics and hooks ----------------------------------------------------------------


def test_metrics():
    found = make(7)
    play(found, votes=lambda odd, p: f"<answer>{odd}</answer>")
    unsure = make(8)
    play(unsure, votes=lambda odd, p: "<answer>N/A</answer>" if p % 2 else "<answer>zzz</answer>")
    m = games.odd_one_out.metrics([found.episode(), unsure.episode(), Episode("spy", 0, (), ())])
    assert m == pytest.approx(
        {"acc": 4 / 8, "na": 2 / 8, "invalid": 2 / 8, "odd_found": 1 / 2, "odd_self_found": 1 / 2, "clue_valid": 1.0}
    )
    assert games.odd_one_out.metrics([Episode("spy", 0, (), ())]) is None
    assert games.odd_one_out.metrics([]) is None


def test_game_outcome_the_common_players_win_when_the_odd_one_is_found():
    pm = make_plugin_manager(["games.odd_one_out"])
    found, unsure = make(7), make(8)
    play(found, votes=lambda odd, p: f"<answer>{odd}</answer>")
    play(unsure)
    game_cls = build_registry(pm).games["odd_one_out"]
    assert outcome_of(game_cls, pm, found.episode()) == [{"odd": 0.0, "common": 1.0}]
    assert outcome_of(game_cls, pm, unsure.episode()) == [{"odd": 1.0, "common": 0.0}]


def test_register_games_and_collect_metrics_hooks():
    registry = build_registry(make_plugin_manager(["games.odd_one_out"]))
    assert registry.games == {"odd_one_out": OddOneOutGame}
    assert set(reward_fns_of(OddOneOutGame, registry.reward_fns)) == {"odd.vote", "odd.clue"}  # the game's own
    assert {"decision", "clue"} == set(OddOneOutGame.phases)
    assert OddOneOutGame.phases["decision"].advantage == "group" and OddOneOutGame.phases["clue"].advantage == "role"
    pm = make_plugin_manager(["games.odd_one_out"])
    g = make(9)
    play(g)
    assert metrics_of(OddOneOutGame, pm, [g.episode()])["na"] == 1.0


# ---- end to end: every scheduler runs the game ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheduler, phase", [("hysteresis", "decision"), ("clue_only", "clue"), ("decision_only", "decision"), ("alternate", "decision")]
)
def test_one_step_with_each_scheduler(scheduler, phase, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "vzframe.cli", "run", "games.odd_one_out", f"schedulers.{scheduler}",
         "steps=1", "games_per_step=1", "rollout.max_new_tokens=8", "game.num_players=3", "game.clue_rounds=1",
         f"output_dir={out}", "--quiet"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["phase"] == phase and row["samples"] == 3  # 3 votes or 3 clues
    assert {"acc", "na", "odd_found", "reward_odd", "reward_common", "acc_ema"} <= set(row)
    (episode,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert episode["game"] == "odd_one_out" and [t["stage"] for t in episode["turns"]] == ["clue"] * 3 + ["decision"] * 3
