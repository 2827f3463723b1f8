"""Whole runs on a GPU, as a user starts them (`hypermask train ... --device cuda`), with the
trainer's CUDA graphs and, for the seeds named by --eager-too, without them
(HYPERMASK_CUDA_GRAPHS=0): accuracy, BWT, wall time and seconds per iteration from each run's
metrics.json, printed as JSON. `--collect` assembles the same JSON from metrics.json files
already written (runs made elsewhere).

    python bench/gpu_runs.py --benchmarks fmnist_permuted fmnist_split --seeds 1 2 3 4 5 --eager-too 1
    python bench/gpu_runs.py --collect RUN_FOLDER ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = (
    "experiment",
    "method",
    "seed",
    "average_accuracy",
    "bwt",
    "accuracy_matrix",
    "wall_seconds",
    "seconds_per_iteration",
    "device",
    "cpu",
    "torch_version",
    "git_commit",
)


def row(metrics: Path, graphs: bool) -> dict:
    m = json.loads(metrics.read_text())
    return {"cuda_graphs": graphs, **{k: m.get(k) for k in FIELDS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", nargs="*", default=["fmnist_permuted", "fmnist_split"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument(
        "--eager-too", nargs="*", type=int, default=[1], help="seeds also run without CUDA graphs"
    )
    ap.add_argument(
        "--collect",
        nargs="*",
        type=Path,
        default=None,
        help="folders holding metrics.json files (a name containing 'eager': run without graphs)",
    )
    a = ap.parse_args()
    rows = []
    if a.collect is not None:
        for folder in a.collect:
            for f in sorted(folder.rglob("metrics.json")):
                rows.append(row(f, "eager" not in str(f.relative_to(folder.parent))))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for bench in a.benchmarks:
                for seed in a.seeds:
                    for graphs in (True, False) if seed in a.eager_too else (True,):
                        out = Path(tmp) / f"{bench}_{seed}_{'graphed' if graphs else 'eager'}"
                        env = {**os.environ, "HYPERMASK_CUDA_GRAPHS": "1" if graphs else "0"}
                        cmd = [
                            sys.executable,
                            "-m",
                            "hypermask.cli",
                            "train",
                            bench,
                            "--seed",
                            str(seed),
                            "--device",
                            "cuda",
                            "--no-tracking",
                            "--quiet",
                            "--results",
                            str(out),
                            "--force",
                        ]
                        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
                        if done.returncode != 0:
                            rows.append(
                                {
                                    "experiment": bench,
                                    "seed": seed,
                                    "cuda_graphs": graphs,
                                    "error": done.stderr.strip().splitlines()[-1:],
                                }
                            )
                            continue
                        rows.append(row(next(out.rglob("metrics.json")), graphs))
    print(json.dumps({"runs": rows}, indent=1))


if __name__ == "__main__":
    main()
