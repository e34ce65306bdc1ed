"""The toy world's ablation: Iterative-SPO (hysteresis) against clue-only, decision-only and
fixed alternation, several seeds each, on the shipped toy base (docs/toy-world.md).

    python examples/toy_world_ablation.py --out runs/toy-ablation [--steps 40] [--seeds 0 1 2] [--jobs 2]
        [--probes clevr.*] [--probe-items 100] [--probe-score likelihood]

Every run is `vzframe run --config CONFIG` with `plugins: [games.spy, schedulers.X]`, `seed`,
`steps` and `output_dir` set, and the YAML's `scheduler:` section kept only for the
scheduler it was written for (hysteresis; the others have other keys). The config each run
used is written beside it (`RUN.yaml`). Then `vzframe eval` plays the same held-out games
(fixed eval seed) against frozen base opponents; the base-vs-base games, the same for every
run, are played once and kept in OUT/base-eval (`vzframe eval --base-cache`). Then `vzframe
probe` scores the base and the final checkpoint on the probes (the paper's measure: transfer to
questions never trained on; the same held-out items for every run; `--probes none` skips it).
A finished run is kept, a cut one resumed, so the script can be restarted at any point.

At the end: `vzframe compare` of every run (HTML, and SVG charts with --svg), `ablation.json`
(every run's figures) and `ablation.md`: per scheduler the mean and 95% confidence interval
over seeds of each held-out change from base, then for every pair of schedulers the paired
difference (same seed, same eval games), its 95% interval, and, where the interval holds 0,
the number of seeds that would resolve it at the measured spread (80% power, 5% level); the
same for each probe's change from base (keys ``probe:NAME``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEDULERS = ("hysteresis", "clue_only", "decision_only", "alternate")
TUNED_FOR = "hysteresis"
"""The scheduler whose keys the config's `scheduler:` section holds."""
METRICS = {
    "citizen_acc": "held-out vote accuracy, trained citizens vs the base spy",
    "spy_survival": "held-out spy survival, the trained spy vs base citizens",
}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
"""Student's t, two-sided 95%, by degrees of freedom (``t_quantile`` beyond)."""
Z975, Z80 = 1.96, 0.8416
"""Normal quantiles: two-sided 5% level, 80% power."""


def vz(*args: str, threads: int, shared: bool) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if shared:  # jobs share the cores: an idle OpenMP thread must sleep, not spin (bench/RESULTS.md)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, "-m", "vzframe", *args]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-4000:]}")


def run_config(base: dict, scheduler: str, seed: int, steps: int, run: Path) -> dict:
    config = {k: v for k, v in base.items() if k != "scheduler" or scheduler == TUNED_FOR}
    game = next((p for p in base.get("plugins", []) if p.startswith("games.")), "games.spy")
    return {**config, "plugins": [game, f"schedulers.{scheduler}"], "seed": seed, "steps": steps, "output_dir": str(run)}


def train_and_eval(
    run: Path, config: dict, config_path: Path, eval_games: int, threads: int, shared: bool
) -> tuple[dict, list[dict]]:
    """Train ``config`` into ``run`` unless it finished: resume it if it was cut, else write
    ``config`` to ``config_path`` and start it. Then ``vzframe eval`` it once. Returns the eval
    report and the run's metrics rows."""
    steps = int(config["steps"])
    metrics = run / "metrics.jsonl"
    done = metrics.exists() and sum(1 for _ in metrics.open()) >= steps
    if not done and (run / "config.yaml").exists():
        vz("resume", str(run), f"steps={steps}", "--quiet", threads=threads, shared=shared)
    elif not done:
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        vz("run", "--config", str(config_path), "--quiet", threads=threads, shared=shared)
    report = run / f"eval-step-{steps}.json"
    if not report.exists():  # every run starts from the same base: its matchup is played once, in the cache
        cache = run.parent / "base-eval"
        vz("eval", str(run), "--games", str(eval_games), "--base-cache", str(cache), threads=threads, shared=shared)
    return json.loads(report.read_text()), [json.loads(line) for line in metrics.open()]


