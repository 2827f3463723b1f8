"""HyperMask's mask thresholds on a CPU: each way of finding a tensor's p-th percentile, as JSON.

For the thresholded tensors of a benchmark's target network (fmnist_split: MLP 784-400-400-10,
p = 30), times torch.kthvalue plus the two passes for the upper neighbour (the torch path),
numpy.partition with both ranks at once, numpy.partition with the lower rank and a min over
the values after it (the CPU path, hypermask/methods/shared/percentile.py), and `thresholds()` for the
whole fused vector as the training step calls it.

    python bench/bench_percentile.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="fmnist_split")
    ap.add_argument("--sparsity", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gemm import best_of
    from machine import describe

    from hypermask.config import load_experiment
    from hypermask.methods.shared.percentile import (
        _interpolation,
        _order_stats_numpy,
        _order_stats_torch,
        thresholds,
    )

    torch.set_num_threads(a.threads)
    cfg = load_experiment(ROOT / "params.yaml", a.config)
    if cfg.target.kind != "mlp" or cfg.data.source not in ("mnist", "fashion_mnist"):
        sys.exit(f"{a.config}: this bench takes an MNIST-like benchmark with an MLP target")
    n_in = (28 + 2 * cfg.data.padding) ** 2
    n_out = cfg.data.task_sizes()[0] * (
        cfg.data.n_tasks if cfg.data.scenario == "split" else 1
    )  # split: one head per task
    layer = list(zip([n_in, *cfg.target.hidden], [*cfg.target.hidden, n_out]))
    tensor_sizes = tuple(x for i, o in layer for x in (i * o, o))
    s = (torch.randn(sum(tensor_sizes), generator=torch.Generator().manual_seed(0)) * 0.1).tanh().abs()
    rows = []
    for n in sorted(set(tensor_sizes[:-1]), reverse=True):
        x = s[:n].unsqueeze(0).contiguous()
        lo, hi, _ = _interpolation(n, a.sparsity)
        xn = x.numpy()
        rows.append(
            {
                "entries": n,
                "torch_kthvalue_and_neighbour_us": round(
                    best_of(lambda x=x, lo=lo, hi=hi: _order_stats_torch(x, lo, hi), a.repeats, 10) * 1e6, 1
                ),
                "numpy_partition_both_ranks_us": round(
                    best_of(lambda xn=xn, lo=lo, hi=hi: np.partition(xn, (lo, hi), axis=-1), a.repeats, 10)
                    * 1e6,
                    1,
                ),
                "numpy_partition_lower_rank_and_min_us": round(
                    best_of(lambda x=x, lo=lo, hi=hi: _order_stats_numpy(x, lo, hi), a.repeats, 10) * 1e6, 1
                ),
            }
        )
    whole = best_of(lambda: thresholds(s, tensor_sizes, a.sparsity), a.repeats, 10)
    print(
        json.dumps(
            {
                "machine": describe(),
                "config": a.config,
                "target_tensor_sizes": tensor_sizes,
                "sparsity": a.sparsity,
                "tensors": rows,
                "thresholds_call_us": round(whole * 1e6, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
