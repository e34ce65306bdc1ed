"""examples/toy_world_phases.py on small run folders written here, in the formats training
(``vzframe.rundir.write_step``) and ``vzframe eval`` write: the phase-stretch table and the
``--eval`` split by whether the spy admitted its blank picture or bluffed, figures computed by
hand from a handful of games (the spy is seat 4, citizens 1-3 vote)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("toy_world_phases", ROOT / "examples/toy_world_phases.py")
phases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(phases)

SPY = 4
REWARD = {"vote": -1.0, "na": -0.5, "invalid": -1.0}  # a right vote: 1.0
CITIZEN_CLUE = "My picture is not blank."  # before each spy clue: "blank" from a citizen is no admission


def game(spy_clues: list[str], votes: list, **head) -> dict:
    """One logged 4-player game: the spy's clues (with a citizen's before each), then the
    citizens' decisions, each a seat voted for, "na" or "invalid"."""
    turns = []
    for clue in spy_clues:
        turns.append({"player": 1, "role": "citizen", "stage": "clue", "action": {"kind": "clue", "value": CITIZEN_CLUE}})
        turns.append({"player": SPY, "role": "spy", "stage": "clue", "action": {"kind": "clue", "value": clue}})
    for player, v in zip((1, 2, 3), votes):
        kind = "vote" if isinstance(v, int) else v
        reward = 1.0 if v == SPY else REWARD[kind]
        action = {"kind": kind, "value": v if kind == "vote" else None, "reason": ""}
        turns.append({"player": player, "role": "citizen", "stage": "decision", "action": action, "reward": reward})
    turns = [{"index": i, "images": [], "completion": "", "advantage": None, "trained": False, **t} for i, t in enumerate(turns)]
    info = {"spy": SPY, "num_citizens": 3, "clue_rounds": 2}
    return {**head, "game": "spy", "seed": 0, "roles": ["citizen"] * 3 + ["spy"], "turns": turns, "info": info}


ADMIT = ["There is a red cube.", "My picture is blank."]  # one admission in any clue is enough
BLUFF = ["There is a red cube.", "There is a blue sphere."]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def table(capsys, *argv: str) -> list[str]:
    old, sys.argv = sys.argv, ["toy_world_phases.py", *argv]
    try:
        phases.main()
    finally:
        sys.argv = old
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]


def test_phase_stretches_split_the_training_votes_by_what_the_spy_did(tmp_path, capsys):
    """Two phase changes give three stretches; per stretch: the share of games whose spy
    admits, the right votes (reward 1) and N/A in admit and bluff games and overall, and the
    acc_ema of the stretch's last step."""
    steps = [("decision", 0.5), ("decision", 0.55), ("clue", 0.6), ("clue", 0.65), ("decision", 0.7)]
    write_jsonl(tmp_path / "metrics.jsonl", [{"step": s, "phase": p, "acc": 0.0, "acc_ema": a} for s, (p, a) in enumerate(steps)])
    games = [
        (0, ADMIT, [SPY, SPY, "na"]),
        (1, BLUFF, [2, "na", "na"]),
        (2, BLUFF, [SPY, SPY, SPY]),
        (3, BLUFF, [SPY, "invalid", "na"]),  # invalid: neither right nor N/A
        (4, ADMIT, [2, "na", SPY]),
    ]
    write_jsonl(tmp_path / "episodes.jsonl", [game(c, v, step=s, phase=steps[s][0], rank=0) for s, c, v in games])
    assert table(capsys, str(tmp_path))[1:] == [
        "| 0-1 | decision | 0.50 | 0.67 | 0.00 | 0.67 | 0.33 | 0.50 | 0.550 |",
        "| 2-3 | clue | 0.00 | - | 0.67 | 0.17 | 0.67 | 0.17 | 0.650 |",
        "| 4-4 | decision | 1.00 | 0.33 | - | - | 0.33 | 0.33 | 0.700 |",
    ]


def test_eval_split_per_matchup_counts_a_catch_as_the_game_does(tmp_path, capsys):
    """The newest eval file (step 100, not 20: numeric order) split per matchup. Each game's
    share of right votes and of N/A, ± the standard error over games; the spy is caught in a
    bluff game only with strictly more votes than anyone (games.clue_vote.most_voted): a 1-1
    tie is no catch, nor are N/A and invalid votes, and a citizen saying "blank" is no admission."""
    base = [
        game(ADMIT, [SPY, SPY, SPY]),
        game(BLUFF, [SPY, SPY, "na"]),  # right 2/3, N/A 1/3, caught
        game(BLUFF, [SPY, 2, "na"]),  # right 1/3, N/A 1/3, a tie: not caught
        game(BLUFF, ["na", "na", "invalid"]),  # right 0, N/A 2/3, not caught
    ]
    trained_spy = [
        game(ADMIT, [SPY, "na", 2]),
        game(["My picture is blank.", "My picture is blank."], [SPY, SPY, "na"]),
        game(BLUFF, [SPY, SPY, SPY]),  # caught
        game(BLUFF, [2, 2, SPY]),  # seat 2 got more votes: not caught
    ]
    rows = [{"matchup": "base", **g} for g in base] + [{"matchup": "trained spy", **g} for g in trained_spy]
    write_jsonl(tmp_path / "eval-step-100.episodes.jsonl", rows)
    write_jsonl(tmp_path / "eval-step-20.episodes.jsonl", [{"matchup": "stale", **game(BLUFF, [SPY, SPY, SPY])}])
    assert table(capsys, str(tmp_path), "--eval")[1:] == [
        # bluff games: right (2/3, 1/3, 0), N/A (1/3, 1/3, 2/3), caught (1, 0, 0)
        "| base | 4 | 0.25 | 1.000 ± 0.000 | 0.333 ± 0.192 | 0.444 ± 0.111 | 0.333 ± 0.333 |",
        # admit games: right (1/3, 2/3); bluff games: right (1, 1/3), N/A (0, 0), caught (1, 0)
        "| trained spy | 4 | 0.50 | 0.500 ± 0.167 | 0.667 ± 0.333 | 0.000 ± 0.000 | 0.500 ± 0.500 |",
    ]


def test_eval_split_without_an_eval_file_says_what_to_run(tmp_path):
    """A run folder with no eval-step-N.episodes.jsonl stops with the command that writes one."""
    with pytest.raises(SystemExit, match="vzframe eval"):
        phases.eval_split(tmp_path)
