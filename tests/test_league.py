"""``vzframe league``: a run's checkpoints play each other; OpenSkill rates them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

from plugins.league.league import by_role, league, outcome, pairings, rate
from vzframe import hookspecs
from vzframe.config import ConfigError
from vzframe.types import Episode

ROOT = Path(__file__).resolve().parents[1]
ROLES = ["spy", "citizen"]


def results_of(winner, players, games=12):
    """Every seating of ``players`` with ``games`` results, each game won by ``winner(seating)``'s role."""
    out = []
    for seating in pairings(players, ROLES):
        role = winner(seating)
        out.append((seating, [{r: float(r == role) for r in ROLES} for _ in range(games)]))
    return out


def test_pairings_seat_every_model_in_every_role_against_every_other_once():
    seatings = pairings(["a", "b", "c"], ROLES)
    assert len(seatings) == len(set(seatings)) == 6
    assert {s[0] for s in seatings} == {"a", "b", "c"} and all(s[0] != s[1] for s in seatings)
    three = pairings(["a", "b"], ["x", "y", "z"])  # A plays one role, B the other two, and the reverse
    assert sorted(three) == sorted([("a", "b", "b"), ("b", "a", "b"), ("b", "b", "a"), ("b", "a", "a"), ("a", "b", "a"), ("a", "a", "b")])


def test_the_model_that_wins_in_both_roles_rates_highest():
    """A strong model wins every game it plays, as spy or citizen: strong > middle > weak."""
    strength = {"weak": 0, "middle": 1, "strong": 2}
    won = lambda seating: ROLES[max(range(2), key=lambda i: strength[seating[i]])]  # noqa: E731
    ratings = rate(results_of(won, list(strength)), ROLES, list(strength))["players"]
    assert ratings["strong"]["mu"] > ratings["middle"]["mu"] > ratings["weak"]["mu"]
    assert all(r["sigma"] < 8.33 for r in ratings.values())  # every model learnt something about itself


def test_a_role_that_always_wins_moves_its_side_not_the_models():
    """When the citizens win every game whoever plays, the role sides absorb it: the models rate alike."""
    result = rate(results_of(lambda seating: "citizen", ["a", "b", "c"]), ROLES, ["a", "b", "c"])
    mus = [r["mu"] for r in result["players"].values()]
    assert max(mus) - min(mus) < 0.5, result["players"]
    assert result["roles"]["citizen"]["mu"] - result["roles"]["spy"]["mu"] > 5, result["roles"]


def test_results_by_role_keep_apart_what_a_rating_mixes():
    """A model that wins every game as the spy and loses every game as a citizen rates like one
    that does the reverse; its results by role say which it is, against everyone and the base."""
    spy_only = lambda seating: "spy" if seating[0] == "spy-ace" else "citizen" if seating[1] == "judge" else "spy"  # noqa: E731
    players = ["base", "spy-ace", "judge"]
    result = by_role(results_of(spy_only, players, games=4), ROLES, players, "base")
    ace = result["spy-ace"]
    assert ace["spy"]["all"] == {"mean": 1.0, "se": 0.0, "games": 8} and ace["spy"]["vs_base"]["games"] == 4
    assert ace["citizen"]["vs_base"]["mean"] == 0.0  # as a citizen against the base spy it loses
    judge = result["judge"]["citizen"]  # catches the base spy, never the ace
    assert judge["vs_base"]["mean"] == 1.0 and judge["all"]["mean"] == 0.5
    assert result["base"]["spy"]["vs_base"] is None and result["base"]["spy"]["all"]["games"] == 8
    mixed = [(("base", "judge"), [{"spy": float(g % 2), "citizen": 1.0 - g % 2} for g in range(4)])]
    assert by_role(mixed, ROLES, ["base", "judge"], "base")["base"]["spy"]["all"] == {"mean": 0.5, "se": pytest.approx(0.2887, abs=1e-4), "games": 4}


