"""Experience replay with a tiny episodic memory: A. Chaudhry, M. Rohrbach, M. Elhoseiny,
T. Ajanthan, P. K. Dokania, P. H. S. Torr, M. Ranzato, "On Tiny Episodic Memories in Continual
Learning", arXiv 1902.10486, 2019 (ER with a per-task ring buffer, their "ring buffer" variant).

1. Memory: after task t, `er.per_task` (m) samples of its training split, drawn uniformly
   without replacement (all of them where the split is smaller), stored raw (the split's own
   dtype and shape, before the task's input transform) with their labels; a per-task ring
   buffer, so every earlier task keeps exactly m slots (balanced by construction).
2. Training step of task t > 0: the current batch of B samples plus B samples drawn uniformly
   with replacement from the memory of tasks 0..t-1 (the loop's generator), each through its
   own task's input transform (its permutation, its augmentation) and its own task's output
   head; the loss is the mean cross-entropy over the 2B rows (ER's joint batch, as in the
   paper's Algorithm 1 and Mammoth's `er.py`). Task 0 trains on its batch alone.
3. One output head per task (task-incremental protocol), the same target, per-task budget and
   fresh Adam as every method here.

Stores the target and the memory: m x T samples (their bytes are in the memory column).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


class ER(MethodBase):
    """Experience replay behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.m, self.n_tasks = cfg.er.per_task, cfg.data.n_tasks
        self.tasks: list = []
        self.row_task: Tensor | None = None  # the task of each row of the current batch

    def attach(self, tasks) -> None:
        """The memory's buffers, shaped after the tasks' stored samples (in the checkpoint)."""
        self.tasks = list(tasks)
        x, y = tasks[0].train.x, tasks[0].train.y
        self.sizes = [min(self.m, len(t.train.y)) for t in tasks]
        self.register_buffer("memory_x", torch.zeros(self.n_tasks, self.m, *x.shape[1:], dtype=x.dtype, device=x.device))
        self.register_buffer("memory_y", torch.zeros(self.n_tasks, self.m, dtype=y.dtype, device=y.device))
        self.register_buffer("stored", torch.zeros(self.n_tasks, dtype=torch.bool, device=y.device))

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """Task t's m samples into its slots (torch's generator, seeded by the loop per task)."""
        n = self.sizes[t]
        pick = torch.randperm(len(task.train.y))[:n].to(task.train.y.device)
        self.memory_x[t, :n] = task.train.x[pick]
        self.memory_y[t, :n] = task.train.y[pick]
        self.stored[t] = True

    def batch(self, task, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """The task's batch, then as many replayed samples of the earlier tasks' memory."""
        x, y = super().batch(task, idx, gen)
        t, n = task.index, len(idx)
        rows = [torch.full((n,), t, dtype=torch.long, device=y.device)]
        earlier = list(range(t))  # every earlier task's end_task stored its samples (no host sync here)
        if earlier:
            slots = torch.tensor(self.sizes[:t])
            flat = torch.randint(int(slots.sum()), (n,), generator=gen, device=gen.device).cpu()
            which = torch.bucketize(flat, slots.cumsum(0), right=True)  # index into `earlier`
            offset = flat - (slots.cumsum(0) - slots)[which]
            xs, ys = [x], [y]
            for k, j in enumerate(earlier):
                sel = offset[which == k].to(y.device)
                if len(sel):
                    xs.append(self.tasks[j].inputs(self.memory_x[j].index_select(0, sel), train=True, gen=gen))
                    ys.append(self.memory_y[j].index_select(0, sel))
                    rows.append(torch.full((len(sel),), j, dtype=torch.long, device=y.device))
            x, y = torch.cat(xs), torch.cat(ys)
        self.row_task = torch.cat(rows)
        return x, y

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        net = self.target
        out = net.head()(net.features(x))
        out = out.view(len(x), net.n_heads, -1)[torch.arange(len(x), device=x.device), self.row_task]
        ce = F.cross_entropy(out, y)
        return ce, ce