def probe_changes(run: Path, steps: int, args: argparse.Namespace, threads: int, shared: bool) -> dict:
    """``vzframe probe`` of the run's final checkpoint (once: ``probe-step-N.json`` is kept) as
    ``probe:NAME`` (trained accuracy), ``probe:NAME_base`` and ``probe:NAME_change_se``, and
    with likelihood scoring the same for ``probe:NAME p(right)``."""
    if args.probes == ["none"]:
        return {}
    report = run / f"probe-step-{steps}.json"
    if not report.exists():
        vz("probe", str(run), "--step", str(steps), "--probes", *args.probes, "--items", str(args.probe_items),
           "--score", args.probe_score, "--quiet", threads=threads, shared=shared)  # fmt: skip
    out = {}
    for name, entry in json.loads(report.read_text())["probes"].items():
        out[f"probe:{name}"] = entry["trained"]["accuracy"]
        out[f"probe:{name}_base"] = entry["base"]["accuracy"]
        out[f"probe:{name}_change_se"] = entry["change_se"]
        if "p_right" in entry["trained"]:  # likelihood scoring: the probability on the right choices, finer
            out[f"probe:{name} p(right)"] = entry["trained"]["p_right"]
            out[f"probe:{name} p(right)_base"] = entry["base"]["p_right"]
            out[f"probe:{name} p(right)_change_se"] = entry["change_p_right_se"]
    return out


def switches(rows: list[dict]) -> int:
    """Phase switches in a run's metrics rows."""
    return sum(a["phase"] != b["phase"] for a, b in zip(rows, rows[1:]))


