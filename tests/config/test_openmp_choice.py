"""The `hypermask` command's OpenMP wait (hypermask/cli/process.py): spin where the CPUs were idle
as it started, sleep after a short spin where other processes kept them busy, a user's own
setting whole; read from the real /proc/stat beside a real busy process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from hypermask.cli.process import BUSY_CPUS, CPUS_BUSY_KEY, SHARED_OPENMP, cpus_busy, openmp_settings

linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")


def test_a_users_own_openmp_setting_wins_whole():
    assert openmp_settings({"OMP_WAIT_POLICY": "ACTIVE"}, look=True) == {}
    assert openmp_settings({"GOMP_SPINCOUNT": "10"}, look=True) == {}


def test_a_reading_in_the_environment_decides_without_looking():
    """A restart of the command (glibc's settings) keeps its first reading; 0.49 of a CPU is
    idle enough to spin (OpenMP's default: nothing set), 0.5 is shared."""
    assert openmp_settings({CPUS_BUSY_KEY: f"{BUSY_CPUS - 0.01:.2f}"}, look=True) == {}
    assert openmp_settings({CPUS_BUSY_KEY: f"{BUSY_CPUS:.2f}"}, look=True) == SHARED_OPENMP
    assert openmp_settings({CPUS_BUSY_KEY: "1.97"}, look=False) == SHARED_OPENMP


def test_a_reading_that_is_no_number_is_named():
    from hypermask.config import ConfigError

    with pytest.raises(
        ConfigError, match=f"environment variable {CPUS_BUSY_KEY}='lots': Input should be a valid number"
    ):
        openmp_settings({CPUS_BUSY_KEY: "lots"}, look=True)


def test_without_looking_the_command_sleeps_after_a_short_spin():
    """Other commands and `train --threads 1` (no worker thread to wait) take the shared setting."""
    assert openmp_settings({}, look=False) == SHARED_OPENMP


@linux_only
def test_a_busy_process_beside_it_is_seen():
    """A pure-Python loop keeps one CPU busy: the reading finds at least half a CPU busy, the
    command sleeps after a short spin and records the reading; with the loop gone the reading
    drops by about that CPU."""
    busy = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.5)
        chosen = openmp_settings({}, look=True)
        loaded = float(chosen[CPUS_BUSY_KEY])
    finally:
        busy.kill()
        busy.wait()
    assert loaded >= BUSY_CPUS
    assert {k: chosen[k] for k in SHARED_OPENMP} == SHARED_OPENMP
    after = cpus_busy(0.3)
    assert after is not None and 0.0 <= after <= len(os.sched_getaffinity(0))
    assert after < loaded - 0.5


def test_the_choice_reaches_the_run_record(tmp_path):
    """`hypermask train` with two threads and no OpenMP setting of the user's records the CPUs it
    found busy and the wait it chose; with one thread it does not look."""
    import json
    from pathlib import Path

    from conftest import TINY, write_params

    p = write_params(tmp_path / "params.yaml", TINY)
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", CPUS_BUSY_KEY)
    }
    hypermask = str(Path(sys.executable).parent / "hypermask")

    def settings(threads: int) -> dict:
        out = tmp_path / f"t{threads}"
        subprocess.run(
            [
                hypermask,
                "--params",
                str(p),
                "train",
                "tiny",
                "--method",
                "finetune",
                "--seed",
                "1",
                "--no-tracking",
                "--quiet",
                "--threads",
                str(threads),
                "--results",
                str(out),
            ],
            check=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
        )
        return json.loads((out / "runs" / "tiny" / "finetune" / "seed_1" / "metrics.json").read_text())[
            "process_settings"
        ]

    two = settings(2)
    busy = float(two[CPUS_BUSY_KEY])
    if busy < BUSY_CPUS:
        assert "OMP_WAIT_POLICY" not in two and "GOMP_SPINCOUNT" not in two
    else:
        assert {k: two[k] for k in SHARED_OPENMP} == SHARED_OPENMP
    one = settings(1)
    assert CPUS_BUSY_KEY not in one and {k: one[k] for k in SHARED_OPENMP} == SHARED_OPENMP
