"""The reference game games.spy: flow, privacy, parsing, rewards, metrics and its hooks."""

from __future__ import annotations

import doctest
import itertools
import math

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

import games.spy
from games.clue_vote import TRUNCATED
from games.spy import SpyConfig, SpyGame, game, prompts, rewards
from games.spy.game import spy_bluffed
from games.spy.rewards import ClueReward, FormatReward, VoteReward, clue_rewards, vote_reward
from vzframe import hookspecs
from vzframe.gamespec import metrics_of, reward_fns_of
from vzframe.plugins import build_registry
from vzframe.testing import check_game
from vzframe.types import Action, Episode, ImageItem, Turn

SIZE = (56, 40)
FAST = settings(max_examples=150, deadline=None)


def image_stream(color: str = "red"):
    counter = itertools.count()
    return lambda: ImageItem(f"test:{next(counter)}", Image.new("RGB", SIZE, color))


def make(seed: int = 0, **cfg) -> SpyGame:
    return SpyGame(SpyConfig(**cfg), seed=seed, images=image_stream())


def clue(player: int, rnd: int) -> str:
    return f"<think>secret-{player}-{rnd}</think><answer>public-{player}-{rnd}</answer>"


def play(g: SpyGame, vote: str = "<answer>N/A</answer>") -> list[tuple[int, ...]]:
    """Play to the end with scripted clues and one vote text; return every to_act()."""
    order, rounds = [], itertools.count(0)
    while acting := g.to_act():
        order.append(acting)
        player = acting[0]
        rnd = next(rounds) // g.num_players + 1
        g.step(player, clue(player, rnd) if g.stage == "clue" else vote)
    return order


# ---- conformance ----------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [{}, {"num_citizens": 4}, {"clue_rounds": 1}, {"clue_rounds": 3}])
def test_check_game_passes(cfg):
    fns = {fn.name: fn for fn in rewards.REWARD_FNS}
    report = check_game(SpyGame, cfg, episodes=50, reward_fns=fns)
    c = SpyConfig(**cfg)
    assert report.episodes == 50
    assert report.turns_by_stage == {
        "clue": 50 * (c.num_citizens + 1) * c.clue_rounds,
        "decision": 50 * c.num_citizens,
    }
    assert 0 < report.invalid < report.turns


def test_doctests():
    for module in (game, rewards):
        assert doctest.testmod(module).failed == 0


# ---- flow -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_turn_order(seed):
    g = make(seed)
    order = play(g)
    seats = [(p,) for p in range(1, 5)]
    citizens = tuple(p for p in range(1, 5) if p != g.spy)
    assert order[:8] == seats * 2
    assert order[8] == citizens
    assert [len(a) for a in order[9:]] == [2, 1]
    ep = g.episode()
    assert [t.player for t in ep.turns_of("decision")] == list(citizens)
    assert g.spy not in [t.player for t in ep.turns_of("decision")]
    assert [t.index for t in ep.turns] == list(range(11))
    assert g.to_act() == ()


def test_votes_in_any_order():
    g = make(1)
    for p in (1, 2, 3, 4):
        g.step(p, clue(p, 1))
    for p in (1, 2, 3, 4):
        g.step(p, clue(p, 2))
    for p in reversed(g.to_act()):
        g.step(p, "<answer>N/A</answer>")
    assert g.to_act() == ()


def test_spy_seat_uniform_and_seeded():
    spies = [make(s).spy for s in range(400)]
    assert set(spies) == {1, 2, 3, 4}
    assert all(60 < spies.count(p) < 140 for p in range(1, 5))
    assert [make(s).spy for s in range(20)] == spies[:20]


@pytest.mark.parametrize("color", ["#ffffff", "#123456", "#0a0"])
def test_spy_sees_blank_image(color):
    g = make(2, blank_color=color)
    for p in range(1, 5):
        (item,) = g.observe(p).images
        if p == g.spy:
            assert item.image.size == SIZE
            assert item.image.getcolors() == [(SIZE[0] * SIZE[1], Image.new("RGB", (1, 1), color).getpixel((0, 0)))]
            assert item.id == f"blank:{color}:{SIZE[0]}x{SIZE[1]}"
        else:
            assert item.id == "test:0" and item.image.getpixel((0, 0)) == (255, 0, 0)


