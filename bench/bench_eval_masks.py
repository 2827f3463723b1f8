"""Evaluating all T tasks' masks on test sets: the batched form (one vmapped call over the
stacked masked weights) against the per-task loop. Prints JSON.

    python bench/bench_eval_masks.py --experiment fmnist_permuted --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="fmnist_permuted")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from tasks import bench_tasks

    from hypermask.config import load_experiment
    from hypermask.engine.loop import build_run

    cfg = load_experiment(ROOT / "params.yaml", a.experiment)
    dev = torch.device(a.device)
    tasks, data = bench_tasks(cfg, dev)
    tasks, learner = build_run(cfg, 1, dev, tasks=tasks)
    learner.eval()
    ids = [t.index for t in tasks]
    ctx = learner.eval_context(ids)
    xs = [t.inputs(t.test.x) for t in tasks]  # every task's whole test set

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def batched():
        return [learner.all_task_outputs(ctx, ids, x) for x in xs]

    @torch.no_grad()
    def loop():
        return [torch.stack([learner.logits(ctx, x, k) for k in ids]) for x in xs]

    diff = max(float((b - s).abs().max()) for b, s in zip(batched(), loop()))
    same = diff <= 1e-5
    out = {
        "experiment": a.experiment,
        "data": data,
        "device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "tasks": len(ids),
        "test_samples_per_task": len(tasks[0].test.y),
        "same_outputs": same,
        "max_abs_difference": diff,
    }
    for name, fn in (("batched", batched), ("per_task_loop", loop)):
        fn()
        sync()
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        out[f"{name}_seconds_median"] = statistics.median(times)
        out[f"{name}_seconds_min"] = min(times)
    out["speedup"] = out["per_task_loop_seconds_median"] / out["batched_seconds_median"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
