"""The training step: one optimisation step on one batch, the unit the loop runs
(hypermask/engine/loop.py) and hypermask/engine/graphs.py replays from a CUDA graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from hypermask.data.tasks import BatchStream, Task


def training_step(learner, opt, task: Task, stream: BatchStream, gen: torch.Generator, i: int):
    """Iteration i of the task: one optimisation step on one batch; returns the detached loss
    (no host sync)."""
    x, y = learner.batch(task, stream.next(), gen)
    return step_on(learner, opt, x, y, task.index, i)


def step_on(learner, opt, x, y, t: int, i: int):
    """One optimisation step of task t on the batch (x, y); returns the detached loss."""
    loss, _ = learner.loss(x, y, t, i)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()
