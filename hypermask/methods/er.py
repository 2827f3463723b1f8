"""Experience replay with a tiny episodic memory: A. Chaudhry, M. Rohrbach, M. Elhoseiny,
T. Ajanthan, P. K. Dokania, P. H. S. Torr, M. Ranzato, "On Tiny Episodic Memories in Continual
Learning", arXiv 1902.10486, 2019 (ER with their per-class ring buffer, "ER-ring").

1. Memory, declared per class the same way on every benchmark: `er.per_class` (m) slots for
   every class of every task (the paper's tiny memories hold 1 to 5 samples per class). Filled
   as the paper's ring buffer: while task t trains, each sample its batches present is pushed
   into the first-in-first-out buffer of its class, so at the task's end class c holds the last
   m presentations of class c in the task's stream (fewer where the stream presented fewer; the
   same sample twice where it was presented twice among the last m). The pushes are recorded as
   the batches' indices and the buffer is read from them at the task's end: the same contents
   as a push per step, without per-step work (checkpoints are written at task boundaries, where
   the record is empty). Samples are stored raw (the split's own dtype and shape, before the
   task's input transform) with their labels; every earlier task keeps m slots per class, so
   the memory is class-balanced by construction: m x classes x tasks samples.
2. Training step of task t > 0: the current batch of B samples plus B samples drawn uniformly
   with replacement from the filled slots of tasks 0..t-1 (the loop's generator), each through
   its own task's input transform (its permutation, its augmentation) and its own task's output
   head; the loss is the mean cross-entropy over the 2B rows (ER's joint batch, as in the
   paper's Algorithm 1 and Mammoth's `er.py`). Task 0 trains on its batch alone; as in the
   paper, the current task's own buffer is not replayed while it trains.
3. One output head per task (task-incremental protocol), the same target, per-task budget and
   fresh Adam as every method here.

Stores the target and the memory (its bytes are in the memory column).
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

    memory_x: Tensor  # buffers (attach): the stored samples, their labels, the used slots per task
    memory_y: Tensor
    filled: Tensor

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        # its settings block: `er`, or the block of a method built on it (er_ci, the class-incremental form)
        self.m, self.n_tasks = getattr(cfg, cfg.method).per_class, cfg.data.n_tasks
        self.tasks: list = []
        self.row_task: Tensor | None = None  # the task of each row of the current batch
        self.pushed: list[Tensor] = []  # the current task's batch indices, in order (the ring's pushes)

    def attach(self, tasks) -> None:
        """The memory's buffers, shaped after the tasks' stored samples (in the checkpoint): per
        task, m slots for each of its classes; `filled` counts the used slots of each task."""
        self.tasks = list(tasks)
        x, y = tasks[0].train.x, tasks[0].train.y
        self.slots = self.m * max(t.n_classes for t in tasks)
        self.register_buffer(
            "memory_x", torch.zeros(self.n_tasks, self.slots, *x.shape[1:], dtype=x.dtype, device=x.device)
        )
        self.register_buffer(
            "memory_y", torch.zeros(self.n_tasks, self.slots, dtype=y.dtype, device=y.device)
        )
        self.register_buffer("filled", torch.zeros(self.n_tasks, dtype=torch.long, device=y.device))
        self.sizes = [0] * self.n_tasks

    def start_task(self, t: int, n_iterations: int) -> None:
        """The pushes start afresh; the earlier tasks' filled slots as host integers (one read per
        task, so the replay's draw needs no device sync per step)."""
        self.pushed = []
        self.sizes = self.filled.tolist()

    @staticmethod
    def ring_contents(labels: Tensor, m: int) -> Tensor:
        """Positions (into the stream of pushes, in push order) that per-class first-in-first-out
        buffers of m slots hold after every push: the last m pushes of each class."""
        keep = []
        for c in labels.unique().tolist():
            keep.append((labels == c).nonzero().squeeze(1)[-m:])
        return torch.cat(keep).sort().values if keep else labels.new_zeros(0)

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """Task t's ring buffers, read from the task's pushes, into its slots."""
        stream = torch.cat(self.pushed) if self.pushed else task.train.y.new_zeros(0, dtype=torch.long)
        pick = stream[self.ring_contents(task.train.y[stream], self.m)]
        n = len(pick)
        self.memory_x[t, :n] = task.train.x[pick]
        self.memory_y[t, :n] = task.train.y[pick]
        self.filled[t] = n
        self.pushed = []

    def batch(self, task, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """The task's batch, then as many replayed samples of the earlier tasks' memory."""
        x, y = super().batch(task, idx, gen)
        self.pushed.append(idx)
        t, n = task.index, len(idx)
        rows = [torch.full((n,), t, dtype=torch.long, device=y.device)]
        earlier = list(range(t))  # every earlier task's end_task stored its samples
        if earlier:
            slots = torch.tensor(self.sizes[:t])
            flat = torch.randint(int(slots.sum()), (n,), generator=gen, device=gen.device).cpu()
            which = torch.bucketize(flat, slots.cumsum(0), right=True)  # index into `earlier`
            offset = flat - (slots.cumsum(0) - slots)[which]
            xs, ys = [x], [y]
            for k, j in enumerate(earlier):
                sel = offset[which == k].to(y.device)
                if len(sel):
                    xs.append(
                        self.tasks[j].inputs(self.memory_x[j].index_select(0, sel), train=True, gen=gen)
                    )
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