def test_ratings_are_reproducible():
    won = lambda seating: ROLES[seating.index("b")] if "b" in seating else "spy"  # noqa: E731
    first = rate(results_of(won, ["a", "b", "c"]), ROLES, ["a", "b", "c"])
    assert rate(results_of(won, ["a", "b", "c"]), ROLES, ["a", "b", "c"]) == first


class Outcomes:
    """A plugin whose ``game_outcome`` returns a fixed answer."""

    def __init__(self, answer):
        self.answer = answer

    @hookspecs.hookimpl
    def game_outcome(self, episode):
        return self.answer


class Bare:
    """A game that declares no ``outcome``: the hooks answer."""

    name = "spy"


def plugin_manager(*answers):
    pm = pluggy.PluginManager("vzframe")
    pm.add_hookspecs(hookspecs)
    for i, answer in enumerate(answers):
        pm.register(Outcomes(answer), name=f"p{i}")
    return pm


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ((), "needs an `outcome` staticmethod"),
        (({"spy": 1.0, "citizen": 0.0}, {"spy": 0.0, "citizen": 1.0}), "2 plugins report"),
        (({"spy": 1.0},), "must map each role"),
        (({"spy": 2.0, "citizen": 0.0},), "must map each role"),
        (({"spy": "1", "citizen": 0.0},), "must map each role"),
        (({"spy": True, "citizen": 0.0},), "must map each role"),
        (([1.0, 0.0],), "must map each role"),
    ],
)
def test_a_game_without_a_clear_outcome_is_refused_with_what_to_do(answers, message):
    with pytest.raises(ConfigError, match=message):
        outcome(Bare, plugin_manager(*answers), Episode("spy", 0, (), ()), ROLES)


def test_an_outcome_keeps_the_roles_that_play():
    pm = plugin_manager({"spy": 0.0, "citizen": 1.0, "judge": 1.0})
    assert outcome(Bare, pm, Episode("spy", 0, (), ()), ROLES) == {"spy": 0.0, "citizen": 1.0}


@pytest.mark.slow
def test_league_of_a_run_rates_its_checkpoints_and_the_report_shows_it(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vzframe", "run", "games.spy", "schedulers.hysteresis", "steps=2", "games_per_step=2",
           "checkpoint_every=1", "rollout.max_new_tokens=8", "train.lr=1e-2", f"output_dir={out}", "--quiet"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = league(out, games=3, seed=7)
    assert [p["name"] for p in report["players"]] == ["step 0", "step 1", "step 2"]
    assert report["roles"] == ["spy", "citizen"] and len(report["pairings"]) == 6
    for p in report["pairings"]:
        assert p["mean"]["spy"] + p["mean"]["citizen"] == pytest.approx(1.0)  # zero-sum: one side wins each game
    assert json.loads((out / "league.json").read_text()) == report
    assert (out / "league.svg").read_text().startswith("<svg")
    assert league(out, games=3, seed=7) == report  # same games, same seeds: the same ratings

    from plugins.report.report import build_report
    from plugins.report.runs import load_run

    html = build_report(load_run(out), max_games=0)
    assert "<h2>League</h2>" in html and "step 2" in html and "as spy vs base" in html
    assert set(report["by_role"]) == {"step 0", "step 1", "step 2"} and report["by_role"]["step 1"]["spy"]["vs_base"]["games"] == 3
    tampered = {**report, "players": [{**report["players"][0], "name": "<script>alert(1)</script>"}, *report["players"][1:]]}
    (out / "league.json").write_text(json.dumps(tampered))
    html = build_report(load_run(out), max_games=0)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_league_needs_a_run_with_checkpoints(tmp_path):
    with pytest.raises(ConfigError, match="no config.yaml"):
        league(tmp_path)
    (tmp_path / "config.yaml").write_text("steps: 1\n")
    with pytest.raises(ConfigError, match="no intact checkpoint"):
        league(tmp_path)
