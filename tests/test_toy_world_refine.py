"""examples/toy_world_refine.py (docs/toy-world.md "Refining a base"): a few refine steps of the
shipped toy model change its language model and nothing of its vision tower, the stamp says
what was done and carries the refined model's own held-out figures, and bad arguments are
refused before any work."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from plugins.toy_world.build import TOY_MODEL_DIR

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "toy_world_refine.py"


def refine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return {k: v for f in sorted(model_dir.glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.mark.slow
def test_refining_trains_the_language_model_and_restamps_the_figures(tmp_path):
    out = tmp_path / "refined"
    result = refine(str(TOY_MODEL_DIR), str(out), "--seed", "7", "--steps", "3", "--heldout-games", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = weights(TOY_MODEL_DIR), weights(out)
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(k.startswith("model.visual.") for k in changed), sorted(changed)[:5]
    source = json.loads((TOY_MODEL_DIR / "vzframe-toy.json").read_text())
    stamp = json.loads((out / "vzframe-toy.json").read_text())
    assert stamp["refined"]["seed"] == 7 and stamp["refined"]["steps"] == 3 and stamp["refined"]["from"] == str(TOY_MODEL_DIR)
    assert [h["stage"] for h in stamp["refined"]["history"]] == ["fine"] and stamp["refined"]["history"][-1]["step"] == 3
    assert stamp["heldout"]["games"] == 4 != source["heldout"]["games"]  # its own figures, not the source's
    assert stamp["warm_start"] == source["warm_start"] and stamp["probe_formats"] == source["probe_formats"]


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    result = refine(str(TOY_MODEL_DIR), str(taken), "--seed", "7")
    assert result.returncode != 0 and "exists; give a new directory" in result.stderr
    result = refine(str(tmp_path), str(tmp_path / "new"), "--seed", "7")
    assert result.returncode != 0 and "no vzframe-toy.json" in result.stderr
    result = refine(str(TOY_MODEL_DIR), str(tmp_path / "new"), "--seed", "7", "--steps", "0")
    assert result.returncode != 0 and "--steps must be >= 1" in result.stderr
    assert not (tmp_path / "new").exists()