def test_prompts_are_private_and_show_public_clues():
    g = make(3)
    play(g)
    ep = g.episode()
    for t in ep.turns:
        earlier = [u for u in ep.turns[: t.index] if u.stage == "clue"]
        for u in earlier:
            assert f"Player {u.player}: public-{u.player}-" in t.prompt
            assert (f"secret-{u.player}-" in t.prompt) == (u.player == t.player)
        later = [u for u in ep.turns[t.index :] if u.stage == "clue"]
        for u in later:
            assert f"public-{u.player}-{(u.index // 4) + 1}" not in t.prompt
    decision = ep.turns_of("decision")
    assert len({t.prompt for t in decision}) == len(decision)  # each shows its own reasoning
    for t in decision:
        assert prompts.ROLE_LINE["citizen"] in t.prompt and "<answer>N/A</answer>" in t.prompt
    spy_clue = next(t for t in ep.turns if t.player == g.spy)
    assert prompts.ROLE_LINE["spy"] in spy_clue.prompt


def test_voters_do_not_see_each_others_votes():
    g = make(4)
    for rnd, p in itertools.product((1, 2), (1, 2, 3, 4)):
        g.step(p, clue(p, rnd))
    voters = g.to_act()
    before = {p: g.observe(p).to_dict() for p in voters}
    g.step(voters[0], f"<think>vote-secret</think><answer>{voters[1]}</answer>")
    assert all(g.observe(p).to_dict() == before[p] for p in voters[1:])


def test_invalid_and_long_clues_as_seen_by_others():
    g = make(5, max_clue_chars=10)
    g.step(1, "no tags at all")
    g.step(2, "<answer>" + "word " * 100 + "</answer>")
    text = g.observe(3).messages[-1]["content"][-1]["text"]
    assert "Player 1: (no clue)" in text
    assert "Player 2: word word" + TRUNCATED + "\n" in text
    assert "word " * 3 not in text


def test_misuse_raises():
    g = make(6)
    with pytest.raises(ValueError, match="cannot act"):
        g.step(2, clue(2, 1))
    with pytest.raises(RuntimeError, match="before the game is over"):
        g.episode()
    play(g)
    with pytest.raises(ValueError):
        g.step(1, "<answer>2</answer>")


def test_episode_info_and_roundtrip():
    g = make(7)
    play(g, vote="<answer>1</answer>")
    ep = g.episode()
    assert ep.game == "spy" and ep.seed == 7
    assert ep.roles == tuple("spy" if p == g.spy else "citizen" for p in range(1, 5))
    assert ep.info == {
        "spy": g.spy,
        "image": "test:0",
        "spy_image": f"blank:#ffffff:{SIZE[0]}x{SIZE[1]}",
        "num_citizens": 3,
        "clue_rounds": 2,
    }
    assert Episode.from_dict(ep.to_dict()) == ep


def test_config_validation():
    with pytest.raises(ValidationError, match="extra"):
        SpyConfig(num_citizen=3)
    for bad in ({"num_citizens": 1}, {"clue_rounds": 0}, {"blank_color": "white"}, {"beta": float("nan")}):
        with pytest.raises(ValidationError):
            SpyConfig(**bad)
    assert all(f.description for f in SpyConfig.model_fields.values())


# ---- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, kind, value",
    [
        ("3", "vote", 3), (" 3 ", "vote", 3), ("Player 3", "vote", 3), ("player #2", "vote", 2),
        ("**4**", "vote", 4), ("3.", "vote", 3), ("N/A", "na", None), ("n/a", "na", None),
        ("NA", "na", None), ("none", "na", None), ("1", "invalid", None), ("0", "invalid", None),
        ("5", "invalid", None), ("-1", "invalid", None), ("999", "invalid", None), ("1.5", "invalid", None),
        ("", "invalid", None), ("3 or 4", "invalid", None), ("9" * 5000, "invalid", None),
    ],
)
def test_parse_vote_forms(answer, kind, value):
    action = game.parse_vote(f"<think>x</think><answer>{answer}</answer>", 1, 4)
    assert (action.kind, action.value) == (kind, value)
    assert (action.reason != "") == (kind == "invalid")


def test_parse_uses_last_answer():
    assert game.parse_vote("<answer>2</answer> no, <answer>3</answer>", 1, 4) == Action("vote", 3)
    assert game.parse_clue("<answer>a</answer><answer> b </answer>") == Action("clue", "b")
    assert game.parse_clue("<answer>   </answer>").kind == "invalid"
    assert game.parse_clue("<answer>unclosed").kind == "invalid"


@FAST
@given(st.text(), st.integers(1, 5))
def test_parsing_is_total(text, voter):
    for completion in (text, f"<answer>{text}</answer>", f"<think>{text}</think><answer>{text}"):
        clue_action = game.parse_clue(completion)
        assert clue_action.kind in ("clue", "invalid")
        vote_action = game.parse_vote(completion, voter, 5)
        assert vote_action.kind in ("vote", "na", "invalid")
        if vote_action.kind == "vote":
            assert vote_action.value in range(1, 6) and vote_action.value != voter


