"""bench/rollout.py runs small in the suite, so it cannot rot: its raw-generate replay must
produce exactly the framework's tokens (the script asserts it) or its ratio means nothing, and
its verdict must follow the per-repeat ratios."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rollout_benchmark_replays_the_frameworks_tokens():
    cmd = [sys.executable, "bench/rollout.py", "--games", "1", "2", "--repeats", "2", "--claim", "0", "--single-up-to", "1", "--max-new-tokens", "8"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("  held ") for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and all(len(r) == 2 for r in rows), result.stdout  # every ratio >= 0: the claim holds
    numbers = [[float(x) for x in r[0].split()] for r in rows]
    assert [n[0] for n in numbers] == [1, 2], result.stdout
    assert all(x > 0 for n in numbers for x in n[1:]), result.stdout  # tokens/s and ratios
    assert all(n[3] <= n[4] <= n[5] for n in numbers), result.stdout  # min <= median <= max
    assert all(r[1].startswith("(2/2 repeats") for r in rows), result.stdout
