"""Test accuracy of every task under its own mask (task-incremental setting)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .data import Split, Task


@torch.no_grad()
def split_accuracy(learner, ctx: dict, task: Task, split: Split, batch_size: int | None) -> Tensor:
    """Accuracy (%) as a 0-dim tensor (no host sync). batch_size None: the whole split in one
    batch, as the reference does (batch-norm statistics then come from the whole test set)."""
    n = len(split.y)
    bs = n if batch_size is None else batch_size
    correct = torch.zeros((), device=split.y.device)
    for i in range(0, n, bs):
        x = task.inputs(split.x[i : i + bs])
        pred = learner.logits(ctx, x, task.index).argmax(1)
        correct += (pred == split.y[i : i + bs]).sum()
    return correct * (100.0 / n)


@torch.no_grad()
def evaluate_tasks(learner, tasks: list[Task], sparsity: float, batch_size: int | None) -> np.ndarray:
    """A row of the accuracy matrix: every task j with mask m_j (learned or not)."""
    was_training = learner.training
    learner.eval()
    ctx = learner.eval_context([t.index for t in tasks], sparsity)
    accs = torch.stack([split_accuracy(learner, ctx, t, t.test, batch_size) for t in tasks])
    learner.train(was_training)
    return accs.cpu().numpy().astype(float)
