"""bench/gpu.py, the GPU benchmark, on tiny shapes on the CPU: every part it measures on a GPU
(rollout, ZeRO-2 and ZeRO-3 training steps, weight sync) runs here too, so it cannot rot."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_gpu_benchmark_runs_on_tiny_shapes(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--peak-tflops", "1", "--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    settings = report["settings"]
    assert list(report["models"]) == ["tiny"]
    for name, parts in report["models"].items():
        assert set(parts) == {"rollout", "zero2", "zero3", "lora"}, parts
        for part, figures in parts.items():
            assert positive(figures.get("tokens_per_s")), (name, part, figures)
            assert positive(figures["sync"]["seconds"]) and positive(figures["sync"]["bytes"]), (name, part)
        # min_new_tokens = max_new_tokens: the rollout's token count is exact
        assert parts["rollout"]["tokens"] == settings["batch"] * settings["new_tokens"]
        for part in ("zero2", "zero3"):
            assert positive(parts[part]["mfu"]) and parts[part]["mfu"] < 1, parts[part]
            assert parts[part]["layers"] == settings["train_layers"][name] < parts[part]["full_layers"]
        assert parts["lora"]["layers"] == parts["lora"]["full_layers"]  # LoRA trains the whole model
        assert 0 < parts["lora"]["trainable"] < parts["lora"]["params"] / 5 and positive(parts["lora"]["mfu"])
    assert "zero3" in result.stdout and "sync GB/s" in result.stdout  # the readable table
