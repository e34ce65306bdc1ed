"""Two CPU processes under torchrun: games are sharded, statistics are all-reduced, and
both ranks take the same phase on the same step with the same role baselines."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vzframe import checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_model_dir):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    tmp = tmp_path_factory.mktemp("ddp")
    out, record = tmp / "run", tmp / "steps"
    cmd = [
        torchrun, "--nproc_per_node", "2", "--master_port", "29561", "-m", "vzframe", "run",
        "tests.fixtures.rank_skew", "schedulers.hysteresis", "steps=4", "games_per_step=1",
        "rollout.max_new_tokens=8", "checkpoint_every=2", f"output_dir={out}", "--quiet",
        "scheduler.k_min=1", "scheduler.tau_acc_up=0.5", "scheduler.tau_na_down=0.1", "scheduler.tau_err_up=0.5",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "VZ_RECORD": str(record)})
    assert result.returncode == 0, result.stderr[-4000:]
    views = [[json.loads(line) for line in Path(f"{record}.rank{r}").read_text().splitlines()] for r in (0, 1)]
    return out, views


def test_ranks_agree_on_every_phase_from_averaged_metrics(two_ranks):
    _, (rank0, rank1) = two_ranks
    assert [r["acc"] for r in rank0] == [0.5] * 4 == [r["acc"] for r in rank1]  # the mean, not 0 or 1
    phases = [r["phase"] for r in rank0]
    assert phases == [r["phase"] for r in rank1]
    # acc_ema 0.5 >= tau_acc_up and 1 - 0.5 >= tau_err_up: a switch after every step.
    assert phases == ["decision", "clue", "decision", "clue"]


def test_ranks_hold_identical_role_baselines(two_ranks):
    _, (rank0, rank1) = two_ranks
    for a, b in zip(rank0, rank1):
        assert (a["baseline_spy"], a["baseline_citizen"]) == (b["baseline_spy"], b["baseline_citizen"])
    # Rank 0's spy reward is 1, rank 1's is 2: the baseline follows their mean 1.5.
    expected, b = [], 0.0
    for _ in range(4):
        b = 0.9 * b + 0.1 * 1.5
        expected.append(b)
    assert [r["baseline_spy"] for r in rank0] == pytest.approx(expected)
    assert [r["baseline_citizen"] for r in rank0] == pytest.approx([-x for x in expected])


def test_ranks_play_different_games(two_ranks):
    out, _ = two_ranks
    ranks = [[json.loads(line) for line in (out / name).read_text().splitlines()] for name in ("episodes.jsonl", "episodes.rank1.jsonl")]
    images = [[ep["info"]["image"] for ep in eps] for eps in ranks]
    assert len(images[0]) == len(images[1]) == 4
    assert not set(images[0]) & set(images[1])  # interleaved image indices: no picture played twice
    assert {ep["rank"] for ep in ranks[1]} == {1}


def test_checkpoint_holds_every_rank(two_ranks):
    out, _ = two_ranks
    ckpt = out / "checkpoints" / "step-4"
    assert (ckpt / "rng-rank0.json").exists() and (ckpt / "rng-rank1.json").exists()
    assert checkpoint.verify(ckpt).step == int(ckpt.name.split("-")[1])  # the manifest covers every rank's files


def test_a_command_started_by_an_in_process_run_makes_up_its_own_world_but_keeps_a_launchers():
    """A world of one that vzframe made up is not passed on: a child process gets a fresh port
    (the parent's process group holds the inherited one); a launcher's world is kept."""
    import os

    from vzframe import dist

    show = "import os; from vzframe import dist; dist.setup_environment(); print(os.environ['MASTER_PORT'], os.environ['RANK'])"
    dist.setup_environment()
    parent = os.environ["MASTER_PORT"]
    child = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert child[0] != parent and child[1] == "0"
    # torchrun started from such a process: its ranks inherit the marker, but not the world it marks
    launcher = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "MASTER_PORT": "29512"}
    kept = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True, check=True, env=launcher)
    assert kept.stdout.split() == ["29512", "1"]
    single = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "29513"}  # torchrun --nproc_per_node 1
    kept = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True, check=True, env=single)
    assert kept.stdout.split() == ["29513", "0"]
