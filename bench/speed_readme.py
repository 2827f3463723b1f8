"""The README's "Speed on the CI machine" block, written from the benches' JSON (never typed).

    python bench/bench_train_step.py --configs fmnist_permuted fmnist_split --threads 2 > bench/results/speed_step.json
    python bench/bench_contention.py --configs fmnist_permuted digits_permuted --threads 2 --repeats 3 \
        --variants default omp_passive gomp_spin_3k > bench/results/speed_contention.json
    python bench/bench_gemm.py --threads 2 > bench/results/speed_gemm.json
    python bench/bench_run.py fmnist_permuted --threads 2 > bench/results/speed_run.json
    python bench/bench_run.py fmnist_permuted --threads 2 --hypermask CPU_VENV/bin/hypermask > bench/results/speed_run_cpu_build.json
    python bench/bench_percentile.py --threads 2 > bench/results/speed_percentile.json
    python bench/speed_readme.py            # rewrites the block between <!-- speed --> and <!-- end speed -->
    python bench/speed_readme.py --check    # exit 1 if the README's block differs from the JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- speed -->", "<!-- end speed -->"


def _load(name: str):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(m: dict) -> str:
    env = ", ".join(f"{k}={v}" for k, v in m.get("thread_env", {}).items()) or "no thread variables set"
    return (f"{m['cpu']}, {m['logical_cpus']} logical CPUs ({'/'.join(m['vector_extensions'])}); torch {m['torch']}, "
            f"ATen CPU capability {m['aten_cpu_capability']}, BLAS {m['blas']} {m.get('mkl_version') or ''} "
            f"(MKL reports: \"{m.get('mkl_code_path') or 'n/a'}\"), oneDNN {m['onednn']}, "
            f"{m['torch_threads']} torch threads; {env}")


def render() -> str:
    out: list[str] = []
    step = _load("speed_step.json")
    if step:
        out += [f"Training step (`bench/bench_train_step.py`), on {machine_line(step['machine'])}:", "",
                "| configuration | ms/iteration, median [min, max] | Adam step alone | evaluation of all tasks | peak RSS |",
                "|---|---|---|---|---|"]
        for r in step["results"]:
            if "error" in r:
                continue
            out.append(f"| `{r['config']}` ({r['method']}) | {1e3 * r['sec_per_iter_median']:.2f} "
                       f"[{1e3 * r['sec_per_iter_min']:.2f}, {1e3 * r['sec_per_iter_max']:.2f}] | "
                       f"{1e3 * r['optimizer_step_seconds']:.2f} ms | {r['eval_all_tasks_seconds']:.2f} s | "
                       f"{r['peak_rss_mb'] / 1024:.2f} GB |")
        out.append("")
    runs = [r for r in (_load("speed_run.json"), _load("speed_run_cpu_build.json")) if r]
    if runs:
        out += [f"Whole run, as a user starts it (`bench/bench_run.py`), on {machine_line(runs[0]['machine'])}:", "",
                "| command | torch in the run | MLflow | wall | ms/iteration (validation excluded) | peak RSS | average accuracy |",
                "|---|---|---|---|---|---|---|"]
        for run in runs:
            out.append(f"| `{run['command']}` | {run.get('run_torch', run['machine']['torch'])} | "
                       f"{'on' if run['tracking'] else 'off'} | {run['wall_seconds']:.1f} s | "
                       f"{run['ms_per_iteration']:.2f} | {run['peak_rss_gb']:.2f} GB | {run['average_accuracy']:.2f} |")
        if len(runs) == 2 and runs[0].get("accuracy_matrix") is not None:
            same = runs[0]["accuracy_matrix"] == runs[1].get("accuracy_matrix")
            out.append(f"\nThe two runs' accuracy matrices are {'identical' if same else 'different'}.")
        out.append("")
    gemm = _load("speed_gemm.json")
    if gemm:
        out += [f"The step's matrix products (`bench/bench_gemm.py`, {gemm['threads']} threads; measured peak "
                f"{gemm['peak_gemm_gflops']} GFLOP/s on a 2048² product, copy bandwidth "
                f"{gemm['copy_bandwidth_gb_s']} GB/s):", "",
                "| product | m×k×n | operands | torch (MKL) | numpy (OpenBLAS) | floor | bound by |",
                "|---|---|---|---|---|---|---|"]
        for r in gemm["products"]:
            floor = max(r["compute_floor_us"], r["memory_floor_us"])
            name = r["product"] if r.get("in_step", True) else f"*not in the step:* {r['product']}"
            ops = f"A{'ᵀ' if r.get('a_transposed') else ''}, B{'ᵀ' if r.get('b_transposed') else ''}"
            out.append(f"| {name} | {r['m']}×{r['k']}×{r['n']} | {ops} | {r['torch_us']:.0f} µs | "
                       f"{r['numpy_openblas_us']:.0f} µs | {floor:.0f} µs | {r['bound']} |")
        s = gemm["sum_ms"]
        out += ["", "Aᵀ/Bᵀ: the operand is the transposed view of a row-major tensor, as the step passes it.",
                f"Sum over the step's products: torch {s['torch']:.2f} ms, OpenBLAS {s['numpy']:.2f} ms, "
                f"floor {s['floor']:.2f} ms.", ""]
    pct = _load("speed_percentile.json")
    if pct:
        out += [f"HyperMask's mask thresholds (`bench/bench_percentile.py`, `{pct['config']}`, p = {pct['sparsity']:g}): "
                "one tensor's two neighbouring order statistics", "",
                "| entries | torch.kthvalue + 2 passes | numpy.partition, both ranks | numpy.partition, lower rank + min (used) |",
                "|---|---|---|---|"]
        for r in pct["tensors"]:
            out.append(f"| {r['entries']:,} | {r['torch_kthvalue_and_neighbour_us']:.0f} µs | "
                       f"{r['numpy_partition_both_ranks_us']:.0f} µs | {r['numpy_partition_lower_rank_and_min_us']:.0f} µs |")
        out += ["", f"All thresholds of the step (`thresholds()`): {pct['thresholds_call_us'] / 1e3:.2f} ms.", ""]
    cont = _load("speed_contention.json")
    if cont:
        out += [f"Beside one other CPU-bound process (`bench/bench_contention.py`, a {cont['rows'][0]['busy']} "
                f"process the bench starts and stops), on {machine_line(cont['machine'])}:", "",
                "| configuration | OpenMP settings | alone | with the busy process | slowdown |", "|---|---|---|---|---|"]
        for r in cont["rows"]:
            policy = ", ".join(f"{k}={v}" for k, v in r["env"].items()) or "none (libgomp spins 300,000 times)"
            out.append(f"| `{r['config']}` | {policy} | {r['alone_ms']:.2f} ms | {r['with_busy_process_ms']:.2f} ms | "
                       f"{r['slowdown']:.2f}x |")
        out.append("")
    return "\n".join(out).strip() + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    readme = Path(a.readme)
    text = readme.read_text()
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i:
        sys.exit(f"{readme}: no block {BEGIN} ... {END}")
    new = text[: i + len(BEGIN)] + "\n" + render() + text[j:]
    if a.check:
        sys.exit(0 if new == text else f"{readme}: the speed block differs from bench/results/speed_*.json")
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(readme)


if __name__ == "__main__":
    main()