def one_run(out: Path, scheduler: str, seed: int, args: argparse.Namespace, base: dict, threads: int) -> dict:
    run = out / f"{scheduler}-seed{seed}"
    config = run_config(base, scheduler, seed, args.steps, run)
    result, rows = train_and_eval(run, config, out / f"{scheduler}-seed{seed}.yaml", args.eval_games, threads, args.jobs > 1)
    m, se = result["matchups"], result["change_se"]
    return {
        "scheduler": scheduler,
        "seed": seed,
        "citizen_acc": m["trained citizen"]["acc"],
        "citizen_acc_base": m["base"]["acc"],
        "citizen_acc_change_se": se["trained citizen"]["acc"],
        "spy_survival": 1 - m["trained spy"]["spy_caught"],
        "spy_survival_base": 1 - m["base"]["spy_caught"],
        "spy_survival_change_se": se["trained spy"]["spy_caught"],
        "na": m["trained citizen"]["na"],
        "train_acc_last10": statistics.fmean(r["acc"] for r in rows[-10:]),
        "clue_steps": sum(r["phase"] == "clue" for r in rows),
        "switches": switches(rows),
        **probe_changes(run, args.steps, args, threads, args.jobs > 1),
    }


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its two-sided 95% t interval (nan for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, t_quantile(len(values) - 1, Z975) * statistics.stdev(values) / math.sqrt(len(values))


def t_quantile(df: int, z: float) -> float:
    """Student's t quantile with ``df`` degrees of freedom for the normal quantile ``z``
    (Cornish-Fisher to 1/df^2: within 0.005 of the table from 3 degrees of freedom on); the
    table for the two-sided 95% one below that."""
    if z == Z975 and df in T975:
        return T975[df]
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def seeds_needed(diffs: list[float], most: int = 10_000) -> int | None:
    """Seeds for a paired difference of this mean and spread to be found at the 5% level with
    80% power: the smallest n with (t_.975 + t_.80, n - 1 degrees of freedom) * sd / sqrt(n)
    <= |mean| (the normal formula, 2.8^2 sd^2 / mean^2, promises too few at a few seeds).
    None when the mean is 0 or more than ``most`` would be needed."""
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if mean == 0:
        return None
    for n in range(max(len(diffs), 2), most + 1):
        if (t_quantile(n - 1, Z975) + t_quantile(n - 1, Z80)) * sd / math.sqrt(n) <= abs(mean):
            return n
    return None


def summary(results: list[dict]) -> str:
    def cell(values: list[float]) -> str:
        mean, half = interval(values)
        return f"{mean:+.3f}" if math.isnan(half) else f"{mean:+.3f} ± {half:.3f}"

    seeds = sorted({r["seed"] for r in results})
    present = [s for s in SCHEDULERS if any(r["scheduler"] == s for r in results)]
    base = {k: statistics.fmean(r[f"{k}_base"] for r in results) for k in METRICS}
    lines = [
        f"Held-out changes from the base model (base: citizen accuracy {base['citizen_acc']:.3f}, "
        f"spy survival {base['spy_survival']:.3f}); mean ± 95% interval over seeds {', '.join(map(str, seeds))}.",
        "",
        "| scheduler | citizen accuracy change | spy survival change | citizens' N/A | training acc, last 10 steps | clue steps | phase switches |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    by = {s: {r["seed"]: r for r in results if r["scheduler"] == s} for s in present}
    for s in present:
        rows = list(by[s].values())
        lines.append(
            f"| {s} | {cell([r['citizen_acc'] - r['citizen_acc_base'] for r in rows])} "
            f"| {cell([r['spy_survival'] - r['spy_survival_base'] for r in rows])} "
            f"| {statistics.fmean(r['na'] for r in rows):.3f} | {statistics.fmean(r['train_acc_last10'] for r in rows):.3f} "
            f"| {statistics.fmean(r['clue_steps'] for r in rows):.1f} | {statistics.fmean(r['switches'] for r in rows):.1f} |"
        )
    probes = sorted({k.removesuffix("_base") for r in results for k in r if k.startswith("probe:") and k.endswith("_base")})
    if probes:
        names = [p.removeprefix("probe:") for p in probes]
        lines += ["", "Probe changes from the base (transfer: questions never trained on; the same held-out items "
                  "for every run); mean ± 95% interval over seeds; base accuracy in the header.", ""]  # fmt: skip
        lines.append("| scheduler | " + " | ".join(
            f"{n} (base {statistics.fmean(r[f'probe:{n}_base'] for r in results):.3f})" for n in names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for s in present:
            rows = list(by[s].values())
            lines.append(f"| {s} | " + " | ".join(cell([r[p] - r[f"{p}_base"] for r in rows]) for p in probes) + " |")
    lines += ["", "Paired differences (row scheduler minus column scheduler, the same seeds and eval games):", ""]
    lines += ["| pair | metric | difference | resolved | seeds to resolve |", "|---|---|---:|---|---:|"]
    for a, b in itertools.combinations(present, 2):
        common = sorted(set(by[a]) & set(by[b]))
        for key in [*METRICS, *probes]:
            diffs = [by[a][s][key] - by[b][s][key] for s in common if key in by[a][s] and key in by[b][s]]
            if len(diffs) < 2:
                continue
            mean, half = interval(diffs)
            resolved = abs(mean) > half
            need = "" if resolved else str(seeds_needed(diffs) or "never")
            verdict = f"yes, {a if mean > 0 else b} higher" if resolved else "no"
            lines.append(f"| {a} - {b} | {key} | {mean:+.3f} ± {half:.3f} | {verdict} | {need} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/toy-ablation"))
    parser.add_argument("--config", type=Path, default=ROOT / "examples/toy-world.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS), choices=SCHEDULERS)
    parser.add_argument("--eval-games", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once; the CPU threads are split between them")
    parser.add_argument("--svg", type=Path, help="also write the comparison's charts as SVG files here")
    parser.add_argument("--probes", nargs="+", default=["clevr.*"], help="probes `vzframe probe` scores (none: skip)")
    parser.add_argument("--probe-items", type=int, default=100, help="items per probe (default 100)")
    parser.add_argument("--probe-score", choices=("generate", "likelihood"), default="likelihood",
                        help="likelihood (default): the toy base never learnt the probes' answer format")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(args.config.read_text())
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # Longest first, so the pool's last job is a short one (in seed-major order the last,
    # alternate on seed 2, ran 11 of 92 minutes alone on one core): clue steps train on every
    # clue, three times a decision step's samples.
    cost = {"clue_only": 0, "hysteresis": 1, "alternate": 2, "decision_only": 3}
    todo = sorted(((s, seed) for seed in args.seeds for s in args.schedulers), key=lambda job: (cost[job[0]], job[1]))
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: one_run(args.out, *job, args, base, threads), todo))
    (args.out / "ablation.json").write_text(json.dumps(results, indent=1))
    compare = ["compare", *(str(args.out / f"{s}-seed{seed}") for s, seed in todo), "--out", str(args.out / "compare.html")]
    vz(*compare, *(["--svg", str(args.svg)] if args.svg else []), threads=os.cpu_count() or 1, shared=False)
    table = summary(results)
    (args.out / "ablation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
