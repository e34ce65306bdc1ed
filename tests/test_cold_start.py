"""A first run in a fresh environment compiles nothing: one process needs no inter-process
communication op, so DeepSpeed's CPU backend must not JIT-build its C++ shared-memory op."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vzframe import dist

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_single_process_run_compiles_nothing(tmp_path, tiny_model_dir):
    extensions = tmp_path / "torch_extensions"  # as in a fresh environment: nothing built yet
    cmd = [sys.executable, "-m", "vzframe.cli", "run", "games.spy", "schedulers.hysteresis", "steps=1",
           "games_per_step=1", "checkpoint_every=0", "rollout.max_new_tokens=16", f"output_dir={tmp_path / 'run'}", "--quiet"]  # fmt: skip
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions)}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert not extensions.exists() or not any(extensions.iterdir()), sorted(map(str, extensions.rglob("*")))
    assert "built successfully" not in result.stdout + result.stderr


@pytest.mark.parametrize("world, builds", [(1, False), (2, True)])
def test_shm_op_is_built_only_for_several_ranks(monkeypatch, world, builds):
    ds_torch = importlib.import_module("deepspeed.comm.torch")
    import deepspeed

    original = ds_torch.build_shm_op
    seen = []
    monkeypatch.setattr(deepspeed, "init_distributed", lambda **kw: seen.append(ds_torch.build_shm_op is original))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    dist.init_distributed()
    assert seen == [builds]
    assert ds_torch.build_shm_op is original  # restored for whoever starts DeepSpeed next
