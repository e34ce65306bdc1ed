"""The toy world's ablation: Iterative-SPO (hysteresis) against clue-only and decision-only
self-play, several seeds each, on the shipped toy base (docs/toy-world.md).

    python examples/toy_world_ablation.py --out runs/toy-ablation [--steps 80] [--seeds 0 1 2] [--jobs 2]

Every run is `vzframe run --config examples/toy-world.yaml plugins=[games.spy,schedulers.X]
seed=S steps=N`, then `vzframe eval` on held-out games against frozen base opponents. A run that
already finished is kept, one that was cut off is resumed, so the script can be restarted at
any point. At the end: `vzframe compare` of every run (HTML, and SVG charts with --svg) and a
table of held-out citizen accuracy and spy survival per scheduler, mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEDULERS = ("hysteresis", "clue_only", "decision_only")


def vz(*args: str, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "vzframe", *args]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-4000:]}")


def one_run(out: Path, scheduler: str, seed: int, args: argparse.Namespace, threads: int) -> dict:
    run = out / f"{scheduler}-seed{seed}"
    metrics = run / "metrics.jsonl"
    done = metrics.exists() and sum(1 for _ in metrics.open()) >= args.steps
    if not done and (run / "config.yaml").exists():
        vz("resume", str(run), f"steps={args.steps}", "--quiet", threads=threads)
    elif not done:
        # plugins=[...] replaces the YAML's list (positional names would add a second scheduler)
        vz("run", "--config", str(ROOT / "examples/toy-world.yaml"), f"plugins=[games.spy,schedulers.{scheduler}]",
           f"seed={seed}", f"steps={args.steps}", f"output_dir={run}", "--quiet", threads=threads)  # fmt: skip
    report = run / f"eval-step-{args.steps}.json"
    if not report.exists():
        vz("eval", str(run), "--games", str(args.eval_games), threads=threads)
    result = json.loads(report.read_text())
    rows = [json.loads(line) for line in metrics.open()]
    last = rows[-10:]
    return {
        "scheduler": scheduler,
        "seed": seed,
        "citizen_acc": result["matchups"]["trained citizen"]["acc"],
        "citizen_acc_base": result["matchups"]["base"]["acc"],
        "spy_survival": 1 - result["matchups"]["trained spy"]["spy_caught"],
        "spy_survival_base": 1 - result["matchups"]["base"]["spy_caught"],
        "train_acc_last10": statistics.fmean(r["acc"] for r in last),
        "switches": sum(a["phase"] != b["phase"] for a, b in zip(rows, rows[1:])),
    }


def summary(results: list[dict]) -> str:
    def cell(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.fmean(values):.3f} ± {spread:.3f}"

    lines = [
        "| scheduler | held-out citizen acc (base opponents) | held-out spy survival (base opponents) | training acc, last 10 steps | phase switches |",
        "|---|---|---|---|---|",
    ]
    base = [r["citizen_acc_base"] for r in results]
    base_surv = [r["spy_survival_base"] for r in results]
    lines.append(f"| base model | {cell(base)} | {cell(base_surv)} | | |")
    for name in SCHEDULERS:
        rows = [r for r in results if r["scheduler"] == name]
        if rows:
            lines.append(
                f"| {name} | {cell([r['citizen_acc'] for r in rows])} | {cell([r['spy_survival'] for r in rows])} "
                f"| {cell([r['train_acc_last10'] for r in rows])} | {cell([r['switches'] for r in rows])} |"
            )
    return "\n".join(lines) + "\n\nmean ± standard deviation over seeds " + ", ".join(str(s) for s in sorted({r["seed"] for r in results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/toy-ablation"))
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS), choices=SCHEDULERS)
    parser.add_argument("--eval-games", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once; the CPU threads are split between them")
    parser.add_argument("--svg", type=Path, help="also write the comparison's charts as SVG files here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    todo = [(s, seed) for s in args.schedulers for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: one_run(args.out, *job, args, threads), todo))
    (args.out / "ablation.json").write_text(json.dumps(results, indent=1))
    compare = ["compare", *(str(args.out / f"{s}-seed{seed}") for s, seed in todo), "--out", str(args.out / "compare.html")]
    vz(*compare, *(["--svg", str(args.svg)] if args.svg else []), threads=os.cpu_count() or 1)
    table = summary(results)
    (args.out / "ablation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
