"""A markdown table (methods x benchmarks) of a bench_train_step.py JSON, for the README.

    python bench/bench_train_step.py --configs fmnist_permuted fmnist_split --threads 2 \\
        --methods hypermask hnet wsn supsup ewc si finetune joint > bench/results/methods_fmnist.json
    python bench/methods_table.py bench/results/methods_fmnist.json
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    data = json.load(open(path))
    machine = data.get("machine", {}) if isinstance(data, dict) else {}  # older files: a bare list
    rows = [r for r in (data["results"] if isinstance(data, dict) else data) if "error" not in r]
    benchmarks = list(dict.fromkeys(r["config"].split("/")[0] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["config"].split("/")[0], r["method"]): r for r in rows}
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hypermask.records.provenance import cpu_model
    print(f"ms per training iteration (median of {rows[0]['repeats']} x {rows[0]['iters_per_repeat']}; Adam step "
          f"alone) and peak RSS, {rows[0]['threads']} threads, torch {rows[0]['torch']}, "
          f"{machine.get('cpu') or rows[0].get('cpu') or cpu_model()}"
          + (f" ({machine['blas']} {machine['mkl_version'] or ''}, ATen {machine['aten_cpu_capability']})" if machine else "")
          + ":\n")
    print("| method | " + " | ".join(benchmarks) + " |")
    print("|---|" + "---|" * len(benchmarks))
    for m in methods:
        cells = []
        for b in benchmarks:
            r = cell.get((b, m))
            cells.append("" if r is None else f"{1000 * r['sec_per_iter_median']:.2f} ms (Adam {1000 * r['optimizer_step_seconds']:.2f}; "
                         f"{r['peak_rss_mb'] / 1024:.2f} GB)")
        print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
