"""How Iterative-SPO's switch threshold tau_acc_up shapes the toy-world run (docs/toy-world.md):
the main config (examples/toy-world.yaml) once per value, then `vzframe eval` of each on the same
held-out games.

    python examples/toy_world_sensitivity.py --out runs/toy-tau [--values 0.3 0.35 0.45 0.9] [--jobs 2]

Each run is the config with `scheduler.tau_acc_up` set (the rest of its `scheduler:` section
kept), written beside the run as `tau-V.yaml`; finished runs are kept and cut ones resumed, as
in examples/toy_world_ablation.py. Prints and writes `sensitivity.md`: per value, the phase
switches, the steps trained in the clue phase, and the held-out changes from base (± paired
standard error: the same games and sampling seeds for base and trained).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_world_ablation import ROOT, switches, train_and_eval  # noqa: E402


def one_run(out: Path, value: float, args: argparse.Namespace, base: dict, threads: int) -> dict:
    run = out / f"tau-{value:g}"
    config = {**base, "scheduler": {**base.get("scheduler", {}), "tau_acc_up": value}, "output_dir": str(run)}
    result, rows = train_and_eval(run, config, out / f"tau-{value:g}.yaml", args.eval_games, threads, args.jobs > 1)
    m, se = result["matchups"], result["change_se"]
    return {
        "tau_acc_up": value,
        "switches": switches(rows),
        "clue_steps": sum(r["phase"] == "clue" for r in rows),
        "max_acc_ema": max(r["acc_ema"] for r in rows),
        "citizen_acc": (m["trained citizen"]["acc"] - m["base"]["acc"], se["trained citizen"]["acc"]),
        "citizen_na": (m["trained citizen"]["na"] - m["base"]["na"], se["trained citizen"]["na"]),
        "spy_survival": (m["base"]["spy_caught"] - m["trained spy"]["spy_caught"], se["trained spy"]["spy_caught"]),
        "base": {"acc": m["base"]["acc"], "na": m["base"]["na"], "spy_survival": 1 - m["base"]["spy_caught"]},
    }


def table(results: list[dict]) -> str:
    base = results[0]["base"]
    lines = [
        f"Held-out changes from base (base: vote accuracy {base['acc']:.3f}, N/A {base['na']:.3f}, "
        f"spy survival {base['spy_survival']:.3f}), ± paired standard error.",
        "",
        "| tau_acc_up | phase switches | clue steps | highest acc EMA | citizens' accuracy | citizens' N/A | spy survival |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = " | ".join(f"{r[k][0]:+.3f} ± {r[k][1]:.3f}" for k in ("citizen_acc", "citizen_na", "spy_survival"))
        lines.append(f"| {r['tau_acc_up']:g} | {r['switches']} | {r['clue_steps']} | {r['max_acc_ema']:.3f} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/toy-tau"))
    parser.add_argument("--config", type=Path, default=ROOT / "examples/toy-world.yaml")
    parser.add_argument("--values", type=float, nargs="+", default=[0.3, 0.35, 0.45, 0.9])
    parser.add_argument("--eval-games", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once; the CPU threads are split between them")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(args.config.read_text())
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda v: one_run(args.out, v, args, base, threads), args.values))
    (args.out / "sensitivity.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (args.out / "sensitivity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
