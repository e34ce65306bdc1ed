"""A run folder is untrusted input: nothing in it executes code, a damaged checkpoint is
detected and skipped (never loaded), a failed command changes nothing, one process writes a
run at a time, and a full disk during a checkpoint is a clear message (docs/security.md)."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.runs import ROOT, RUN, comparable, load_state, read_jsonl, same_state, snapshot, vzframe
from vzframe import checkpoint
from vzframe.cli import main


def copy_run(reference: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    return out


def ckpt_files(ckpt: Path) -> list[str]:
    return sorted(json.loads((ckpt / "MANIFEST.json").read_text())["files"])


def damage(file: Path, kind: str) -> None:
    if kind == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif kind == "missing":
        file.unlink()
    elif kind == "random bytes":  # same size: only the hash can tell
        file.write_bytes(random.Random(0).randbytes(file.stat().st_size))


def forge_manifest(ckpt: Path) -> None:
    """What an attacker who edits files would do next: make the manifest match them."""
    checkpoint.write_manifest(ckpt, int(ckpt.name.split("-")[1]))


class Payload:
    """A pickle that creates a directory when unpickled: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# ---- damage of every kind, in every file ------------------------------------------------


@pytest.mark.parametrize("kind", ["truncated", "missing", "random bytes"])
def test_every_damaged_file_makes_the_checkpoint_fall_back(reference, tmp_path, kind):
    names = ckpt_files(reference / "checkpoints" / "step-6")
    assert any(n.startswith("deepspeed/") for n in names) and "rng-rank0.json" in names and "state.json" in names
    for name in [*names, "MANIFEST.json"]:
        out = tmp_path / name.replace("/", "_")
        shutil.copytree(reference / "checkpoints", out / "checkpoints")
        damage(out / "checkpoints" / "step-6" / name, kind)
        ckpt = checkpoint.latest(out)
        assert ckpt.step == 4, (kind, name)
        assert len(ckpt.skipped) == 1 and "step-6 is damaged" in ckpt.skipped[0], (kind, name)
        if name != "MANIFEST.json":
            assert name in ckpt.skipped[0] or (kind == "random bytes" and "hash" in ckpt.skipped[0]), ckpt.skipped
        with pytest.raises(checkpoint.CheckpointError, match="step-6 is damaged"):
            checkpoint.latest(out, step=6)


