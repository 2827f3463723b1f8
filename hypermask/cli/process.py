"""The `hypermask` command as a process: the settings it gives itself before torch is loaded
(OpenMP's wait policy, MLflow's HTTP retries, glibc's large-block settings for the benchmarks
that need them, by starting itself again once).
"""

from __future__ import annotations

import contextlib
import os
import sys

from hypermask.cli.commands import experiment_of, cmd_sweep, cmd_train
from hypermask.cli.main import main
from hypermask.cli.parser import build_parser
from hypermask.config import (
    read_params,
    split_name,
)


# What the `hypermask` command sets for itself before torch loads, unless the environment sets it
# (entry()'s docstring says why; bench/bench_contention.py measures the OpenMP part). The two
# OpenMP settings go together: only where neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set.
PROCESS_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "2000", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
OPENMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def entry() -> None:
    """The `hypermask` command.

    OpenMP's worker threads wait for the next parallel region; how they wait decides a step's
    time alone and beside another CPU-bound process (bench/bench_contention.py, fmnist_permuted,
    2 threads, docs/performance.md). libgomp's default (spin 300,000 times, then sleep) is fast
    alone and collapses beside a busy process (the spinning thread holds a core the other
    needs); PASSIVE (sleep at once) holds up beside it but pays a wake-up per parallel region
    alone (1.9x the fastest alone on the Intel Xeon, 1.8x on the AMD EPYC). A short spin,
    GOMP_SPINCOUNT=2000, covers the gaps between the step's back-to-back regions and sleeps
    through anything longer: on the Xeon 1.04-1.26x the fastest alone and 1.7-2.1x its own
    time beside the busy process. libgomp (PyPI's torch) takes an explicit GOMP_SPINCOUNT over
    the policy's; other OpenMP runtimes ignore it and sleep at once (PASSIVE), the fallback.
    Both are read when torch loads its OpenMP runtime, so they are set here, before any import
    of torch, for this process only, and only where the environment sets neither.

    MLflow retries a request to a tracking server 7 times with backoff by default: a log call
    to a server that is gone took 245.7 s before it failed, and a run flushes once per task.
    A run keeps what it could not log and tries again at the next task and at its end
    (tracking.Tracker.flush), so the command allows 3 retries (13.2 s; MLflow 3.17); an
    MLFLOW_HTTP_REQUEST_MAX_RETRIES in the environment wins."""

    own_openmp = any(k in os.environ for k in OPENMP_KEYS)  # a user's own OpenMP setting wins, whole
    for key, value in PROCESS_DEFAULTS.items():
        if not (own_openmp and key in OPENMP_KEYS):
            os.environ.setdefault(key, value)
    _keep_freed_memory(sys.argv[1:])
    sys.exit(main())


def _keep_freed_memory(argv: list[str]) -> None:
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
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            args = build_parser().parse_args(argv)  # main() parses again and prints help or errors once
        if args.func not in (cmd_train, cmd_sweep):
            return
        benchmark = split_name(experiment_of(args))[0]
        if benchmark not in read_params(args.params).pipeline.keep_freed_memory:
            return
    except (SystemExit, Exception):  # noqa: BLE001  (main() parses again and reports)
        return
    os.environ.update(settings)
    os.execv(sys.executable, [sys.executable, "-m", "hypermask.cli", *argv])
