"""End to end: the `vzframe` command as a user runs it, on the tiny model with DeepSpeed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vzframe import __version__
from vzframe.cli import main

ROOT = Path(__file__).resolve().parents[1]
METRIC_KEYS = {
    "step", "phase", "acc", "acc_ema", "na", "na_ema", "reward_spy", "reward_citizen",
    "baseline_spy", "baseline_citizen", "loss", "kl",
}  # fmt: skip


def vzframe(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "vzframe.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    """A 3-step run whose scheduler is set to switch after every step: decision -> clue -> decision."""
    tmp = tmp_path_factory.mktemp("run")
    out, record = tmp / "out", tmp / "hooks.jsonl"
    result = vzframe(
        "run", "games.spy", "schedulers.hysteresis", "tests.fixtures.recorder",
        "steps=3", "games_per_step=2", f"output_dir={out}", "rollout.max_new_tokens=16",
        "scheduler.k_min=1", "scheduler.tau_acc_up=0.0", "scheduler.tau_na_down=1.0",
        env={"VZ_RECORD": str(record)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in record.read_text().splitlines()]
    return out, events, result


def test_run_writes_resolved_config(run):
    out, _, result = run
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["vzframe"]["game"] == "spy" and config["vzframe"]["scheduler"] == "hysteresis"
    assert config["vzframe"]["plugins"]["games.spy"] == __version__
    assert config["game"]["num_citizens"] == 3  # plugin defaults are filled in
    assert config["scheduler"]["k_min"] == 1 and config["scheduler"]["tau_acc_up"] == 0.0
    assert f"Run written to {out}" in result.stdout
    assert f"vzframe report {out}" in result.stdout and f"vzframe probe {out}" in result.stdout  # what to look at next


def test_run_writes_metrics_per_step(run):
    out, _, _ = run
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert METRIC_KEYS <= set(row)
        assert row["reward_spy"] + 3 * row["reward_citizen"] == pytest.approx(0.0, abs=1e-9)  # zero-sum
    # decision trains first; acc >= 0 and n/a <= 1 switch to clue; error 1 - acc >= 0.4 switches back.
    assert [r["phase"] for r in rows] == ["decision", "clue", "decision"]
    assert rows[0]["samples"] == 2 * 3  # 2 games x 3 citizen votes
    assert rows[1]["samples"] == 2 * 4 * 2  # 2 games x 4 players x 2 clue rounds


def test_run_writes_every_episode(run):
    out, _, _ = run
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 3 * 2
    for ep in episodes:
        spy = ep["info"]["spy"]
        assert ep["roles"][spy - 1] == "spy" and ep["roles"].count("spy") == 1
        stages = [t["stage"] for t in ep["turns"]]
        assert stages == ["clue"] * 8 + ["decision"] * 3
        assert all(t["player"] != spy for t in ep["turns"] if t["stage"] == "decision")
        for turn in ep["turns"]:
            assert {"role", "stage", "prompt", "completion", "action", "reward"} <= set(turn)
            assert turn["reward"] is not None


def test_on_run_start_hook_called_once(run):
    out, events, _ = run
    starts = [e for e in events if e["event"] == "on_run_start"]
    assert starts == [{"event": "on_run_start", "steps": 3, "output_dir": str(out)}]


def test_on_episode_end_hook_sees_every_game(run):
    _, events, _ = run
    ends = [e for e in events if e["event"] == "on_episode_end"]
    assert [e["step"] for e in ends] == [0, 0, 1, 1, 2, 2]
    assert all(e["game"] == "spy" and e["turns"] == 11 for e in ends)


def test_on_step_end_hook_after_each_step(run):
    _, events, _ = run
    assert [(e["step"], e["phase"]) for e in events if e["event"] == "on_step_end"] == [
        (0, "decision"), (1, "clue"), (2, "decision")
    ]  # fmt: skip


def test_on_phase_change_hook_on_each_switch(run):
    _, events, _ = run
    changes = [(e["step"], e["old"], e["new"]) for e in events if e["event"] == "on_phase_change"]
    assert changes == [(0, "decision", "clue"), (1, "clue", "decision"), (2, "decision", "clue")]


def test_collect_metrics_hook_results_are_logged(run):
    out, events, _ = run
    assert [e["n"] for e in events if e["event"] == "collect_metrics"] == [2, 2, 2]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["recorder_games"] == 2.0 for r in rows)


def test_typo_fails_before_anything_runs(tmp_path):
    result = vzframe("run", "games.spy", "schedulers.hysteresis", "train.lrr=1e-5", f"output_dir={tmp_path / 'x'}")
    assert result.returncode == 2
    assert "Unknown config key 'train.lrr'" in result.stderr and "train.lr," in result.stderr
    assert not (tmp_path / "x").exists()


def test_game_section_is_validated_by_the_game_plugin(tmp_path):
    result = vzframe("run", "games.spy", "schedulers.hysteresis", "game.num_citizen=4", f"output_dir={tmp_path / 'x'}")
    assert result.returncode == 2
    assert "Unknown config key 'game.num_citizen'" in result.stderr and "game.num_citizens" in result.stderr
    assert not (tmp_path / "x").exists()


def test_unknown_plugin_name(capsys):
    assert main(["run", "games.spi", "schedulers.hysteresis"]) == 2
    err = capsys.readouterr().err
    assert "Unknown plugin 'games.spi'" in err and "games.spy" in err


def test_missing_scheduler_says_what_to_name(capsys):
    assert main(["run", "games.spy"]) == 2
    assert "No scheduler loaded" in capsys.readouterr().err


def test_refuses_to_overwrite_a_run(run, capsys):
    out, _, _ = run
    assert main(["run", "games.spy", "schedulers.hysteresis", f"output_dir={out}"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_config_file_then_overrides(tmp_path):
    from vzframe.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\ntrain:\n  lr: 0.5\n  kl_coef: 0.1\ngame:\n  num_citizens: 5\n")
    config = load_config(path, ["train.lr=0.25", "game.clue_rounds=1"], ["games.spy"])
    assert config.steps == 7  # file over default
    assert config.train.lr == 0.25 and config.train.kl_coef == 0.1  # override over file, siblings kept
    assert config.game == {"num_citizens": 5, "clue_rounds": 1}
    assert config.train.micro_batch_size == 8  # default kept


def test_plugins_command_lists_versions_and_hooks(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("games.spy", "schedulers.hysteresis", "schedulers.clue_only", "plugins.shapes"):
        assert name in out
    assert "register_games" in out and __version__ in out


def test_model_build_tiny_command(tmp_path, capsys):
    assert main(["model", "build-tiny", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "processor_config.json").exists()


def test_register_commands_adds_a_subcommand(capsys):
    assert main(["hello", "world"], plugins=["tests.fixtures.recorder"]) == 0
    assert capsys.readouterr().out == "hello world\n"


def test_a_broken_installed_plugin_does_not_break_the_cli(capsys):
    assert main(["plugins"], plugins=["no_such_plugin_xyz"]) == 0
    assert "skipping plugin 'no_such_plugin_xyz'" in capsys.readouterr().err


def test_a_run_config_yaml_reruns_with_config(run):
    """config.yaml's header promises `vzframe run --config OUTPUT_DIR/config.yaml`: its
    version record is ignored when read back, and the rest is the same run's config."""
    from vzframe.config import load_config

    out, _, _ = run
    config = load_config(out / "config.yaml", ["output_dir=/tmp/elsewhere"])
    assert config.steps == 3 and config.games_per_step == 2 and config.scheduler["k_min"] == 1
    assert config.plugins == ["games.spy", "schedulers.hysteresis", "tests.fixtures.recorder"]


