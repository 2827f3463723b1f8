"""A training step alone and beside one other CPU-bound process, side by side, as JSON.

Runs `bench_train_step.py --one` for a configuration alone, then again while a busy process
that this script starts (and stops) runs on the same cores: by default another 2-thread
torch process doing matrix products, the ordinary case of two jobs on a 2-core machine.
Each environment variant (e.g. the OpenMP wait policy) is measured both ways.

    python bench/bench_contention.py                        # fmnist_permuted, 2 threads
    python bench/bench_contention.py --configs digits_permuted --threads 2 --busy python

Variants: the `hypermask` command's own choice (hypermask/cli/process.py: it reads how busy the
CPUs are as it starts, here just before each measured process starts, and picks the wait from
that; the choice is recorded per round), OpenMP's default, ACTIVE, PASSIVE, libgomp's spin
counts, and one thread; the busy process runs with OpenMP's default in every variant; `alone_vs_best` is each variant alone
against the fastest variant alone, `slowdown` its step beside the busy process against alone.
With `--rounds N` every variant is measured once per round and reported by its median over the
rounds (the 2-core VMs drift by tens of percent within minutes; a variant measured first and
alone in time can look 1.7x slower than the same settings a minute later).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402  (bench/machine.py)

from hypermask.cli.process import CPUS_BUSY_KEY, openmp_settings  # noqa: E402

STEP = Path(__file__).resolve().parent / "bench_train_step.py"

BUSY = {
    # another training-like process: 2-thread float32 matrix products, forever
    "torch": "import torch\ntorch.set_num_threads(2)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n",
    # a single-threaded pure-Python loop
    "python": "while True:\n    pass\n",
}
VARIANTS = {
    # what the `hypermask` command chooses as it starts (hypermask/cli/process.py): read at launch
    "hypermask_command": None,
    "default": {},
    "omp_active": {"OMP_WAIT_POLICY": "ACTIVE"},
    "one_thread": {},  # torch.set_num_threads(1): no OpenMP worker, nothing to wake
    "omp_passive": {"OMP_WAIT_POLICY": "PASSIVE"},  # the command's choice where the CPUs are busy
    # libgomp's spin before sleeping (300,000 spins unset, 0 with PASSIVE): PASSIVE and 300 spins
    # could not be told apart alone on the 2-core EPYC (run-to-run noise ~10 %); 10,000 collapses
    "gomp_spin_300": {"GOMP_SPINCOUNT": "300"},
    "gomp_spin_1k": {"GOMP_SPINCOUNT": "1000"},
    "gomp_spin_2k": {"GOMP_SPINCOUNT": "2000"},
    "gomp_spin_3k": {"GOMP_SPINCOUNT": "3000"},
    "gomp_spin_5k": {"GOMP_SPINCOUNT": "5000"},
    "gomp_spin_10k": {"GOMP_SPINCOUNT": "10000"},
    # libgomp takes an explicit GOMP_SPINCOUNT over the wait policy's spin count; other OpenMP
    # runtimes (Intel's) ignore GOMP_SPINCOUNT and take the policy. The command's setting for
    # every run until it looked at the CPUs first
    "passive_spin_2k": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "2000"},
}


def env_of(variant: str) -> dict[str, str]:
    """The variant's environment; the command's own is what it would choose if it started now."""
    if VARIANTS[variant] is not None:
        return VARIANTS[variant]
    return openmp_settings({k: v for k, v in os.environ.items() if k != CPUS_BUSY_KEY}, look=True)


def threads_of(variant: str, threads: int) -> int:
    return 1 if variant == "one_thread" else threads


def step_seconds(config: str, threads: int, env: dict[str, str], repeats: int) -> dict:
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
        "50",
        "--warmup",
        "20",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=1800
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def add_ratios(rows: list[dict]) -> None:
    """Each variant alone against the fastest variant alone (`alone_vs_best`: of the medians over
    rounds), and paired within rounds: per round, its time alone against the fastest variant's in
    that round and its time beside the busy process against its own alone, each the median over
    rounds (`alone_vs_best_per_round`, `slowdown_per_round`). The VM drifts between rounds (2x in
    a quarter of an hour has been seen); the paired ratios keep the drift between rounds out."""
    for config in {r["config"] for r in rows}:
        mine = [r for r in rows if r["config"] == config]
        best = min(r["alone_ms"] for r in mine)
        n = min(len(r["alone_ms_rounds"]) for r in mine)
        fastest = [min(r["alone_ms_rounds"][i] for r in mine) for i in range(n)]
        for r in mine:
            r["alone_vs_best"] = r["alone_ms"] / best
            r["alone_vs_best_per_round"] = statistics.median(
                r["alone_ms_rounds"][i] / fastest[i] for i in range(n)
            )
            r["slowdown_per_round"] = statistics.median(
                b / a for a, b in zip(r["alone_ms_rounds"], r["with_busy_process_ms_rounds"])
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="*", default=["fmnist_permuted"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--busy", choices=sorted(BUSY), default="torch")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every variant once per round, rounds one after the other, and report each "
        "variant's median over rounds (a VM's speed drifts within minutes: interleaving keeps "
        "the drift out of the comparison)",
    )
    a = ap.parse_args()
    times: dict[tuple[str, str], dict[str, list[float]]] = {}
    for _ in range(a.rounds):
        for config in a.configs:
            for variant in a.variants:
                threads = threads_of(variant, a.threads)
                env_alone = env_of(variant)
                alone = step_seconds(config, threads, env_alone, a.repeats)
                busy = subprocess.Popen([sys.executable, "-c", BUSY[a.busy]], env=os.environ)
                try:
                    time.sleep(3)  # let it load torch and start
                    env_busy = env_of(variant)
                    loaded = step_seconds(config, threads, env_busy, a.repeats)
                finally:
                    busy.kill()
                    busy.wait()
                t = times.setdefault(
                    (config, variant), {"alone": [], "busy": [], "env_alone": [], "env_busy": []}
                )
                t["alone"].append(alone["sec_per_iter_median"] * 1e3)
                t["busy"].append(loaded["sec_per_iter_median"] * 1e3)
                t["env_alone"].append(env_alone)
                t["env_busy"].append(env_busy)
    rows = []
    for (config, variant), t in times.items():
        alone_ms, busy_ms = statistics.median(t["alone"]), statistics.median(t["busy"])
        rows.append(
            {
                "config": config,
                "variant": variant,
                "env": VARIANTS[variant]
                if VARIANTS[variant] is not None
                else "chosen at launch (env_alone_rounds, env_busy_rounds)",
                "threads": threads_of(variant, a.threads),
                "busy": a.busy,
                "alone_ms": alone_ms,
                "with_busy_process_ms": busy_ms,
                "slowdown": busy_ms / alone_ms,
                "rounds": a.rounds,
                "alone_ms_rounds": t["alone"],
                "with_busy_process_ms_rounds": t["busy"],
                "env_alone_rounds": t["env_alone"],
                "env_busy_rounds": t["env_busy"],
            }
        )
    add_ratios(rows)
    print(
        json.dumps(
            {
                "machine": describe(),
                "python": platform.python_version(),
                "command": " ".join(sys.argv),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