def test_the_issues_torn_state_json_falls_back(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    (out / "checkpoints/step-6/state.json").write_text('{"step": 2, "sched')
    assert checkpoint.latest(out).step == 4


def test_garbage_that_matches_a_forged_manifest_is_not_loaded(reference, tmp_path):
    """Random bytes in DeepSpeed's files, with a manifest rewritten to match: loading fails
    cleanly and the checkpoint before is used; the garbage never reaches the model."""
    out = copy_run(reference, tmp_path)
    ckpt6 = out / "checkpoints" / "step-6"
    for name in ckpt_files(ckpt6):
        if name.startswith("deepspeed/") and name.endswith(".pt"):
            damage(ckpt6 / name, "random bytes")
    forge_manifest(ckpt6)
    result = vzframe("resume", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checkpoint step-6 is damaged: it does not load" in result.stderr
    assert "Using step-4 instead" in result.stderr
    assert comparable(read_jsonl(out / "metrics.jsonl")) == comparable(read_jsonl(reference / "metrics.jsonl"))


# ---- nothing executes -------------------------------------------------------------------


def test_no_file_in_a_run_folder_executes_code(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    marker = tmp_path / "code-ran"
    ckpt6 = out / "checkpoints" / "step-6"
    for name in ckpt_files(ckpt6):
        if name.endswith((".pt", ".json")) and not name.startswith("model/"):
            torch.save(Payload(marker), ckpt6 / name)  # every pickle-shaped or state file
    torch.save(Payload(marker), ckpt6 / "model" / "pytorch_model.bin")  # beside the safetensors
    forge_manifest(ckpt6)

    resumed = vzframe("resume", str(out), "steps=7")
    assert not marker.exists(), "unpickling a run folder's file ran code"
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step-6 is damaged" in resumed.stderr
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == list(range(7))

    for step in (6, 7):  # the new checkpoint too, then export and report the folder
        ckpt = out / "checkpoints" / f"step-{step}"
        for file in [*ckpt.glob("deepspeed/**/*.pt"), ckpt / "rng-rank0.json", ckpt / "state.json"]:
            torch.save(Payload(marker), file)
        torch.save(Payload(marker), ckpt / "model" / "pytorch_model.bin")
        forge_manifest(ckpt)
    for command in (["export", str(out), str(tmp_path / "exported")], ["report", str(out), "--out", str(tmp_path / "r.html")]):
        result = subprocess.run([sys.executable, "-m", "vzframe", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode in (0, 2) and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not marker.exists()


def test_rng_states_are_plain_json(reference):
    state = json.loads((reference / "checkpoints/step-6/rng-rank0.json").read_text())
    assert set(state) >= {"python", "numpy", "torch"}


# ---- resume: fall back, cut logs into a side file, or refuse and change nothing ----------


def test_resume_from_a_damaged_newest_checkpoint(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    optimizer = next((out / "checkpoints/step-6/deepspeed/state").glob("*optim_states.pt"))
    damage(optimizer, "truncated")
    result = vzframe("resume", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "step-6 is damaged" in warnings[0] and optimizer.name in warnings[0]
    assert comparable(read_jsonl(out / "metrics.jsonl")) == comparable(read_jsonl(reference / "metrics.jsonl"))
    assert read_jsonl(out / "episodes.jsonl") == read_jsonl(reference / "episodes.jsonl")
    cut = read_jsonl(out / "cut" / "metrics.jsonl")  # the lines of steps 4 and 5, kept
    assert [r["step"] for r in cut] == [4, 5] and comparable(cut) == comparable(read_jsonl(reference / "metrics.jsonl")[4:])


def test_resume_refuses_when_no_checkpoint_is_intact_and_changes_nothing(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    for step in (4, 6):
        (out / f"checkpoints/step-{step}/state.json").write_text("{")
    before = snapshot(out)
    result = vzframe("resume", str(out))
    assert result.returncode == 2
    assert result.stderr.count("\n") <= 2 and "No intact checkpoint" in result.stderr and "Nothing was changed" in result.stderr
    assert snapshot(out) == before


def test_kill_during_a_checkpoint_write_then_resume_matches(reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "vzframe", "run", *RUN, f"output_dir={out}", "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not (out / "checkpoints" / ".tmp-step-4").exists():  # the second checkpoint is being written
        assert proc.poll() is None and time.time() < deadline, "run ended before its second checkpoint"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = vzframe("resume", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert comparable(read_jsonl(out / "metrics.jsonl")) == comparable(read_jsonl(reference / "metrics.jsonl"))
    assert read_jsonl(out / "episodes.jsonl") == read_jsonl(reference / "episodes.jsonl")
    final, expected = out / "checkpoints/step-6", reference / "checkpoints/step-6"
    assert (final / "model/model.safetensors").read_bytes() == (expected / "model/model.safetensors").read_bytes()
    for name in ckpt_files(expected):
        if name.endswith(".pt"):  # optimizer and engine state, tensor for tensor
            assert same_state(load_state(final / name), load_state(expected / name)), name
    assert not list((out / "checkpoints").glob(".tmp-*"))



# ---- export -----------------------------------------------------------------------------


def test_export_refuses_a_damaged_checkpoint(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path)
    damage(out / "checkpoints/step-6/model/model.safetensors", "truncated")
    assert main(["export", str(out), "--step", "6", str(tmp_path / "a")]) == 2
    assert "model/model.safetensors has" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["export", str(out), str(tmp_path / "b")]) == 0  # the newest intact one, named
    captured = capsys.readouterr()
    assert "step-6 is damaged" in captured.err and "Exported step 4" in captured.out


@pytest.mark.parametrize("what", ["truncated weights", "empty config"])
def test_export_checks_the_copy_even_with_a_forged_manifest(reference, tmp_path, capsys, what):
    out = copy_run(reference, tmp_path)
    ckpt6 = out / "checkpoints/step-6"
    if what == "truncated weights":
        damage(ckpt6 / "model/model.safetensors", "truncated")
    else:
        (ckpt6 / "model/config.json").write_text("")
    forge_manifest(ckpt6)
    assert main(["export", str(out), "--step", "6", str(tmp_path / "dest")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists() and not list(tmp_path.glob(".dest*"))


def test_export_destination_that_is_a_file_and_a_malformed_state(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path)
    (blocker := tmp_path / "file").write_text("x")
    assert main(["export", str(out), str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    (out / "checkpoints/step-6/state.json").write_text("[1, 2")
    assert main(["export", str(out), "--step", "6", str(tmp_path / "d")]) == 2
    assert "state.json" in capsys.readouterr().err


def test_exported_files_are_readable_by_others(reference, tmp_path):
    assert main(["export", str(reference), str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "model.safetensors").stat().st_mode & 0o044 == 0o044


# ---- one writer per run folder; only empty folders for new runs -------------------------


def test_a_live_run_holds_its_folder(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from vzframe.rundir import RunLock;"
         "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(out)
        assert main(["resume", str(out)]) == 2
        assert f"in use by process {holder.pid}" in capsys.readouterr().err
        assert main(["run", *RUN, f"output_dir={out}"]) == 2
        assert f"in use by process {holder.pid}" in capsys.readouterr().err
        assert snapshot(out) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_left_by_a_crash_during_start_up_is_not_reused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("steps: 2\n")  # killed before its first step
    assert main(["run", "games.spy", "schedulers.hysteresis", f"output_dir={out}"]) == 2
    assert f"vzframe resume {out}" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == "steps: 2\n"
    (other := tmp_path / "other").mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["run", "games.spy", "schedulers.hysteresis", f"output_dir={other}"]) == 2
    assert "is not empty (notes.txt)" in capsys.readouterr().err


# ---- a full disk during a checkpoint ----------------------------------------------------


def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_resume_works(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    args = ["run", "games.spy", "schedulers.hysteresis", "steps=2", "games_per_step=1", "rollout.max_new_tokens=8",
            "checkpoint_every=1", f"output_dir={out}"]  # fmt: skip

    def small_files():  # writes past 1 MB fail as on a full disk; the model file is ~3 MB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    result = vzframe(*args, preexec_fn=small_files)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Could not write checkpoint" in result.stderr and "Traceback" not in result.stderr
    assert "partial checkpoint was removed" in result.stderr and "vzframe resume" in result.stderr
    assert not list((out / "checkpoints").glob(".tmp-*")) and not list((out / "checkpoints").glob("step-*"))
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [0]  # the log survived

    resumed = vzframe("resume", str(out))  # space freed: the run starts again and finishes
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [0, 1]
    assert [r["step"] for r in read_jsonl(out / "cut" / "metrics.jsonl")] == [0]


# ---- values that were accepted and then failed -------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [("seed=-5", "seed"), ("train.lr=.inf", "train.lr"), ("rollout.temperature=.inf", "rollout.temperature"),
     ("game.num_citizens=100", "game.num_citizens"), ("game.beta=.nan", "game.beta")],
)  # fmt: skip
def test_bad_values_fail_at_validation_naming_the_key(tmp_path, capsys, override, key):
    out = tmp_path / "run"
    assert main(["run", "games.spy", "schedulers.hysteresis", override, f"output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Bad value for") and repr(key) in err
    assert not out.exists()  # refused before anything was made


def test_a_binary_or_aliased_config_file_is_a_clear_error(tmp_path, capsys):
    (binary := tmp_path / "c.yaml").write_bytes(bytes(range(256)) * 4)
    assert main(["run", "games.spy", "schedulers.hysteresis", "--config", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (aliased := tmp_path / "b.yaml").write_text(bomb)
    assert main(["run", "games.spy", "schedulers.hysteresis", "--config", str(aliased)]) == 2
    assert "aliases" in capsys.readouterr().err


def test_a_scheduler_rejecting_its_config_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "games.spy", "schedulers.alternate", "scheduler.clue_phase=talk", "scheduler.start=decision", f"output_dir={out}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Scheduler 'alternate' rejected its config:") and "'talk' is not a phase" in err
    assert not out.exists()


def test_a_game_without_the_schedulers_metrics_fails_before_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "tests.fixtures.mute_game", "schedulers.hysteresis", f"output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert "Scheduler 'hysteresis' needs the metrics ['acc', 'na']" in err and "missing ['na']" in err
    assert not out.exists()
