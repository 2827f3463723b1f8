"""Seconds per training iteration and peak memory of a method on a benchmark, printed as JSON.

Times the exact step the trainer runs (`hypermask.train.training_step`) on a task after
the first (so both regularizers are active), median over repeats after warm-up, and the
evaluation of all tasks' masks on their test sets. Each configuration runs in its own
process so that peak memory is its own.

    python bench/bench_train_step.py     # fmnist_permuted, digits_permuted, permuted_mnist, cifar100_resnet20
    python bench/bench_train_step.py --configs fmnist_permuted --threads 2
    python bench/bench_train_step.py --configs fmnist_split --threads 2 --profile
    python bench/bench_train_step.py --configs fmnist_permuted fmnist_split --threads 2 \
        --methods hypermask hnet wsn supsup ewc si finetune joint   # every method (HyperMask by default)

`optimizer_step_seconds` times the fused Adam step alone, the memory-bound floor of a step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["fmnist_permuted", "digits_permuted", "permuted_mnist", "cifar100_resnet20"]


def adam_floor(learner, opt, repeats: int, sync) -> float:
    """Seconds for the optimizer step alone (grads present): the memory-bound floor of a step."""
    for _ in range(3):
        opt.step()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        opt.step()
    sync()
    return (time.perf_counter() - t0) / repeats


GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: ATen splits an op over threads above this many elements


# matrix products: counted by their operands even where they call a copy (addmm's bias)
PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addmv", "aten::mv"}
# ops that only make views or read metadata: no pass over the data, no parallel region
METADATA = {
    f"aten::{n}"
    for n in (
        "as_strided",
        "view",
        "_reshape_alias",
        "reshape",
        "resolve_conj",
        "resolve_neg",
        "result_type",
        "to",
        "_to_copy",
        "flatten",
        "expand",
        "t",
        "transpose",
        "permute",
        "detach",
        "alias",
        "lift_fresh",
        "unsqueeze",
        "squeeze",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "narrow",
        "unbind",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "chunk",
        "numpy_T",
        "expand_as",
        "view_as",
        "contiguous",
        "_unsafe_view",
        "item",
        "_local_scalar_dense",
        "is_nonzero",
        "size",
        "stride",
    )
}


def _regions(shape) -> int:
    """Parallel regions of one operand: 1 for a tensor over GRAIN_SIZE elements; for a tensor
    list (the fused Adam's), one per such tensor (the kernel runs tensor by tensor)."""
    if not shape:
        return 0
    if all(isinstance(d, int) for d in shape):
        return int(math.prod(shape) > GRAIN_SIZE)
    return sum(_regions(s) for s in shape if isinstance(s, (list, tuple)))


def parallel_regions(events, n: int, adam_tensors: int = 0) -> dict:
    """Which of a CPU step's ops run as OpenMP parallel regions, estimated from the profiler's
    leaf ops (those that call no other op but views and metadata) and their input shapes:
    ATen's parallel_for splits an op whose largest operand has more than GRAIN_SIZE elements
    (element-wise ops, reductions, the fused Adam kernel per tensor) and MKL threads products
    of that size. Each
    such op is a fork and a join of the OpenMP team: under a passive wait policy, a wake-up
    of the sleeping threads. Per iteration: the count of such ops and of all leaf ops, and the
    parallel ones by name. `adam_tensors`: the optimizer's tensors over the grain (one region
    each per step)."""
    by_op: dict[str, int] = {}
    leaves = 0
    for e in events:
        if (
            e.device_type.name != "CPU"
            or not e.name.startswith("aten::")
            or e.name in METADATA
            or (e.name not in PRODUCTS and any(c.name not in METADATA for c in e.cpu_children))
        ):
            continue
        leaves += 1
        regions = max((_regions(s) for s in (e.input_shapes or [])), default=0)
        if regions:
            by_op[e.name] = by_op.get(e.name, 0) + regions
    if adam_tensors:  # the profiler records no shapes of the fused kernel's tensor lists
        by_op["aten::_fused_adam_"] = adam_tensors * n
    return {
        "per_iter": sum(by_op.values()) / n,
        "leaf_ops_per_iter": leaves / n,
        "by_op": {k: v / n for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])},
    }


