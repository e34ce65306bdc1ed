"""Rollout tokens/s on an idle machine and with one core taken by another process, under
torch's own thread defaults ("before": every core, OpenMP threads spin at barriers) and under
``vzframe run``'s thread policy ("after": ``vzframe.dist.thread_policy``, idle threads sleep).

    python bench/busy_core.py [--repeats 5] [--games 4] [--max-new-tokens 32]
        [--policies before after spin:20000 ...]

``after`` is ``vzframe run``'s policy, which lets idle threads sleep only when the host is
shared (a load average of at least 0.5 at start, or several ranks); ``passive`` always lets
them sleep (``OMP_WAIT_POLICY=PASSIVE``). A policy ``spin:N`` is torch's thread count with OpenMP's default wait policy and
``GOMP_SPINCOUNT=N`` (libgomp, which torch's Linux wheels use: an idle thread spins N
iterations, then sleeps), to find a spin that costs nothing idle and stays fast when a core
is taken.

Each measurement is a fresh process (OpenMP reads its wait policy once, at start) that loads
the tiny built-in model, warms up, then times ``play`` of G spy games with a fixed seed, so
every measurement generates the same tokens (checked). "Busy" starts one pure-Python busy loop
(a competing process) for the duration of the measurement. The four conditions run in
alternating rounds (idle/busy x before/after), ``--repeats`` rounds; min/median/max per
condition, and the after/before ratio per round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(games: int, max_new_tokens: int, policy: str) -> None:
    """One measurement in this process; prints ``{"tokens": N, "seconds": S, "threads": T}``."""
    import time

    from vzframe import dist

    if policy == "after":
        dist.configure_threads()
    elif policy == "passive":
        os.environ.update(OMP_NUM_THREADS=str(dist.thread_policy(dist.usable_cpus(), 1, {}).threads), OMP_WAIT_POLICY="PASSIVE")
    elif policy.startswith("spin:"):
        os.environ["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "unset") + f", GOMP_SPINCOUNT {os.environ.get('GOMP_SPINCOUNT', 'unset')}"  # what OpenMP reads when torch loads
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    sys.path.insert(0, str(ROOT / "bench"))
    from rollout import new_games

    from vzframe.config import RolloutConfig
    from vzframe.models.tiny import ensure_default_model
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.play import play

    path = str(ensure_default_model())
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    engine = HFEngine(model, processor, RolloutConfig(temperature=0.8, max_new_tokens=max_new_tokens))
    torch.manual_seed(1)
    play(new_games(1, seed=1), engine)  # warm-up
    torch.manual_seed(0)
    t0 = time.perf_counter()
    tokens = play(new_games(games), engine).tokens
    seconds = time.perf_counter() - t0
    print(json.dumps({"tokens": tokens, "seconds": seconds, "threads": torch.get_num_threads(),
                      "wait_policy": wait_policy}))  # fmt: skip


def measure(load: str, policy: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", policy, "--games", str(args.games), "--max-new-tokens", str(args.max_new_tokens)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout
    finally:
        if busy:
            busy.kill()
            busy.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--games", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--policies", nargs="+", default=["before", "after"], help="before, after, spin:N")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.games, args.max_new_tokens, args.child)

    print(f"load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}; {args.repeats} alternating rounds")
    conditions = [(load, policy) for load in ("idle", "busy") for policy in args.policies]
    rates: dict[tuple[str, str], list[float]] = {c: [] for c in conditions}
    tokens: set[int] = set()
    for r in range(args.repeats):
        for load, policy in conditions:
            m = measure(load, policy, args)
            tokens.add(m["tokens"])
            rates[(load, policy)].append(m["tokens"] / m["seconds"])
            print(f"round {r + 1} {load:>4} {policy:>6}: {rates[(load, policy)][-1]:8.1f} tokens/s "
                  f"({m['threads']} threads, OMP_WAIT_POLICY {m['wait_policy']})", flush=True)  # fmt: skip
    assert len(tokens) == 1, f"the measurements generated different token counts: {sorted(tokens)}"
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}; every measurement generated {tokens.pop()} tokens")
    print(f"| machine | threads | tokens/s min / median / max | / {args.policies[0]} per round: min / median / max |")
    print("|---|---|---:|---:|")
    names = {"before": "torch defaults (before)", "after": "vzframe policy (after)", "passive": "OMP_WAIT_POLICY=PASSIVE"}
    for load, policy in conditions:
        xs = rates[(load, policy)]
        ratio = ""
        if policy != args.policies[0]:
            per_round = [a / b for a, b in zip(xs, rates[(load, args.policies[0])])]
            ratio = f"{min(per_round):.2f} / {statistics.median(per_round):.2f} / {max(per_round):.2f}"
        print(f"| {load} | {names.get(policy, policy)} | {min(xs):.1f} / {statistics.median(xs):.1f} / {max(xs):.1f} | {ratio} |")


if __name__ == "__main__":
    main()