# ---- --help-config ------------------------------------------------------------------------


def help_config(capsys, *items: str) -> str:
    assert main(["run", *items, "--help-config"]) == 0
    return capsys.readouterr().out


def rows_of(out: str) -> dict[str, str]:
    """Key -> its whole line, in the order printed (indented rows; the hint's examples are deeper)."""
    return {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and not line.startswith("   ")}


def test_help_config_lists_the_named_game_scheduler_and_image_source(capsys):
    from games.spy.game import SpyConfig
    from plugins.clevr import ToyConfig
    from schedulers.hysteresis import Config as HysteresisConfig

    out = help_config(capsys, "games.spy", "schedulers.hysteresis")
    line = rows_of(out)
    keys = list(line)
    expected = [
        *(f"game.{k}" for k in SpyConfig.model_fields),
        *(f"scheduler.{k}" for k in HysteresisConfig.model_fields),
        *(f"image_source.{k}" for k in ToyConfig.model_fields),
    ]
    assert keys[-len(expected):] == expected  # after the core keys, in this order
    assert keys.index("train.lr") < keys.index("game.num_citizens")
    assert "Image source 'clevr_toy' (plugins.clevr" in out  # the source a spy run uses by default
    assert line["game.num_citizens"].split()[1] == "3" and "Players who see the real picture" in line["game.num_citizens"]
    assert line["scheduler.tau_acc_up"].split()[1] == "0.9" and "acc_ema >= this" in line["scheduler.tau_acc_up"]
    assert line["image_source.width"].split()[1] == "168"
    assert "objects changed (the reference's" in line["game.spy_image"]  # a two-line docstring on one line


def test_help_config_lists_odd_one_out_keys_and_an_explicit_image_source(capsys):
    from games.odd_one_out.game import OddOneOutConfig
    from plugins.charts import Config as ChartsConfig

    out = help_config(capsys, "games.odd_one_out", "schedulers.alternate", "images=charts")
    keys = list(rows_of(out))
    assert {f"game.{k}" for k in OddOneOutConfig.model_fields} <= set(keys)
    assert [k for k in keys if k.startswith("image_source.")] == [f"image_source.{k}" for k in ChartsConfig.model_fields]
    assert "Image source 'charts' (plugins.charts; images=charts)" in out
    assert "image_source.kinds        [bar, line, pie]" in out  # a default_factory's value


def test_help_config_without_plugins_lists_core_keys_and_says_how_to_see_more(capsys):
    out = help_config(capsys)
    keys = list(rows_of(out))
    assert {"steps", "train.lr", "rollout.engine", "image_source"} <= set(keys)
    assert not any(k.startswith(("game.", "scheduler.", "image_source.")) for k in keys)
    assert "vzframe run games.spy schedulers.hysteresis --help-config" in out


def test_help_config_unknown_image_source(capsys):
    assert main(["run", "games.spy", "schedulers.hysteresis", "images=nope", "--help-config"]) == 2
    assert "Unknown image source 'nope'" in capsys.readouterr().err