@FAST
@given(st.integers(2, 8), st.data())
def test_vote_for_self_or_missing_player_is_invalid(n, data):
    voter = data.draw(st.integers(1, n))
    target = data.draw(st.integers(-10**7, 10**7))
    action = game.parse_vote(f"<answer>{target}</answer>", voter, n)
    valid = 1 <= target <= n and target != voter
    assert action == (Action("vote", target) if valid else Action("invalid", None, action.reason))


# ---- rewards --------------------------------------------------------------------------

actions = st.one_of(
    st.builds(Action, st.just("vote"), st.integers(-1, 7)),
    st.just(Action("na")),
    st.just(Action("invalid", None, "x")),
)
coef = st.floats(0, 10, allow_nan=False)


@FAST
@given(st.integers(2, 6), st.data(), st.lists(actions, max_size=8), coef, coef)
def test_clue_rewards_zero_sum_and_formula(n_c, data, votes, beta, lam):
    n = n_c + 1
    spy = data.draw(st.integers(1, n))
    cfg = SpyConfig(num_citizens=n_c, beta=beta, lam=lam)
    r = clue_rewards(votes, spy, n, cfg)
    assert sorted(r) == list(range(1, n + 1))
    assert abs(sum(r.values())) < 1e-9 * max(1.0, beta, lam) * (len(votes) + 1)
    count = {p: sum(a.kind == "vote" and a.value == p for a in votes) for p in range(1, n + 1)}
    mean_c = sum(count[p] for p in r if p != spy) / n_c
    psi = count[spy] - mean_c
    assert r[spy] == pytest.approx(-beta * psi)
    for p in r:
        if p != spy:
            assert r[p] == pytest.approx(beta / n_c * psi - lam * (count[p] - mean_c), abs=1e-12)


@FAST
@given(actions, st.integers(1, 5))
def test_vote_reward_table(action, spy):
    cfg = SpyConfig(vote_correct=2.0, vote_na=-0.25, vote_wrong=-3.0)
    expected = {"na": -0.25, "invalid": -3.0}.get(action.kind, 2.0 if action.value == spy else -3.0)
    assert vote_reward(action, spy, cfg) == expected


def scripted_episode(votes, seed: int = 8) -> tuple[SpyGame, Episode]:
    """Clues (player 1's second one is garbage), then ``votes(spy, voters)`` -> {voter: text}."""
    g = make(seed)
    for rnd, p in itertools.product((1, 2), (1, 2, 3, 4)):
        g.step(p, clue(p, rnd) if (p, rnd) != (1, 2) else "garbage")
    texts = votes(g.spy, g.to_act())
    for p in g.to_act():
        g.step(p, texts[p])
    return g, g.episode()


def test_reward_fns_on_an_episode():
    def votes(spy, voters):
        a, b, c = voters
        return {a: f"<answer>{spy}</answer>", b: "<answer>N/A</answer>", c: f"<think>t</think><answer>{a}</answer>"}

    g, ep = scripted_episode(votes)
    cfg = SpyConfig()
    assert list(VoteReward()(ep, cfg).values()) == [1.0, -0.5, -1.0]
    clue_r = ClueReward()(ep, cfg)
    assert set(clue_r) == {t.index for t in ep.turns_of("clue")}
    per_player = clue_rewards([t.action for t in ep.turns_of("decision")], g.spy, 4, cfg)
    assert all(clue_r[t.index] == per_player[t.player] for t in ep.turns_of("clue"))
    assert abs(sum(per_player.values())) < 1e-12
    assert per_player[g.spy] == pytest.approx(-0.1 * (1 - 1 / 3))
    assert list(FormatReward()(ep, cfg).values()) == [-0.3, -0.3, 0.3]
    assert VoteReward.stage == "decision" and ClueReward.stage == "clue"


# ---- metrics and hooks ----------------------------------------------------------------


def test_metrics():
    _, caught = scripted_episode(lambda spy, voters: {p: f"<answer>{spy}</answer>" for p in voters})
    texts = ["<answer>zzz</answer>", "<answer>{spy}</answer>", "<answer>N/A</answer>"]
    _, one_vote = scripted_episode(lambda spy, voters: {p: t.format(spy=spy) for p, t in zip(voters, texts)})
    m = games.spy.metrics([caught, one_vote, Episode("other", 0, (), ())])
    both = {"acc": 4 / 6, "spy_caught": 1.0}  # neither spy said "blank": both games count as bluffs too
    assert m == pytest.approx({**both, "na": 1 / 6, "invalid": 1 / 6, "clue_valid": 14 / 16, "bluff_acc": 4 / 6, "bluff_caught": 1.0})
    assert games.spy.metrics([Episode("other", 0, (), ())]) is None
    assert games.spy.metrics([]) is None


