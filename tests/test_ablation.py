"""examples/toy_world_ablation.py: every arm's config resolves, and the summary's intervals,
paired verdicts and seed counts follow from the numbers."""

import importlib.util
import math
from pathlib import Path

import pytest
import yaml

from vzframe.config import load_config
from vzframe.runtime import resolve

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("toy_world_ablation", ROOT / "examples/toy_world_ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


@pytest.mark.parametrize("scheduler", ablation.SCHEDULERS)
def test_every_arm_runs_the_example_config_with_its_own_scheduler(scheduler, tmp_path):
    base = yaml.safe_load((ROOT / "examples/toy-world.yaml").read_text())
    config = ablation.run_config(base, scheduler, seed=3, steps=7, run=tmp_path / "run")
    path = tmp_path / "arm.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path, [])
    setup = resolve(loaded)
    assert (setup.game_name, type(setup.scheduler).name) == ("spy", scheduler)
    assert (loaded.seed, loaded.steps) == (3, 7)
    # every arm trains with the same settings; only the scheduler differs
    assert {k: v for k, v in config.items() if k not in ("plugins", "scheduler", "seed", "steps", "output_dir")} == {
        k: v for k, v in base.items() if k not in ("plugins", "scheduler", "seed", "steps", "output_dir")
    }
    if scheduler == "hysteresis":
        assert config["scheduler"] == base["scheduler"]  # the tuned thresholds


def test_interval_is_the_t_interval():
    mean, half = ablation.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(ablation.interval([1.0])[1])


def test_seeds_needed_uses_t_not_the_normal_at_few_seeds():
    # mean 0.1, sd 0.1: the normal formula says (2.8 * 1)^2 = 7.8 -> 8, but at 8 seeds
    # (t 2.365 + 0.896) / sqrt(8) = 1.15 > 1; at 10 (2.262 + 0.883) / sqrt(10) = 0.995 <= 1,
    # at 9 (2.306 + 0.889) / 3 = 1.065 > 1 (t from tables)
    assert ablation.seeds_needed([0.0, 0.1, 0.2]) == 10
    assert ablation.seeds_needed([0.1, -0.1]) is None  # mean 0: no number of seeds
    assert ablation.t_quantile(20, 1.96) == pytest.approx(2.086, abs=0.003)
    assert ablation.t_quantile(4, 0.8416) == pytest.approx(0.941, abs=0.005)


def row(scheduler, seed, acc, survival):
    return {
        "scheduler": scheduler, "seed": seed, "citizen_acc": acc, "citizen_acc_base": 0.4, "spy_survival": survival,
        "spy_survival_base": 0.5, "na": 0.1, "train_acc_last10": 0.5, "clue_steps": 0, "switches": 0,
    }  # fmt: skip


def test_summary_resolves_a_consistent_difference_and_sizes_a_noisy_one():
    results = []
    for seed, noise in enumerate([0.0, 0.02, -0.02]):
        results.append(row("hysteresis", seed, 0.6 + noise, 0.5 + 0.1 * (-1) ** seed))
        results.append(row("decision_only", seed, 0.5 + noise, 0.5))
    text = ablation.summary(results)
    lines = {
        line.split("|")[1].strip() + "/" + line.split("|")[2].strip(): line
        for line in text.splitlines()
        if line.startswith("| hysteresis - ")
    }
    acc = lines["hysteresis - decision_only/citizen_acc"]
    assert "+0.100 ± 0.000" in acc and "yes, hysteresis higher" in acc  # the same noise in both: paired away
    surv = lines["hysteresis - decision_only/spy_survival"]
    assert "| no |" in surv
    # differences +0.1, -0.1, +0.1: mean 1/30, sd 0.1155; with t at 96 degrees of freedom
    # (1.985 + 0.845) * 0.1155 / sqrt(97) = 0.0332 <= 1/30 and at 96 seeds 0.0334 > 1/30: 97 seeds
    assert surv.rstrip(" |").endswith("| 97")
    assert "| hysteresis | +0.200 ± " in text  # 0.6 - 0.4 on average


def test_summary_reports_each_probe_change_and_pairs_schedulers_on_it():
    results = []
    for seed, noise in enumerate([0.0, 0.03, -0.03]):
        for scheduler, gain in (("hysteresis", 0.08), ("clue_only", 0.0)):
            r = row(scheduler, seed, 0.5, 0.5)
            r.update({"probe:clevr.verify": 0.55 + gain + noise, "probe:clevr.verify_base": 0.55,
                      "probe:clevr.verify_change_se": 0.02})  # fmt: skip
            results.append(r)
    text = ablation.summary(results)
    assert "| scheduler | clevr.verify (base 0.550) |" in text
    assert "| hysteresis | +0.080 ± " in text and "| clue_only | +0.000 ± " in text
    pair = next(line for line in text.splitlines() if line.startswith("| hysteresis - clue_only | probe:clevr.verify"))
    assert "+0.080 ± 0.000" in pair and "yes, hysteresis higher" in pair  # the same noise in both arms: paired away
