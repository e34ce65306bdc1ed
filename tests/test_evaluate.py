"""``vzframe eval``: the trained model against frozen base-model opponents on fixed games."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from vzframe import __version__
from vzframe.config import ConfigError
from vzframe.evaluate import RoleRouter, evaluate
from vzframe.rollout import Generation
from vzframe.types import Observation

ROOT = Path(__file__).resolve().parents[1]


class Recording:
    """An engine that answers with its own name and records each call (routing logic only)."""

    per_request_seeds = True

    def __init__(self, name):
        self.name, self.calls, self.seeds = name, [], []

    def generate(self, observations, seeds=None):
        self.calls.append([o.player for o in observations])
        self.seeds.append(seeds)
        return [Generation(f"{self.name}:{o.player}", (1,), 1) for o in observations]


def test_role_router_sends_each_role_to_its_engine_in_one_call_and_keeps_order():
    base, trained = Recording("base"), Recording("trained")
    roles = ["citizen", "spy", "citizen", "judge", "spy"]
    observations = [Observation(i, role, "clue", ()) for i, role in enumerate(roles)]
    out = RoleRouter({"spy": trained}, base).generate(observations)
    assert [g.text for g in out] == ["base:0", "trained:1", "base:2", "base:3", "trained:4"]
    assert base.calls == [[0, 2, 3]] and trained.calls == [[1, 4]]


def test_role_router_hands_each_request_its_own_seed():
    """A seat's sampling seed goes with its request to whichever engine plays it."""
    base, trained = Recording("base"), Recording("trained")
    observations = [Observation(i, role, "clue", ()) for i, role in enumerate(["citizen", "spy", "citizen"])]
    router = RoleRouter({"spy": trained}, base)
    assert router.per_request_seeds
    router.generate(observations, seeds=[10, 11, 12])
    assert base.seeds == [[10, 12]] and trained.seeds == [[11]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    cmd = [sys.executable, "-m", "vzframe", "run", "games.spy", "schedulers.hysteresis", "steps=2", "games_per_step=2",
           "checkpoint_every=1", "rollout.max_new_tokens=8", "train.lr=1e-2", f"output_dir={out}", "--quiet"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def unchanged_run(tmp_path_factory):
    """A run whose checkpoint is its base model, as far as float32 can tell (lr 1e-30)."""
    out = tmp_path_factory.mktemp("eval-self") / "run"
    cmd = [sys.executable, "-m", "vzframe", "run", "games.spy", "schedulers.hysteresis", "steps=1", "games_per_step=2",
           "checkpoint_every=1", "rollout.max_new_tokens=8", "train.lr=1e-30", f"output_dir={out}", "--quiet"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_a_run_evaluated_against_itself_scores_the_same_in_every_matchup(unchanged_run):
    """Common random numbers: every request is sampled from its own seed, whichever model plays
    the other seats, so an unchanged model plays exactly the base's games in every matchup."""
    report = evaluate(unchanged_run, games=8, seed=21)
    assert report["matchups"]["trained spy"] == report["matchups"]["base"] == report["matchups"]["trained citizen"]
    completions = defaultdict(list)
    for line in (unchanged_run / "eval-step-1.episodes.jsonl").read_text().splitlines():
        row = json.loads(line)
        completions[row["matchup"]].append([t["completion"] for t in row["turns"]])
    assert completions["base"] == completions["trained spy"] == completions["trained citizen"]
    assert all(se == 0.0 for m in ("trained spy", "trained citizen") for se in report["change_se"][m].values())
    assert len({c for game in completions["base"] for c in game}) > 8  # sampled, varied text, not one answer


def test_eval_plays_the_same_seeded_games_in_every_matchup(run):
    report = evaluate(run, games=3, seed=5)
    assert report["step"] == 2 and set(report["matchups"]) == {"base", "trained citizen", "trained spy"}
    assert json.loads((run / "eval-step-2.json").read_text()) == report
    games = defaultdict(list)
    for line in (run / "eval-step-2.episodes.jsonl").read_text().splitlines():
        row = json.loads(line)
        games[row["matchup"]].append((row["seed"], row["info"]["image"], row["info"]["spy"]))
    assert games["base"] == games["trained citizen"] == games["trained spy"] and len(games["base"]) == 3
    # held-out: not the run's pictures (the run's image source has the run's seed, 0)
    assert all(image.startswith("clevr_toy:5:") for _, image, _ in games["base"])
    for name, m in report["matchups"].items():
        assert 0 <= m["acc"] <= 1 and 0 <= m["spy_caught"] <= 1
        assert set(report["stderr"][name]) == set(m) and all(se >= 0 for se in report["stderr"][name].values())
    assert report["roles"] == ["spy", "citizen"]  # the game's role order; judges do not play by default
    assert report["metrics"]["spy_caught"] == {"label": "spy caught", "headline": True}
    # the spy game's figures, through its declared headline metrics: citizen accuracy, spy survival = 1 - spy caught
    citizens, spy = report["headline"]["vote accuracy, trained citizen"], report["headline"]["spy caught, trained spy"]
    assert citizens["trained"] == report["matchups"]["trained citizen"]["acc"] and citizens["base"] == report["matchups"]["base"]["acc"]
    assert spy["base"] == report["matchups"]["base"]["spy_caught"] and spy["trained_se"] == report["stderr"]["trained spy"]["spy_caught"]
    assert len(report["headline"]) == 3 * 2  # acc, na, spy_caught, each with each role trained
    # each change from base has a paired standard error (the same games in both matchups)
    assert set(report["change_se"]) == {"trained citizen", "trained spy"}
    for entry in report["headline"].values():
        assert entry["change_se"] == report["change_se"][f"trained {entry['role']}"][entry["metric"]] >= 0.0


def test_eval_is_reproducible(run):
    first = evaluate(run, games=2, seed=9, step=1)
    assert evaluate(run, games=2, seed=9, step=1)["matchups"] == first["matchups"]


def test_eval_needs_a_run_with_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no config.yaml"):
        evaluate(tmp_path)
    (tmp_path / "config.yaml").write_text("steps: 1\n")
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        evaluate(tmp_path)


def test_eval_command_prints_the_side_by_side_table(run, capsys):
    from vzframe.cli import main

    assert main(["eval", str(run), "--games", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "vote accuracy" in out and "spy caught" in out and "trained spy" in out and "trained citizen" in out and "±" in out
    assert "valid clues" not in out  # the table shows headline metrics; the JSON has every one
    assert json.loads((run / "eval-step-2.json").read_text())["seed"] == 3


def test_runs_that_share_a_base_share_its_matchup_through_the_cache(run, unchanged_run, tmp_path):
    """The base matchup does not depend on the trained model: a second run's evaluation reads it
    from the cache, and scores exactly as if it had played it."""
    cache = tmp_path / "base"
    evaluate(unchanged_run, games=3, seed=41, base_cache=cache)
    (entry,) = cache.glob("*.episodes.jsonl")
    stored = entry.read_text()

    def completions():
        played = defaultdict(list)
        for line in (run / "eval-step-2.episodes.jsonl").read_text().splitlines():
            row = json.loads(line)
            played[row["matchup"]].append([t["completion"] for t in row["turns"]])
        return played

    shared = evaluate(run, games=3, seed=41, base_cache=cache)
    shared_games = completions()
    assert list(cache.glob("*.episodes.jsonl")) == [entry] and entry.read_text() == stored
    alone = evaluate(run, games=3, seed=41)
    assert shared_games == completions()
    for part in ("matchups", "stderr", "change_se", "headline"):
        assert shared[part] == alone[part]
    first, *rest = stored.splitlines()  # the games are read from the entry, not played again
    game = json.loads(first)
    game["turns"][0]["completion"] = "written into the cache"
    entry.write_text("\n".join([json.dumps(game), *rest]) + "\n")
    evaluate(run, games=3, seed=41, base_cache=cache)
    assert completions()["base"][0][0] == "written into the cache"
    entry.write_text(stored.replace("\n", "\n{", 1))  # a damaged entry is read, named, and not trusted
    with pytest.raises(ConfigError, match="delete it and evaluate again"):
        evaluate(run, games=3, seed=41, base_cache=cache)
    evaluate(run, games=2, seed=41, base_cache=cache)  # other games: another entry
    assert len(list(cache.glob("*.episodes.jsonl"))) == 2


def test_the_base_matchup_key_holds_what_the_base_games_depend_on_and_nothing_else():
    from vzframe.config import load_config
    from vzframe.evaluate import base_matchup_key
    from vzframe.runtime import resolve, resolve_model

    def key(*overrides, scheduler="schedulers.hysteresis", games=4, seed=1):
        setup = resolve(load_config(None, list(overrides), ["games.spy", scheduler]))
        return base_matchup_key(setup, resolve_model(setup), games=games, seed=seed)

    first = key()
    # what only training depends on: the scheduler, the optimiser, the run's own seed and length
    assert key(scheduler="schedulers.clue_only") == first == key("train.lr=1e-3", "steps=7", "seed=5", "train.kl_coef=0.5")
    assert first["versions"] == {"games.spy": __version__, "plugins.clevr": __version__}  # the game's and the pictures' plugins
    for other in (key("rollout.temperature=0.5"), key("game.num_citizens=4"), key("images=shapes"), key(games=5), key(seed=2)):
        assert other != first


def test_jackknife_standard_error_of_a_rate_over_games_and_of_a_pooled_rate():
    from vzframe.evaluate import jackknife_se

    games = [1, 0, 0, 1, 1, 0, 1, 1]
    se = jackknife_se(lambda eps: {"rate": sum(eps) / len(eps)}, games)["rate"]
    p, n = 5 / 8, 8
    assert se == pytest.approx((p * (1 - p) / (n - 1)) ** 0.5)
    votes = [(2, 1), (3, 3), (1, 0)]  # (votes, right) per game: a rate over votes, not over games
    pooled = jackknife_se(lambda eps: {"acc": sum(r for _, r in eps) / sum(v for v, _ in eps)}, votes)["acc"]
    assert 0 < pooled < 1
    assert jackknife_se(lambda eps: {"x": 1.0}, [1]) == {}


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-odd") / "run"
    cmd = [sys.executable, "-m", "vzframe", "run", "games.odd_one_out", "schedulers.hysteresis", "steps=1", "games_per_step=1",
           "game.num_players=3", "game.clue_rounds=1", "checkpoint_every=1", "rollout.max_new_tokens=8", f"output_dir={out}", "--quiet"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_eval_of_another_game_names_its_roles_and_reports_its_headline_metrics(odd_run, capsys):
    from vzframe.cli import main

    assert main(["eval", str(odd_run), "--games", "2", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    report = json.loads((odd_run / "eval-step-1.json").read_text())
    assert report["game"] == "odd_one_out" and report["roles"] == ["odd", "common"]
    assert list(report["matchups"]) == ["base", "trained odd", "trained common"]
    assert {"odd_found", "odd_self_found", "acc"} <= set(report["matchups"]["trained odd"]) <= set(report["stderr"]["trained odd"])
    assert {"odd one found, trained odd", "odd one found, trained common", "vote accuracy, trained odd"} <= set(report["headline"])
    assert "odd one found" in out and "trained common" in out
    assert "citizen" not in out and "spy" not in out
