"""The matrix products of a HyperMask step on fmnist_permuted, each against its floor, as JSON.

For each product the trainer runs per iteration (shapes from `bench_train_step.py --profile`
with shapes recorded: the hypernetwork output layer 25 -> 113,610 for the current and one
earlier task, also in nn.Linear's layout for comparison, the target MLP 1024-100-100-10 on a batch of 128): its time through torch
(MKL here) and through numpy (OpenBLAS), the time its arithmetic takes at the machine's
measured peak GEMM rate (a large square product), and the time its bytes take at the
machine's measured copy bandwidth. The larger of the two floors is what bounds it.

    python bench/bench_gemm.py --threads 2
    python bench/bench_gemm.py --threads 1 --by-task fmnist_permuted fmnist_split

`--by-task` times instead the hypernetwork output layer's three products as the step runs them
on each task of the given benchmarks: task t stacks its own and the t earlier embeddings, so
the products have t + 1 rows (forward `addmm(b, h, W)`, hidden grad `g @ W.t()`, weight grad
`h.t() @ g`, with W stored (hidden, n) as `WideLinear` holds it), each with its arithmetic rate
and its floor (the larger of its arithmetic at the peak GEMM rate and its bytes at the copy
bandwidth).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

# (name, m, k, n, a_t, b_t): C[m, n] = A[m, k] @ B[k, n], where a_t / b_t mean the operand is the
# transposed view of a row-major tensor, as the step hands it to the BLAS (F.linear's W.t(),
# autograd's g.t()). The hypernetwork's output weight is stored (25, n) (WideLinear).
STEP_PRODUCTS = [
    ("hnet output forward (2 embeddings)", 2, 25, 113_610, False, False),
    ("hnet output backward, hidden grad", 2, 113_610, 25, False, True),
    ("hnet output backward, weight grad", 25, 2, 113_610, True, False),
    ("  the same, weight stored (n, 25) as nn.Linear: forward", 2, 25, 113_610, False, True),
    ("  hidden grad", 2, 113_610, 25, False, False),
    ("  weight grad", 113_610, 2, 25, True, False),
    ("target layer 1 forward", 128, 1024, 100, False, True),
    ("target layer 1 weight grad", 100, 128, 1024, True, False),
    ("target layer 2 forward", 128, 100, 100, False, True),
    ("target layer 3 forward", 128, 100, 10, False, True),
]
IN_STEP = {name for name, *_ in STEP_PRODUCTS if not name.startswith(" ")}


def operand(rows: int, cols: int, transposed: bool):
    import torch

    return torch.randn(cols, rows).t() if transposed else torch.randn(rows, cols)


def best_of(f, repeats: int, inner: int) -> float:
    for _ in range(3):
        f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def output_layer_shape(benchmark: str) -> tuple[int, int, int]:
    """(tasks, hidden, n) of HyperMask's hypernetwork output layer on a benchmark of params.yaml,
    from the method built as the trainer builds it."""
    import torch
    from tasks import bench_tasks

    from hypermask.config import load_experiment
    from hypermask.methods import build_method, heads_of
    from hypermask.nets import build_target

    cfg = load_experiment(ROOT / "params.yaml", benchmark)  # HyperMask, the default method
    tasks, _ = bench_tasks(cfg, torch.device("cpu"))
    shape = tuple(tasks[0].inputs(tasks[0].train.x[:1]).shape[1:])
    target = build_target(cfg.target, shape, max(t.n_classes for t in tasks), len(tasks), heads_of(cfg))
    hid, n = build_method(cfg, target).hnet.out.weight_t.shape
    return len(tasks), hid, n


def by_task(benchmarks: list[str], peak: float, bandwidth: float, repeats: int) -> list[dict]:
    """The output layer's three products at each task (t + 1 rows), as the step runs them."""
    import torch

    rows = []
    for bench in benchmarks:
        n_tasks, hid, n = output_layer_shape(bench)
        w, b = torch.randn(hid, n), torch.randn(n)
        for t in range(n_tasks):
            r = t + 1
            h, g = torch.randn(r, hid), torch.randn(r, n)
            products = {
                "forward": (lambda b=b, h=h, w=w: torch.addmm(b, h, w), 4 * (hid * n + 2 * r * n)),
                "hidden_grad": (lambda g=g, w=w: g @ w.t(), 4 * (hid * n + r * n)),
                "weight_grad": (lambda h=h, g=g: h.t() @ g, 4 * (hid * n + r * n)),
            }
            row = {"benchmark": bench, "task": t, "rows": r, "hidden": hid, "n": n}
            for name, (f, moved) in products.items():
                sec = best_of(f, repeats, 3)
                flops = 2 * r * hid * n
                row[name] = {
                    "us": round(sec * 1e6, 1),
                    "gflops": round(flops / sec / 1e9, 1),
                    "floor_us": round(max(flops / peak, moved / bandwidth) * 1e6, 1),
                }
            row["sum_ms"] = round(sum(row[k]["us"] for k in products) / 1e3, 3)
            row["floor_sum_ms"] = round(sum(row[k]["floor_us"] for k in products) / 1e3, 3)
            rows.append(row)
    return rows


