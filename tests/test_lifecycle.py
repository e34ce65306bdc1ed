"""Checkpoints, exact resume after SIGKILL, export, logger plugins, bad disks."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.runs import ROOT, RUN, comparable, read_jsonl, vzframe
from vzframe import checkpoint, rundir
from vzframe.cli import main
from vzframe.train.trainer import lr_lambda


def test_checkpoint_layout_and_keep_last(reference):
    root = reference / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-4", "step-6"]  # step-2 pruned
    ckpt = root / "step-6"
    for part in ("MANIFEST.json", "state.json", "rng-rank0.json", "model/config.json", "model/model.safetensors",
                 "model/processor_config.json", "deepspeed/state"):  # fmt: skip
        assert (ckpt / part).exists(), part
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 6 and state["images"] == 6 * 2
    assert set(state["baselines"]["values"]) == {"spy", "citizen"}
    assert state["scheduler"]["phase"] in ("clue", "decision")


def test_resume_after_sigkill_matches_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vzframe", "run", *RUN, f"output_dir={out}", "--quiet"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-2" / "MANIFEST.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 2.5))  # a random moment after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(read_jsonl(out / "metrics.jsonl")) if (out / "metrics.jsonl").exists() else 0

    result = vzframe("resume", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    expected, got = read_jsonl(reference / "metrics.jsonl"), read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in got] == list(range(6)), f"killed after {killed_at} steps"
    assert comparable(got) == comparable(expected)
    assert read_jsonl(out / "episodes.jsonl") == read_jsonl(reference / "episodes.jsonl")
    assert max(r["kl"] for r in got) > 1e-3  # the weights really moved


def test_resume_can_extend_a_run_and_logs_start_step(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    record = tmp_path / "hooks.jsonl"
    result = vzframe("resume", str(out), "steps=8", "plugins=[tests.fixtures.length_reward,schedulers.alternate,tests.fixtures.recorder]",
                     env={**os.environ, "VZ_RECORD": str(record)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(8))
    assert comparable(rows[:6]) == comparable(read_jsonl(reference / "metrics.jsonl"))
    # The schedule stretches to the new total: each logged rate is the one the step trained with.
    assert [r["lr"] for r in rows[6:]] == pytest.approx([1e-3 * lr_lambda(s, total_steps=8, warmup_ratio=0.1) for s in (6, 7)])
    assert rows[0]["lr"] == pytest.approx(1e-3 * lr_lambda(0, total_steps=6, warmup_ratio=0.1))
    finished = vzframe("resume", str(out))
    assert finished.returncode == 0 and "Nothing to train" in finished.stdout
    starts = [e for e in read_jsonl(record) if e["event"] == "on_run_start"]
    assert [e["steps"] for e in starts] == [8]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-6", "step-8"]


def test_export_writes_a_loadable_hf_model(reference, tmp_path, capsys):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dest = tmp_path / "exported"
    assert main(["export", str(reference), "--step", "4", str(dest)]) == 0
    model = AutoModelForImageTextToText.from_pretrained(dest)
    AutoProcessor.from_pretrained(dest)
    ds = torch.load(reference / "checkpoints/step-4/deepspeed/state/mp_rank_00_model_states.pt", weights_only=False)
    name, tensor = next(iter(ds["module"].items()))
    assert torch.equal(model.state_dict()[name], tensor)  # the exported weights are the trained ones
    assert main(["export", str(reference), str(dest)]) == 2  # refuses a non-empty destination
    assert "not empty" in capsys.readouterr().err


def test_export_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "d")]) == 2
    assert "no checkpoint to export" in capsys.readouterr().err


def test_truncate_jsonl_drops_later_steps_and_a_torn_line_into_a_side_file(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    assert rundir.truncate_jsonl(path, 2, cut_dir=tmp_path / "cut") == 2
    assert read_jsonl(path) == [{"step": 0}, {"step": 1}]
    assert (tmp_path / "cut" / "m.jsonl").read_text() == '{"step": 2}\n{"step": 3, "lo\n'  # nothing is lost


@pytest.mark.parametrize(
    "name, owner",
    [
        ("truncate_jsonl", "vzframe.rundir"),
        ("safe_globals", "vzframe.train.ds_checkpoint"),
        ("safe_checkpoint_engine", "vzframe.train.ds_checkpoint"),
    ],
)
def test_names_moved_out_of_checkpoint_still_work_with_a_warning_naming_their_place(name, owner):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"moved to {owner}.{name}") as caught:
        moved = getattr(checkpoint, name)
    assert len(caught) == 1 and moved is getattr(importlib.import_module(owner), name)
    with pytest.raises(AttributeError):
        checkpoint.no_such_name


def test_unwritable_output_dir_fails_early(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["run", "games.spy", "schedulers.hysteresis", f"output_dir={blocker / 'run'}"]) == 2
    assert "Cannot write to output_dir" in capsys.readouterr().err


def test_full_disk_is_reported_before_training(tmp_path):
    import shutil

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(checkpoint.CheckpointError, match="GiB free .* needs about"):
        checkpoint.check_disk_space(tmp_path, free * 2)
    checkpoint.check_disk_space(tmp_path, 1)


def test_tensorboard_logger_writes_events(tmp_path, tiny_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = vzframe("run", "games.spy", "schedulers.hysteresis", "plugins.tensorboard", "steps=2",
                     "games_per_step=1", "rollout.max_new_tokens=8", "checkpoint_every=0", f"output_dir={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"acc", "na_ema", "loss", "kl", "reward_spy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss")] == [0, 1]
    assert not (out / "checkpoints").exists()  # checkpoint_every=0 saves nothing
