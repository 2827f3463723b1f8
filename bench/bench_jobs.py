"""How many training steps per second the pipeline's jobs get from a machine's cores, as JSON:
one job of --threads threads alone (the `hypermask` command's passive OpenMP policy), against
--jobs one-thread jobs running at once (pipeline.threads: 1 with `snakemake --cores N`), each
timing the same step (`bench_train_step.py --one`).

    python bench/bench_jobs.py --configs fmnist_permuted fmnist_split --threads 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402  (bench/machine.py)

STEP = Path(__file__).resolve().parent / "bench_train_step.py"


def _env(config: str) -> dict[str, str]:
    """The job's environment as the `hypermask` command sets it (its OpenMP defaults,
    hypermask/cli/process.py; glibc settings for the benchmarks in pipeline.keep_freed_memory)."""
    from hypermask.cli.process import SHARED_OPENMP
    from hypermask.config import read_params, split_name
    from hypermask.pipeline.plan import keep_freed_memory_env

    env = {**os.environ, **SHARED_OPENMP}  # a pipeline job: one thread, no look at the CPUs
    if split_name(config)[0] in read_params(ROOT / "params.yaml").pipeline.keep_freed_memory:
        env.update(keep_freed_memory_env())
    return env


def steps(config: str, threads: int, copies: int, repeats: int) -> list[float]:
    """Median seconds per step of each of `copies` processes started together."""
    cmd = [
        sys.executable,
        str(STEP),
        "--one",
        "--configs",
        config,
        "--threads",
        str(threads),
        "--repeats",
        str(repeats),
        "--per-repeat",
        "40",
        "--warmup",
        "10",
    ]
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(config)
        )
        for _ in range(copies)
    ]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(se[-2000:])
        out.append(json.loads(so.strip().splitlines()[-1])["sec_per_iter_median"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="*", default=["fmnist_permuted", "fmnist_split"])
    ap.add_argument("--threads", type=int, default=2, help="threads of the single job")
    ap.add_argument("--jobs", type=int, default=2, help="one-thread jobs at once")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rows = []
    for config in a.configs:
        (one_job,) = steps(config, a.threads, 1, a.repeats)
        (alone,) = steps(config, 1, 1, a.repeats)
        together = steps(config, 1, a.jobs, a.repeats)
        rows.append(
            {
                "config": config,
                "threads": a.threads,
                "jobs": a.jobs,
                "one_job_ms": one_job * 1e3,
                "one_thread_alone_ms": alone * 1e3,
                "one_thread_jobs_ms": [t * 1e3 for t in together],
                "steps_per_second_one_job": 1 / one_job,
                "steps_per_second_jobs": sum(1 / t for t in together),
                "throughput_ratio": sum(1 / t for t in together) * one_job,
            }
        )
    print(json.dumps({"machine": describe(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