def keep_freed_memory() -> None:
    """Run as the pipeline runs these benchmarks' jobs (pipeline.keep_freed_memory): glibc keeps
    freed large blocks, so a new 47 MB weight gradient is not page-faulted in at every call
    (without it the fmnist_split weight gradient took 22-32 ms instead of 3-10 ms). glibc reads
    the settings at process start: the bench starts itself again once with them."""
    from hypermask.pipeline.plan import keep_freed_memory_env

    settings = keep_freed_memory_env()
    if not any(k in os.environ for k in settings):
        os.environ.update(settings)
        os.execv(sys.executable, [sys.executable, *sys.argv])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--by-task",
        nargs="+",
        metavar="BENCHMARK",
        help="time the hypernetwork output layer's products on each task of these benchmarks",
    )
    a = ap.parse_args()
    if a.by_task:
        keep_freed_memory()
    import torch

    torch.set_num_threads(a.threads)
    from machine import describe

    big = torch.randn(2048, 2048)
    peak = 2 * 2048**3 / best_of(lambda: big @ big, a.repeats, 3)  # flop/s, MKL
    src = torch.randn(64 * 2**20 // 4)
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / best_of(lambda: dst.copy_(src), a.repeats, 5)  # bytes/s, read + write
    if a.by_task:
        print(
            json.dumps(
                {
                    "machine": describe(),
                    "threads": a.threads,
                    "peak_gemm_gflops": round(peak / 1e9, 1),
                    "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1),
                    "environment": " ".join(
                        f"{k}={os.environ[k]}" for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
                    ),
                    "by_task": by_task(a.by_task, peak, bandwidth, a.repeats),
                },
                indent=2,
            )
        )
        return
    rows = []
    total = {"torch": 0.0, "numpy": 0.0, "floor": 0.0}
    for name, m, k, n, a_t, b_t in STEP_PRODUCTS:
        x, y = operand(m, k, a_t), operand(k, n, b_t)
        xn, yn = x.numpy(), y.numpy()
        inner = max(1, int(2e7 // (m * k * n + m * n + k * n)))
        t_torch = best_of(lambda x=x, y=y: x @ y, a.repeats, inner)
        t_numpy = best_of(lambda xn=xn, yn=yn: xn @ yn, a.repeats, inner)
        flops = 2 * m * k * n
        moved = 4 * (m * k + k * n + m * n)
        floor = max(flops / peak, moved / bandwidth)
        rows.append(
            {
                "product": name.strip(),
                "in_step": name in IN_STEP,
                "m": m,
                "k": k,
                "n": n,
                "a_transposed": a_t,
                "b_transposed": b_t,
                "torch_us": round(t_torch * 1e6, 1),
                "numpy_openblas_us": round(t_numpy * 1e6, 1),
                "compute_floor_us": round(flops / peak * 1e6, 1),
                "memory_floor_us": round(moved / bandwidth * 1e6, 1),
                "bound": "compute" if flops / peak > moved / bandwidth else "memory",
                "torch_over_floor": round(t_torch / floor, 2),
            }
        )
        if name in IN_STEP:
            total["torch"] += t_torch
            total["numpy"] += t_numpy
            total["floor"] += floor
    print(
        json.dumps(
            {
                "machine": describe(),
                "threads": a.threads,
                "peak_gemm_gflops": round(peak / 1e9, 1),
                "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1),
                "products": rows,
                "sum_ms": {k: round(v * 1e3, 3) for k, v in total.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
