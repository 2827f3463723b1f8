"""The tasks a bench times: the benchmark's real data where it is installed, else random
inputs of the same shapes and split sizes (speed does not depend on pixel values; accuracy
figures are then meaningless, and the JSON says `"data": "random"`)."""

from __future__ import annotations

import torch


def bench_tasks(cfg, device: torch.device, seed: int = 1) -> tuple[list, str]:
    """(tasks, "real" or "random") for an experiment's data on `device`."""
    from hypermask.data.sources import check_source_available
    from hypermask.data.tasks import Split, Task, build_tasks

    try:
        check_source_available(cfg.data)
        return build_tasks(cfg.data, seed=seed, device=device), "real"
    except Exception:  # raw data absent here
        pass
    g = torch.Generator().manual_seed(0)
    side = {
        "mnist": 28 + 2 * cfg.data.padding,
        "fashion_mnist": 28 + 2 * cfg.data.padding,
        "tinyimagenet": 64,
    }.get(cfg.data.source, 32)
    ch = 1 if cfg.data.source in ("mnist", "fashion_mnist") else 3
    n_cls = cfg.data.task_sizes()[0]

    def split(n):
        return Split(
            torch.rand(n, ch, side, side, generator=g).to(device),
            torch.randint(0, n_cls, (n,), generator=g).to(device),
        )

    perm = cfg.data.scenario == "permuted"
    # a task's real sizes: MNIST 60,000 training images less validation, 10,000 test
    # (permuted: only 10,000 training images here, enough for batches); CIFAR-100 and
    # TinyImageNet 500 and 100 images per class, validation taken from training
    if ch == 1:
        n_tr, n_val, n_te = 10_000, 1000, 10_000
    else:
        n_val = (
            cfg.data.validation_per_class * n_cls
            if cfg.data.validation_per_class
            else cfg.data.validation_size
        )
        n_tr, n_te = 500 * n_cls - n_val, (100 if cfg.data.source == "cifar100" else 50) * n_cls
    tasks = [
        Task(
            t,
            list(range(n_cls)),
            split(n_tr),
            split(n_val),
            split(n_te),
            perm=torch.randperm(ch * side * side, generator=g).to(device) if perm else None,
        )
        for t in range(cfg.data.n_tasks)
    ]
    return tasks, "random"
