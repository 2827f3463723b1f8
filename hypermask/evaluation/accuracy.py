"""Test accuracy of every task under its own mask (task-incremental setting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from hypermask.config import EvaluationConfig
    from hypermask.data.tasks import Split, Task
    from hypermask.methods import ClassIncrementalMethod, EvalContext, Method, OneShot, TaskInference

EVAL_CHUNK = 1024  # rows per evaluation batch where outputs do not depend on the batch


@torch.no_grad()
def split_accuracy(
    learner: Method, ctx: EvalContext, task: Task, split: Split, batch_size: int | None
) -> Tensor:
    """Accuracy (%) as a 0-dim tensor (no host sync). batch_size None: the whole split in one
    batch where batch norm takes the batch's statistics, as the reference does; otherwise
    chunks of EVAL_CHUNK rows, which give the same outputs (tested) with a fraction of the
    memory."""
    n = len(split.y)
    bs = batch_size or (n if learner.target.batch_dependent else EVAL_CHUNK)
    correct = torch.zeros((), device=split.y.device)
    for i in range(0, n, bs):
        x = task.inputs(split.x[i : i + bs])
        pred = learner.logits(ctx, x, task.index).argmax(1)
        correct += (pred == split.y[i : i + bs]).sum()
    return correct * (100.0 / n)


@torch.no_grad()
def evaluate_tasks(
    learner: Method, tasks: list[Task], batch_size: int | None, split: str = "test"
) -> np.ndarray:
    """A row of the accuracy matrix: every task j with mask m_j (learned or not), on each
    task's test split (or, for sweeps, its validation split)."""
    was_training = learner.training
    learner.eval()
    ctx = learner.eval_context([t.index for t in tasks])
    accs = torch.stack([split_accuracy(learner, ctx, t, getattr(t, split), batch_size) for t in tasks])
    learner.train(was_training)
    return accs.cpu().numpy().astype(float)


# --------------------------------------------------------------------------- unknown task id
def entropy_select(outputs: Tensor) -> tuple[Tensor, Tensor]:
    """outputs (K, N, C): logits of N samples under K tasks' masks. Returns, per sample, the
    task whose softmax has the lowest entropy and the class that task's output predicts."""
    logp = torch.log_softmax(outputs, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)  # (K, N); log_softmax: no log(0) for saturated outputs
    task = entropy.argmin(0)
    cls = outputs[task, torch.arange(outputs.shape[1], device=outputs.device)].argmax(-1)
    return task, cls


@torch.no_grad()
def infer_tasks(
    learner: Method,
    tasks: list[Task],
    seen: int,
    batch_size: int,
    select: Callable[[EvalContext, list[int], Tensor], tuple[Tensor, Tensor]],
) -> dict[str, Any]:
    """Task inference over tasks 0..seen-1, on the test samples of those tasks (each task's test
    set in batches of `batch_size`): select(ctx, ids, x) gives each sample's predicted task and
    class. A sample's class counts as right only with the right task and the right class (the
    classes of different tasks are distinct)."""
    was_training = learner.training
    learner.eval()
    ids = list(range(seen))
    ctx = learner.eval_context(ids)
    task_hits, class_hits, per_task = 0, 0, []
    n_total = 0
    for j in ids:
        task, split = tasks[j], tasks[j].test
        t_ok = c_ok = 0
        for i in range(0, len(split.y), batch_size):
            pred_task, pred_cls = select(ctx, ids, task.inputs(split.x[i : i + batch_size]))
            right_task = pred_task == j
            t_ok += int(right_task.sum())
            c_ok += int((right_task & (pred_cls == split.y[i : i + batch_size])).sum())
        per_task.append(100.0 * t_ok / len(split.y))
        task_hits, class_hits, n_total = task_hits + t_ok, class_hits + c_ok, n_total + len(split.y)
    learner.train(was_training)
    return {
        "task_accuracy": 100.0 * task_hits / n_total,
        "class_accuracy": 100.0 * class_hits / n_total,
        "task_accuracy_per_task": per_task,
    }


def entropy_inference(
    learner: TaskInference, tasks: list[Task], seen: int, batch_size: int
) -> dict[str, Any]:
    """Per sample, the task whose output has the lowest entropy (entropy_select)."""
    return infer_tasks(
        learner,
        tasks,
        seen,
        batch_size,
        lambda ctx, ids, x: entropy_select(learner.all_task_outputs(ctx, ids, x)),
    )


# --------------------------------------------------------------------------- class-incremental head
def class_incremental_inference(
    learner: ClassIncrementalMethod, tasks: list[Task], seen: int, batch_size: int
) -> dict[str, Any]:
    """A class-incremental method's own prediction without the task id: per sample, the argmax
    over every class of tasks 0..seen-1 of its one head (global class k * C + y), read back as
    (task k, class y). Tasks of equal width C (the output layer's blocks)."""
    width = tasks[0].n_classes

    def select(ctx: EvalContext, ids: list[int], x: Tensor) -> tuple[Tensor, Tensor]:
        g = learner.seen_class_logits(ctx, x, len(ids)).argmax(1)
        return g // width, g % width

    return infer_tasks(learner, tasks, seen, batch_size, select)


# --------------------------------------------------------------------------- SupSup one-shot
def one_shot_gradient(learner: OneShot, ctx: EvalContext, tasks: list[int], x: Tensor) -> Tensor:
    """dH/d(alpha_i) at alpha_i = 1/k for each of the k tasks (Wortsman et al. 2020, section
    3.3): H is the softmax entropy of the network whose masked tensors are superposed,
    sum_i alpha_i (W * M_i), averaged over the batch x. One forward and one backward pass."""
    alpha = torch.full((len(tasks),), 1.0 / len(tasks), dtype=x.dtype, device=x.device, requires_grad=True)
    with torch.enable_grad():
        logits = learner.superposed_logits(ctx, tasks, alpha, x)
        logp = torch.log_softmax(logits, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1).mean()
        (grad,) = torch.autograd.grad(entropy, alpha)
    return grad


def one_shot_inference(learner: OneShot, tasks: list[Task], seen: int, batch_size: int) -> dict[str, Any]:
    """SupSup's one-shot task inference over tasks 0..seen-1: each batch of `batch_size` test
    samples of one task (as in the paper's experiments, a batch comes from a single task) is
    given the task argmin_i dH/d(alpha_i), the mask whose weight increase lowers the entropy
    the most; its samples are then classified with that task's mask."""

    def select(ctx: EvalContext, ids: list[int], x: Tensor) -> tuple[Tensor, Tensor]:
        t = ids[int(one_shot_gradient(learner, ctx, ids, x).argmin())]
        return torch.full((len(x),), t, device=x.device), learner.logits(ctx, x, t).argmax(1)

    return infer_tasks(learner, tasks, seen, batch_size, select)


# The evaluation settings' uniform entry points (hypermask/evaluation/settings.py): (learner, tasks, seen, ev).
def entropy_setting(
    learner: TaskInference, tasks: list[Task], seen: int, ev: EvaluationConfig
) -> dict[str, Any]:
    return entropy_inference(learner, tasks, seen, ev.batch_size)


def class_incremental_setting(
    learner: ClassIncrementalMethod, tasks: list[Task], seen: int, ev: EvaluationConfig
) -> dict[str, Any]:
    return class_incremental_inference(learner, tasks, seen, ev.batch_size)


def oneshot_setting(learner: OneShot, tasks: list[Task], seen: int, ev: EvaluationConfig) -> dict[str, Any]:
    return one_shot_inference(learner, tasks, seen, ev.oneshot_batch_size)
