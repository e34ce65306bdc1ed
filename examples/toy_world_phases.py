"""What each phase of an Iterative-SPO spy-game run changed (docs/toy-world.md): one row per
stretch of steps spent in one phase, from the run's metrics.jsonl and episodes.jsonl.

    python examples/toy_world_phases.py runs/toy-main
    python examples/toy_world_phases.py runs/toy-main --eval   # the held-out games of `vzframe eval`, per matchup

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


def _mean_se(values: list[float]) -> str:
    if not values:
        return "-"
    mean = sum(values) / len(values)
    se = (sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5 if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {se:.3f}"


def eval_split(run: Path) -> None:
    """One row per matchup of the newest ``eval-step-N.episodes.jsonl``: the games split by what
    the spy did, and in bluff games the citizens' vote accuracy and N/A rate (each game's share,
    ± the standard error over games) and how often the spy was caught."""
    files = sorted(run.glob("eval-step-*.episodes.jsonl"), key=lambda p: int(p.name.split("-")[2].split(".")[0]))
    if not files:
        raise SystemExit(f"{run} has no eval-step-N.episodes.jsonl: run `vzframe eval {run}` first.")
    matchups: dict[str, list[dict]] = {}
    with files[-1].open() as f:
        for line in f:
            e = json.loads(line)
            matchups.setdefault(e["matchup"], []).append(e)
    print(f"{files[-1].name}: votes split by what the spy did (± standard error over games)\n")
    print("| matchup | games | spy admits blank | accuracy, spy admits | accuracy, spy bluffs | N/A, spy bluffs | spy caught, spy bluffs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, eps in matchups.items():
        split: dict[bool, list[dict]] = {True: [], False: []}
        for e in eps:
            split[admits_blank(e)].append(e)

        def share(e: dict, test) -> float | None:
            votes = [t for t in e["turns"] if t["stage"] == "decision"]
            return sum(test(t, e) for t in votes) / len(votes) if votes else None

        right = lambda t, e: t["action"]["kind"] == "vote" and t["action"]["value"] == e["info"]["spy"]  # noqa: E731
        na = lambda t, e: t["action"]["kind"] == "na"  # noqa: E731
        acc = {k: [v for e in g if (v := share(e, right)) is not None] for k, g in split.items()}
        abstain = [v for e in split[False] if (v := share(e, na)) is not None]
        caught = [float(_caught(e)) for e in split[False]]
        print(f"| {name} | {len(eps)} | {len(split[True]) / len(eps):.2f} | {_mean_se(acc[True])} | {_mean_se(acc[False])} "
              f"| {_mean_se(abstain)} | {_mean_se(caught)} |")


def _caught(episode: dict) -> bool:
    """Whether the spy got the most votes of a logged game, as the spy game counts them (``most_voted``)."""
    from collections import Counter

    from games.clue_vote import most_voted

    votes = [t["action"]["value"] for t in episode["turns"] if t["stage"] == "decision" and t["action"]["kind"] == "vote"]
    return most_voted(Counter(votes), episode["info"]["spy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--eval", action="store_true", help="split the newest `vzframe eval` games instead of the training games")
    args = parser.parse_args()
    if args.eval:
        return eval_split(args.run)
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
