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
# (entry()'s docstring says why; bench/bench_contention.py measures the OpenMP part).
PROCESS_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


def entry() -> None:
    """The `hypermask` command.

    OpenMP's worker threads spin while they wait (OMP_WAIT_POLICY unset): beside one other
    CPU-bound process on a 2-core machine a fmnist_permuted step took 5.7x as long as alone,
    with PASSIVE 1.2x (bench/bench_contention.py; docs/performance.md). The policy is read when
    torch loads its OpenMP runtime, so it is set here, before any import of torch, for this
    process only; an OMP_WAIT_POLICY already in the environment wins.

    MLflow retries a request to a tracking server 7 times with backoff by default: a log call
    to a server that is gone took 245.7 s before it failed, and a run flushes once per task.
    A run keeps what it could not log and tries again at the next task and at its end
    (tracking.Tracker.flush), so the command allows 3 retries (13.2 s; MLflow 3.17); an
    MLFLOW_HTTP_REQUEST_MAX_RETRIES in the environment wins."""

    for key, value in PROCESS_DEFAULTS.items():
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
