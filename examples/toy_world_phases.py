"""What each phase of an Iterative-SPO spy-game run changed (docs/toy-world.md): one row per
stretch of steps spent in one phase, from the run's metrics.jsonl and episodes.jsonl.

    python examples/toy_world_phases.py runs/toy-main

The columns split the votes by what the spy did: a spy that says its picture is blank in any
clue can be caught by reading the clues; one that bluffs (names an object) only by checking
its clue against the picture. So the clue phase shows in how often the spy admits the blank
picture, the decision phase in what the citizens do in each case.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def admits_blank(episode: dict) -> bool:
    return any(
        t["role"] == "spy" and t["stage"] == "clue" and "blank" in str(t["action"].get("value", "")).lower()
        for t in episode["turns"]
    )


def stretches(rows: list[dict]) -> list[tuple[str, int, int]]:
    """(phase, first step, last step) of each run of steps in one phase."""
    out: list[tuple[str, int, int]] = []
    for r in rows:
        if out and out[-1][0] == r["phase"]:
            out[-1] = (r["phase"], out[-1][1], r["step"])
        else:
            out.append((r["phase"], r["step"], r["step"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.run / "metrics.jsonl").open()]
    by_step = {r["step"]: r for r in rows}
    games: dict[int, list[dict]] = {}
    with (args.run / "episodes.jsonl").open() as f:
        for line in f:
            e = json.loads(line)
            games.setdefault(e["step"], []).append(e)
    print(
        "| steps | phase | spy admits blank | accuracy, spy admits | accuracy, spy bluffs | N/A, spy bluffs | accuracy | N/A | acc_ema at end |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for phase, first, last in stretches(rows):
        eps = [e for s in range(first, last + 1) for e in games.get(s, [])]
        votes = {True: [], False: []}
        for e in eps:
            votes[admits_blank(e)] += [t for t in e["turns"] if t["stage"] == "decision"]

        def rate(ts: list[dict], test) -> str:
            return f"{sum(map(test, ts)) / len(ts):.2f}" if ts else "-"

        right, na = (lambda t: t["reward"] == 1), (lambda t: t["action"]["kind"] == "na")
        all_votes = votes[True] + votes[False]
        print(
            f"| {first}-{last} | {phase} | {sum(map(admits_blank, eps)) / max(1, len(eps)):.2f} | {rate(votes[True], right)} "
            f"| {rate(votes[False], right)} | {rate(votes[False], na)} | {rate(all_votes, right)} | {rate(all_votes, na)} "
            f"| {by_step[last]['acc_ema']:.3f} |"
        )


if __name__ == "__main__":
    main()