def test_spy_not_caught_on_tie():
    def votes(spy, voters):
        a, b, c = voters
        return {a: f"<answer>{b}</answer>", b: f"<answer>{spy}</answer>", c: "<answer>N/A</answer>"}

    _, tie = scripted_episode(votes)
    assert games.spy.metrics([tie])["spy_caught"] == 0.0


def test_game_outcome_citizens_win_when_the_spy_is_caught_and_the_spy_on_a_tie():
    """``SpyGame.outcome`` (what ``vzframe league`` rates from) agrees with ``spy_caught``."""
    _, caught = scripted_episode(lambda spy, voters: {p: f"<answer>{spy}</answer>" for p in voters})

    def tied(spy, voters):
        a, b, c = voters
        return {a: f"<answer>{b}</answer>", b: f"<answer>{spy}</answer>", c: "<answer>N/A</answer>"}

    _, tie = scripted_episode(tied)
    assert SpyGame.outcome(caught) == {"spy": 0.0, "citizen": 1.0, "judge": 1.0}
    assert SpyGame.outcome(tie) == {"spy": 1.0, "citizen": 0.0, "judge": 0.0}
    assert SpyGame.outcome(Episode("other", 0, (), ())) is None  # not this game's episode


def test_hooks_register_and_collect():
    pm = pluggy.PluginManager("vzframe")
    pm.add_hookspecs(hookspecs)
    pm.register(games.spy, name="games.spy")
    registry = build_registry(pm)
    assert registry.games == {"spy": SpyGame}
    assert registry.reward_fns == {}  # the game declares its own
    assert set(reward_fns_of(SpyGame, registry.reward_fns)) == {"spy.vote", "spy.clue"}
    assert {fn.name for fn in SpyGame.reward_fns} == {"spy.vote", "spy.clue", "spy.format"}
    assert set(SpyGame.phases) == {"decision", "clue"} and next(iter(SpyGame.phases)) == "decision"
    _, ep = scripted_episode(lambda spy, voters: {p: "<answer>N/A</answer>" for p in voters})
    result = metrics_of(SpyGame, pm, [ep])
    assert result["na"] == 1.0 and set(result) == {"acc", "na", "invalid", "spy_caught", "clue_valid", "bluff_acc", "bluff_caught"}
    assert pm.hook.collect_metrics(episodes=[ep]) == []  # no hook: nothing to broadcast


def test_bluff_figures_count_only_games_whose_spy_never_said_blank():
    """A spy that says "blank" in any round gave itself away: its game leaves the bluff figures."""

    def game(seed: int, admits: bool, voted: str) -> Episode:
        g = make(seed)
        for rnd, p in itertools.product((1, 2), (1, 2, 3, 4)):
            blank = admits and p == g.spy and rnd == 2
            g.step(p, "<think>t</think><answer>My picture is BLANK.</answer>" if blank else clue(p, rnd))
        voters = g.to_act()
        for p in voters:
            g.step(p, f"<answer>{g.spy if voted == 'spy' else next(q for q in (1, 2, 3, 4) if q not in (p, g.spy))}</answer>")
        return g.episode()

    admitted, bluffed, missed = game(3, True, "spy"), game(4, False, "spy"), game(5, False, "other")
    assert not spy_bluffed(admitted) and spy_bluffed(bluffed) and spy_bluffed(missed)
    m = SpyGame.collect_metrics([admitted, bluffed, missed])
    assert m["acc"] == pytest.approx(2 / 3) and m["spy_caught"] == pytest.approx(2 / 3)
    assert m["bluff_acc"] == 0.5 and m["bluff_caught"] == 0.5
    only_admits = SpyGame.collect_metrics([admitted])  # every declared metric is reported; no bluff game: NaN
    assert set(only_admits) == set(SpyGame.metrics) and math.isnan(only_admits["bluff_acc"]) and math.isnan(only_admits["bluff_caught"])


def test_turn_records_prompt_and_images():
    g = make(9)
    obs = g.observe(1)
    turn = g.step(1, clue(1, 1))
    assert isinstance(turn, Turn)
    assert turn.prompt == obs.prompt_text() and turn.images == tuple(i.id for i in obs.images)
    assert turn.action == Action("clue", "public-1-1")
