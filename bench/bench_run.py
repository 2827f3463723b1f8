"""A whole training run as a user starts it, timed, with its peak memory, as JSON.

Runs `hypermask train BENCHMARK --method M --seed N` in a child process (a temporary results
folder and, unless --no-tracking, a temporary MLflow SQLite store, so nothing of the
checkout's is touched), then reports the wall time, the run's own seconds per iteration
(metrics.json, validation excluded) and the child's peak RSS (getrusage of the children).

    python bench/bench_run.py fmnist_permuted --threads 2            # with MLflow
    python bench/bench_run.py fmnist_permuted --threads 2 --no-tracking
    python bench/bench_run.py fmnist_permuted --threads 2 --hypermask /tmp/cpu/bin/hypermask

--hypermask runs another environment's command (e.g. one with PyTorch's CPU build instead of
PyPI's CUDA build, docs/performance.md, "Memory"); the output names the torch the run itself used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benchmark")
    ap.add_argument("--method", default="hypermask")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-tracking", action="store_true")
    ap.add_argument(
        "--hypermask", default=None, help="the `hypermask` command to run (default: this environment's)"
    )
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    hypermask = Path(a.hypermask) if a.hypermask else Path(sys.executable).parent / "hypermask"
    if not hypermask.is_file():
        sys.exit(f"--hypermask: {hypermask} is not a file")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(hypermask),
            "train",
            a.benchmark,
            "--method",
            a.method,
            "--seed",
            str(a.seed),
            "--quiet",
            "--threads",
            str(a.threads),
            "--results",
            tmp,
        ]
        cmd += ["--no-tracking"] if a.no_tracking else ["--tracking-uri", f"sqlite:///{tmp}/mlflow.db"]
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        metrics = json.loads(
            (Path(tmp) / "runs" / a.benchmark / a.method / f"seed_{a.seed}" / "metrics.json").read_text()
        )
    print(
        json.dumps(
            {
                "machine": describe(),
                "command": f"hypermask train {a.benchmark} --method {a.method} --seed {a.seed} --quiet --threads {a.threads}"
                + (" --no-tracking" if a.no_tracking else " --tracking-uri sqlite:///TMP/mlflow.db"),
                "benchmark": a.benchmark,
                "method": a.method,
                "seed": a.seed,
                "threads": a.threads,
                "tracking": not a.no_tracking,
                "wall_seconds": round(wall, 2),
                "run_wall_seconds": metrics["wall_seconds"],
                "ms_per_iteration": round(1e3 * metrics["seconds_per_iteration"], 3),
                "average_accuracy": metrics["average_accuracy"],
                "run_torch": metrics[
                    "torch_version"
                ],  # the torch the run used (--hypermask: another environment's)
                "accuracy_matrix": metrics["accuracy_matrix"],
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
