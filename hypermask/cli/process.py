"""The `hypermask` command as a process: the settings it gives itself before torch is loaded
(OpenMP's wait policy, MLflow's HTTP retries, glibc's large-block settings for the benchmarks
that need them, by starting itself again once).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from hypermask.cli.commands import cmd_sweep, cmd_train, experiment_of
from hypermask.cli.main import main
from hypermask.cli.parser import build_parser
from hypermask.config import ConfigError, read_params, split_name
from hypermask.environment import read_environment

# What the `hypermask` command sets for itself before torch loads, unless the environment sets it
# (entry()'s docstring says why).
PROCESS_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
OPENMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# OpenMP's wait where the CPUs are shared: sleep at once (bench/bench_contention.py)
SHARED_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE"}
BUSY_CPUS = 0.5  # CPUs kept busy by other processes at start, at or above which the CPUs count as shared
CPUS_BUSY_KEY = "HYPERMASK_CPUS_BUSY"  # that reading: recorded in metrics.json, passed on to a restart
SAMPLE_SECONDS = 0.2


def entry() -> None:
    """The `hypermask` command.

    OpenMP's worker threads wait for the next parallel region; how they wait decides a step's
    time alone and beside another CPU-bound process (bench/bench_contention.py, fmnist_permuted,
    2 threads, docs/performance.md). Spinning (libgomp's default: 300,000 spins, then sleep) was
    the fastest alone on every day measured and collapses beside a busy process (the spinning
    thread holds a core the other needs: 3.8-4.1x its time alone). Sleeping at once (PASSIVE)
    is the fastest beside a busy process (the other virtual CPU is running, so a wake-up is
    cheap), but alone pays the wake-up of an idle virtual CPU per parallel region (about 50 a
    step), whose cost on these VMs changes from day to day and within minutes: PASSIVE alone
    took 1.0x to 3.7x the fastest, a short spin before sleeping (this command's setting before)
    1.08x to 1.28x. No one setting holds both, and the cause is the hypervisor's wake-up, not the
    step's code (a step fused by torch.compile slept as badly in a trial). So `hypermask train`
    looks before it loads torch: where other processes kept fewer than BUSY_CPUS of its CPUs
    busy over SAMPLE_SECONDS (/proc/stat) it keeps OpenMP's default, else (or where that cannot
    be read) it sleeps (SHARED_OPENMP); the reading is recorded as HYPERMASK_CPUS_BUSY. A
    process that starts beside it later is not seen: the run keeps spinning. Other commands
    (`sweep` too: its workers are started side by side, and would each find the CPUs idle), and
    `train` with one thread (`--threads 1` or OMP_NUM_THREADS=1, as the pipeline's jobs run: no
    worker thread to wait), take SHARED_OPENMP without looking. The wait is read when torch loads its OpenMP runtime, so it is set here,
    before any import of torch, for this process only, and only where the environment sets
    neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT. It changes the time of a step, never its numbers.

    MLflow retries a request to a tracking server 7 times with backoff by default: a log call
    to a server that is gone took 245.7 s before it failed, and a run flushes once per task.
    A run keeps what it could not log and tries again at the next task and at its end
    (tracking.Tracker.flush), so the command allows 3 retries (13.2 s; MLflow 3.17); an
    MLFLOW_HTTP_REQUEST_MAX_RETRIES in the environment wins."""

    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        read_environment()  # a bad HYPERMASK_* variable: exit 2, as any bad input, before any work
    except ConfigError as e:
        print(f"hypermask: error: {e}", file=sys.stderr)
        sys.exit(2)
    args = _parsed(sys.argv[1:])
    os.environ.update(
        openmp_settings(
            os.environ,
            args is not None
            and args.func is cmd_train
            and args.threads != 1
            and os.environ.get("OMP_NUM_THREADS") != "1",
        )
    )
    _keep_freed_memory(args, sys.argv[1:])
    sys.exit(main())


def _parsed(argv: list[str]):
    """The command line as main() will read it, or None where it does not parse (main() parses
    again and prints help or errors once)."""
    try:
        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
        ):
            return build_parser().parse_args(argv)
    except (SystemExit, Exception):  # noqa: BLE001  (main() parses again and reports)
        return None


def openmp_settings(environ, look: bool) -> dict[str, str]:
    """The OpenMP wait (and the reading behind it) to add to `environ` (entry()'s docstring):
    nothing where it sets OMP_WAIT_POLICY or GOMP_SPINCOUNT (a user's own setting wins, whole);
    the reading already in HYPERMASK_CPUS_BUSY where there is one (a restart, or a user's own);
    else, with `look`, a reading of the CPUs now; else SHARED_OPENMP."""
    if any(k in environ for k in OPENMP_KEYS):
        return {}
    reading: dict[str, str] = {}
    busy = read_environment(environ).cpus_busy  # validated: ConfigError naming it otherwise
    if busy is None and look:
        busy = cpus_busy(SAMPLE_SECONDS)
        reading = {} if busy is None else {CPUS_BUSY_KEY: f"{busy:.2f}"}
    if busy is not None and busy < BUSY_CPUS:
        return reading
    return {**SHARED_OPENMP, **reading}


def cpus_busy(seconds: float) -> float | None:
    """How many of this process's CPUs other processes kept busy over the next `seconds` (this
    one sleeps meanwhile), from /proc/stat: per CPU, its time in user, nice, system, irq and
    softirq over its whole time (idle, iowait and a hypervisor's steal included), summed over
    the CPUs this process may use. None where that cannot be read."""
    try:
        cpus = {f"cpu{c}" for c in os.sched_getaffinity(0)}
        before = _cpu_times(cpus)
        time.sleep(seconds)
        after = _cpu_times(cpus)
    except (OSError, ValueError, AttributeError):
        return None
    busy, seen = 0.0, 0
    for cpu, b in before.items():
        d = [x - y for x, y in zip(after.get(cpu, b), b)]
        total = sum(d)
        if total > 0:
            seen += 1
            busy += (d[0] + d[1] + d[2] + d[5] + d[6]) / total
    return busy if seen else None


def _cpu_times(cpus: set[str]) -> dict[str, list[int]]:
    """/proc/stat's first 8 times (user nice system idle iowait irq softirq steal) of each CPU."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name in cpus and len(fields) >= 8:
                out[name] = [int(v) for v in fields[:8]]
    return out


def _keep_freed_memory(args, argv: list[str]) -> None:
    """`hypermask train` or `sweep` of a benchmark in pipeline.keep_freed_memory runs with
    glibc's settings that keep freed large blocks (the pipeline's KEEP_FREED_MEMORY), as the
    pipeline runs it, also when typed by hand: where a gradient exceeds glibc's 32 MiB mmap
    limit it is otherwise mapped and page-faulted in again every step. glibc reads them at
    process start, so the command starts itself again once with them set (before torch is
    imported, about 0.1 s). Set either variable to keep your own; anything unreadable here
    is left to main() to report."""
    from hypermask.pipeline.plan import keep_freed_memory_env

    settings = keep_freed_memory_env()
    if any(k in os.environ for k in settings) or not sys.platform.startswith("linux"):
        return
    if args is None or args.func not in (cmd_train, cmd_sweep):
        return
    try:
        benchmark = split_name(experiment_of(args))[0]
        if benchmark not in read_params(args.params).pipeline.keep_freed_memory:
            return
    except (SystemExit, Exception):  # noqa: BLE001  (main() parses again and reports)
        return
    os.environ.update(settings)
    os.execv(sys.executable, [sys.executable, "-m", "hypermask.cli", *argv])
