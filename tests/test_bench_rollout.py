"""bench/rollout.py runs small in the suite, so it cannot rot: its raw-generate replay must
produce exactly the framework's tokens (the script asserts it) or its ratio means nothing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rollout_benchmark_replays_the_frameworks_tokens():
    cmd = [sys.executable, "bench/rollout.py", "--games", "1", "2", "--repeats", "1", "--single-up-to", "1", "--max-new-tokens", "8"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2"], result.stdout
    assert all(float(x) > 0 for r in rows for x in r[1:]), result.stdout  # tokens/s and ratios
