"""Thread policy: the usable cores split over the ranks on a host, idle OpenMP threads that
sleep instead of spin when the host is shared, and the user's OMP_NUM_THREADS /
OMP_WAIT_POLICY left alone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vzframe.dist import ThreadPolicy, local_world_size, thread_policy, usable_cpus

ROOT = Path(__file__).resolve().parents[1]
OMP_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "LOCAL_WORLD_SIZE", "LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE")


@pytest.mark.parametrize(
    "cpus, ranks, threads",
    [(2, 1, 2), (2, 2, 1), (16, 8, 2), (2, 4, 1), (3, 2, 1), (1, 1, 1)],
)
def test_cores_are_split_over_the_local_ranks(cpus, ranks, threads):
    assert thread_policy(cpus, ranks, {}, load=2.0) == ThreadPolicy(threads, "PASSIVE")
    assert thread_policy(cpus, ranks, {}).threads == threads


def test_idle_threads_sleep_only_on_a_shared_host():
    assert thread_policy(2, 1, {}, load=0.1).wait_policy == ""  # idle, one rank: OpenMP's default
    assert thread_policy(2, 1, {}, load=0.5).wait_policy == "PASSIVE"  # another process computes
    assert thread_policy(4, 2, {}, load=0.0).wait_policy == "PASSIVE"  # ranks share the host


def test_the_users_settings_win():
    env = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    assert thread_policy(16, 8, env) == ThreadPolicy(3, "ACTIVE")
    assert thread_policy(2, 1, {"OMP_WAIT_POLICY": "ACTIVE"}) == ThreadPolicy(2, "ACTIVE")
    assert thread_policy(2, 1, {"OMP_NUM_THREADS": "1"}, load=1.0) == ThreadPolicy(1, "PASSIVE")
    assert thread_policy(2, 1, {"OMP_NUM_THREADS": "many"}, load=1.0) == ThreadPolicy(2, "PASSIVE")  # not a number: ours


@pytest.mark.parametrize(
    "env, size",
    [({}, 1), ({"LOCAL_WORLD_SIZE": "4"}, 4), ({"LOCAL_SIZE": "2"}, 2), ({"OMPI_COMM_WORLD_LOCAL_SIZE": "8"}, 8)],
)
def test_local_world_size_from_any_launcher(env, size):
    assert local_world_size(env) == size


def cli_threads(env: dict[str, str]) -> tuple[int, str]:
    """torch's thread count and the wait policy in a process that entered through the CLI's
    ``main`` and imported torch only afterwards, as ``vzframe run`` does."""
    code = (
        "import os; from vzframe.cli import main; main(['run', '--help-config']); import torch; "
        "from vzframe.dist import busy_cores; "
        "print(torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY', 'default'), busy_cores())"
    )
    clean = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    threads, wait, load = result.stdout.splitlines()[-1].split()
    return int(threads), wait, float(load)


@pytest.mark.parametrize(
    "env, ranks",
    [({}, 1), ({"LOCAL_WORLD_SIZE": "2"}, 2), ({"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}, 1)],
)
def test_cli_process_runs_with_the_policy(env, ranks):
    threads, wait, load = cli_threads(env)
    expected = thread_policy(usable_cpus(), ranks, env, load)
    assert threads == expected.threads
    # the load the child saw when it chose may differ a little from the one it printed
    assert wait == (expected.wait_policy or "default") or (not env and wait in ("PASSIVE", "default"))


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="busy_cores samples /proc/stat")
def test_busy_cores_sees_a_process_computing_now():
    from vzframe.dist import busy_cores

    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        import time

        time.sleep(0.5)  # let it start
        busy = busy_cores(1.0)
    finally:
        spin.kill()
        spin.wait()
    assert 0.7 <= busy <= (os.cpu_count() or 1) + 0.01  # one whole core, as the kernel counts it now