def profile_steps(step, n: int, device, adam_tensors: int = 0) -> dict:
    """PyTorch profiler over n steps: the ops with the most self time, in ms per iteration; on a
    GPU also the kernels' total time per iteration (how long the GPU is busy in a step)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, record_shapes=device.type == "cpu") as prof:
        for _ in range(n):
            step()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    avg = prof.key_averages()
    rows = sorted(avg, key=lambda e: getattr(e, key), reverse=True)[:12]
    out = {
        "top": [
            {"op": e.key, "ms_per_iter": round(getattr(e, key) / 1000 / n, 3), "calls_per_iter": e.count / n}
            for e in rows
        ]
    }
    if device.type == "cpu":
        out["parallel_regions"] = parallel_regions(prof.events(), n, adam_tensors)
    if device.type == "cuda":
        kernels = [e for e in avg if e.device_type == DeviceType.CUDA]
        out["kernels_per_iter"] = sum(e.count for e in kernels) / n
        out["kernel_ms_per_iter"] = round(sum(e.self_device_time_total for e in kernels) / 1000 / n, 3)
    return out


def graphed_steps(learner, opt, task, stream, gen, i, warmup, repeats, per_repeat, sync) -> dict:
    """The same step replayed from a CUDA graph as the trainer runs it (hypermask/engine/graphs.py)."""
    from hypermask.engine.graphs import WARMUP, GraphedSteps

    steps = GraphedSteps(learner, opt, task, stream, gen)
    for _ in range(max(warmup, WARMUP + 2)):
        steps(i)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_repeat):
            steps(i)
        sync()
        times.append((time.perf_counter() - t0) / per_repeat)
    return {
        "sec_per_iter_median": statistics.median(times),
        "sec_per_iter_min": min(times),
        "sec_per_iter_max": max(times),
        "captures": steps.captures,
    }


def epoch_seconds(cfg, learner, task) -> dict:
    """One epoch of the task as the trainer runs it (`hypermask.train.train_task` with a budget
    of one epoch: its steps, the validation at the epoch's end, best-validation selection and the
    scheduler), the second of two, so that the first pays for warm-up."""
    from hypermask.engine.loop import train_task
    from hypermask.events import Events

    one = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    res = {"paper_epochs": cfg.train.epochs}
    for how, flag in (("", "1"), ("eager_", "0")):  # as the trainer runs it; without CUDA graphs
        if how and task.train.y.device.type != "cuda":
            break
        os.environ["HYPERMASK_CUDA_GRAPHS"] = flag
        for _ in range(2):
            out = train_task(learner, task, one, 1, Events([]), 0)
        res.update(
            {
                f"{how}iterations": out["iterations"],
                f"{how}train_seconds": out["train_seconds"],
                f"{how}validation_seconds": out["validation_seconds"],
                f"{how}seconds": out["train_seconds"] + out["validation_seconds"],
            }
        )
    os.environ.pop("HYPERMASK_CUDA_GRAPHS")
    return res


def bench_one(
    name: str,
    device: str,
    warmup: int,
    repeats: int,
    per_repeat: int,
    task_index: int,
    profile: bool = False,
    fill: str | None = None,
) -> dict:
    import torch
    from tasks import bench_tasks

    from hypermask.config import load_experiment
    from hypermask.data.tasks import BatchStream
    from hypermask.engine.loop import set_determinism
    from hypermask.engine.step import training_step
    from hypermask.evaluation.accuracy import evaluate_tasks
    from hypermask.methods import build_method, heads_of
    from hypermask.nets import build_target

    cfg = load_experiment(ROOT / "params.yaml", name)
    dev = torch.device(device)
    set_determinism(dev)
    if fill is not None:  # on accelerators, deterministic mode fills every new tensor (NaN) unless off
        torch.utils.deterministic.fill_uninitialized_memory = fill == "on"
    tasks, data = bench_tasks(cfg, dev)
    T = len(tasks)
    task = tasks[min(task_index, T - 1)]
    shape = tuple(task.inputs(task.train.x[:1]).shape[1:])
    torch.manual_seed(1)
    learner = build_method(
        cfg, build_target(cfg.target, shape, max(t.n_classes for t in tasks), T, heads_of(cfg))
    ).to(dev)
    learner.attach(tasks)
    iters = cfg.train.iterations or 1000  # the task's budget (its sparsity ramp, on the first task)
    for t in range(
        task.index
    ):  # the earlier tasks' consolidation (replay memory, bases, gates, Fisher, masks)
        learner.start_task(t, iters)
        learner.end_task(t, tasks[t])
    learner.start_task(task.index, iters)
    learner.train()
    opt = learner.make_optimizer(cfg.train.lr)
    gen = torch.Generator(device=dev).manual_seed(0)
    stream = BatchStream(len(task.train.y), cfg.train.batch_size, gen)
    i = iters - 1  # an iteration after the sparsity ramp (the first task's), as most steps are

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        training_step(learner, opt, task, stream, gen, i)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_repeat):
            loss = training_step(learner, opt, task, stream, gen, i)
        sync()
        times.append((time.perf_counter() - t0) / per_repeat)
    loss.item()
    floor = adam_floor(learner, opt, per_repeat, sync)
    graphed = (
        graphed_steps(learner, opt, task, stream, gen, i, warmup, repeats, per_repeat, sync)
        if dev.type == "cuda"
        else None
    )
    big = sum(p.numel() > GRAIN_SIZE for p in learner.parameters() if p.requires_grad)
    prof = (
        profile_steps(lambda: training_step(learner, opt, task, stream, gen, i), per_repeat, dev, big)
        if profile
        else None
    )
    t0 = time.perf_counter()
    evaluate_tasks(learner, tasks, cfg.train.eval_batch_size)
    sync()
    eval_s = time.perf_counter() - t0
    epoch = epoch_seconds(cfg, learner, task) if cfg.train.epochs else None
    n_hnet = sum(p.numel() for p in learner.hnet.parameters()) if hasattr(learner, "hnet") else 0
    return {
        "config": name,
        "method": cfg.method,
        "data": data,
        "device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        **(
            {"fill_uninitialized_memory": torch.utils.deterministic.fill_uninitialized_memory}
            if dev.type == "cuda"
            else {}
        ),
        "torch": torch.__version__,
        "task": task.index,
        "batch_size": cfg.train.batch_size,
        "hnet_parameters": n_hnet,
        "target_parameters": sum(p.numel() for p in learner.target.parameters()),
        "memory_bytes": learner.memory()["bytes"],
        "sec_per_iter_median": statistics.median(times),
        "sec_per_iter_min": min(times),
        "sec_per_iter_max": max(times),
        "optimizer_step_seconds": floor,
        **({"graphed": graphed} if graphed else {}),
        "repeats": repeats,
        "iters_per_repeat": per_repeat,
        "eval_all_tasks_seconds": eval_s,
        **({"epoch": epoch} if epoch else {}),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
        **({"profile": prof} if prof else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="*", default=DEFAULT, help="benchmarks (or BENCHMARK/METHOD)")
    ap.add_argument(
        "--methods", nargs="*", default=None, help="run each benchmark with each of these methods"
    )
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--per-repeat", type=int, default=None)
    ap.add_argument("--task", type=int, default=1, help="which task's step (>=1: both regularizers on)")
    ap.add_argument("--profile", action="store_true", help="add the profiler's top ops (ms/iteration)")
    ap.add_argument(
        "--fill-uninitialized",
        choices=["on", "off"],
        default=None,
        help="on a GPU: torch's deterministic fill of new tensors (default: as the trainer sets it)",
    )
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if a.one:
        if a.threads:
            torch.set_num_threads(a.threads)
        big = device == "cpu" and (
            a.configs[0].split("/")[0] == "permuted_mnist"
            or "resnet" in a.configs[0]
            or "zenke" in a.configs[0]
        )
        res = bench_one(
            a.configs[0],
            device,
            a.warmup if a.warmup is not None else (2 if big else 20),
            a.repeats if a.repeats is not None else (3 if big else 5),
            a.per_repeat if a.per_repeat is not None else (2 if big else 50),
            a.task,
            a.profile,
            a.fill_uninitialized,
        )
        print(json.dumps(res))
        return
    from hypermask.config import read_params, split_name
    from hypermask.pipeline.plan import KEEP_FREED_MEMORY, keep_freed_memory_env

    keep = set(read_params(ROOT / "params.yaml").pipeline.keep_freed_memory)
    results = []
    names = [f"{c}/{m}" for c in a.configs for m in a.methods] if a.methods else a.configs
    for name in names:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            "--configs",
            name,
            "--device",
            device,
            "--task",
            str(a.task),
        ]
        cmd += ["--profile"] if a.profile else []
        for flag in ("threads", "warmup", "repeats", "per_repeat", "fill_uninitialized"):
            v = getattr(a, flag)
            if v is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(v)]
        env = dict(os.environ)
        if split_name(name)[0] in keep:  # as the pipeline runs it (pipeline.keep_freed_memory)
            env.update(keep_freed_memory_env())
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode != 0:
            results.append({"config": name, "error": out.stderr.strip().splitlines()[-1:]})
        else:
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["environment"] = KEEP_FREED_MEMORY if name in keep else ""
            results.append(res)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    print(json.dumps({"machine": describe(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
