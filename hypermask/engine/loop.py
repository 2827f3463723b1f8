"""The continual loop's parts: seeding and determinism, one task's training (the step repeated,
validation, the schedule, best-validation selection), a run's task stream and fresh learner,
and the evaluation settings computed after a task.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hypermask.data.prepared import load_prepared
from hypermask.data.tasks import BatchStream, Task, build_tasks
from hypermask.engine.graphs import GraphedSteps
from hypermask.evaluation.accuracy import split_accuracy
from hypermask.evaluation.settings import SETTINGS, WITHOUT_TASK_ID
from hypermask.methods import build_method, heads_of
from hypermask.nets import build_target, set_train_mode
from hypermask.optim import plateau

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.events import Events


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, a foreign checkpoint, a run held by another process)."""


# --------------------------------------------------------------------------- reproducibility
def task_seed(seed: int, t: int) -> int:
    """Each task draws its batches, augmentation and dropout from its own seed, so a run resumed
    at a task boundary continues exactly as an uninterrupted one."""
    return seed * 1_000_003 + t


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_determinism(device: torch.device) -> None:
    """Bit-identical reruns. The CPU kernels used here are deterministic for a given thread
    count (tested), so the global flag is set on accelerators only: on a CPU it would import
    torch's compiler stack (+150 MB RSS) and fill every new tensor with NaN before use.

    On accelerators deterministic mode also fills every new tensor (NaN) by default, to expose
    reads of uninitialised memory; no kernel used here reads any, and the fill was a third of a
    CIFAR-100 ResNet-20 step on an H200 (21.2 ms -> 16.7 ms, docs/performance.md, "Speed on a GPU"), so it is
    off where torch has the switch (torch.utils.deterministic, public since 2.1)."""
    if device.type == "cpu":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        import torch.utils.deterministic as det
    except ImportError:  # torch < 2.1: the fill stays
        return
    # a property that torch's module sets on its own class: its typing does not show it
    det.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- one task
def iterations_for(cfg: ExperimentConfig, task: Task) -> tuple[int, int | None]:
    """(iterations, iterations per epoch or None) as the reference counts them."""
    tc = cfg.train
    if tc.epochs is None:
        assert tc.iterations is not None  # TrainConfig: exactly one of iterations or epochs
        return tc.iterations, None
    per_epoch = math.ceil(len(task.train.y) / tc.batch_size)
    return per_epoch * tc.epochs, per_epoch


def train_task(learner, task: Task, cfg: ExperimentConfig, seed: int, events: Events, step0: int) -> dict:
    """Learn task t: the method's fresh optimiser, the task's iteration or epoch budget,
    periodic validation, optional ReduceLROnPlateau and best-validation selection. Emits
    task_started, iteration and validation (hypermask/events.py)."""
    t, tc = task.index, cfg.train
    device = task.train.y.device
    n_iter, per_epoch = iterations_for(cfg, task)
    gen = torch.Generator(device=device).manual_seed(task_seed(seed, t))  # batches, augmentation
    torch.manual_seed(task_seed(seed, t))  # dropout

    learner.start_task(t, n_iter)
    opt = learner.make_optimizer(tc.lr)
    sched = plateau(opt) if per_epoch is not None and tc.lr_scheduler else None
    stream = BatchStream(len(task.train.y), tc.batch_size, gen)
    step = GraphedSteps(learner, opt, task, stream, gen)  # eager where no CUDA graph applies
    has_val = len(task.val.y) > 0
    best_acc, best_state = -1.0, None
    loss_sum = torch.zeros((), device=device)
    n_loss = 0
    val_seconds = 0.0
    events.emit("task_started", t, n_iter)
    set_train_mode(learner, dropout=True)
    _sync(device)
    start = time.perf_counter()
    for i in range(n_iter):
        loss_sum += step(i)
        n_loss += 1
        last = i == n_iter - 1
        mean_loss = None
        if (i + 1) % tc.log_every == 0 or last:  # the only host sync of the training step
            mean_loss = (loss_sum / n_loss).item()
            if not math.isfinite(mean_loss):
                raise TrainingError(f"task {t}, iteration {i}: training loss is {mean_loss}; stopped")
            loss_sum.zero_()
            n_loss = 0
        events.emit("iteration", t, i, step0 + i, mean_loss)
        epoch_end = per_epoch is not None and (i + 1) % per_epoch == 0
        if has_val and (i % tc.val_every == 0 or last or epoch_end):
            v0 = time.perf_counter()
            learner.eval()
            with torch.no_grad():
                ctx = learner.eval_context([t])
                acc = split_accuracy(learner, ctx, task, task.val, tc.eval_batch_size).item()
            events.emit("validation", t, i, step0 + i, acc)
            if tc.selection == "best_val" and acc > best_acc:
                best_acc = acc
                best_state = {k: v.detach().clone() for k, v in learner.state_dict().items()}
            if sched is not None and epoch_end:
                sched.step(acc)
            # The reference never switches back to training mode after its first check:
            # dropout stays off for the rest of the task unless corrected (target.dropout: train).
            set_train_mode(learner, dropout=cfg.target.dropout == "train")
            _sync(device)
            val_seconds += time.perf_counter() - v0
    _sync(device)
    seconds = time.perf_counter() - start
    if best_state is not None:
        learner.load_state_dict(best_state)
    return {
        "iterations": n_iter,
        "train_seconds": seconds - val_seconds,
        "validation_seconds": val_seconds,
        "best_val_accuracy": best_acc if best_state is not None else None,
    }


def build_run(
    cfg: ExperimentConfig,
    seed: int,
    device: torch.device,
    data_cache: Path | None = None,
    tasks: list[Task] | None = None,
):
    """The task stream and the freshly initialised learner of one (experiment, seed); `tasks`
    given (the benches' stand-ins where the data is absent) replaces the data's."""
    set_determinism(device)
    seed_everything(seed)
    if tasks is None:
        tasks = build_tasks(cfg.data, seed, device, raw=load_prepared(cfg.data, data_cache))
    smallest = min(len(task.train.y) for task in tasks)
    if cfg.train.batch_size > smallest:  # legal (a batch then repeats samples), almost surely a mistake
        print(
            f"warning: {cfg.name}: train.batch_size {cfg.train.batch_size} exceeds the {smallest} training "
            "samples of its smallest task; each batch repeats samples of the task",
            file=sys.stderr,
        )
    input_shape = tuple(tasks[0].inputs(tasks[0].train.x[:1]).shape[1:])
    n_out = max(t.n_classes for t in tasks)
    torch.manual_seed(seed)
    target = build_target(cfg.target, input_shape, n_out, len(tasks), heads=heads_of(cfg))
    learner = build_method(cfg, target).to(device)
    learner.attach(tasks)
    return tasks, learner


def evaluate_settings(
    learner, tasks: list[Task], t: int, cfg: ExperimentConfig, split: str = "test"
) -> dict[str, dict]:
    """The task-id-free settings listed in evaluation.settings, after learning task t, over
    tasks 0..t, scored on each task's `split` (sweeps: "val", so that a study that tunes on a
    setting never looks at test data)."""
    ev = cfg.evaluation
    if split != "test":
        tasks = [dataclasses.replace(task, test=getattr(task, split)) for task in tasks]
    return {s: SETTINGS[s].run(learner, tasks, t + 1, ev) for s in WITHOUT_TASK_ID if s in ev.settings}
