"""DER++: P. Buzzega, M. Boschini, A. Porrello, D. Abati, S. Calderara, "Dark Experience for
General Continual Learning: a Strong, Simple Baseline", NeurIPS 2020 (Algorithm 1, DER++), in the
class-incremental setting, one head over all classes (trained over the whole head, predicting
over the classes seen so far).

1. Memory: a reservoir buffer (Vitter 1985) of M = `per_class` x (classes of all tasks) samples
   over the whole stream, the same number of stored samples as ER's at the end of the stream.
   The n-th sample the stream presents (n counted from 1 over every batch of every task) fills
   slot n - 1 while n <= M; afterwards it replaces slot j, j uniform in {0, ..., n - 1}, when
   j < M (a later sample of the same batch wins a slot over an earlier one, as in a sequential
   insertion). Each slot holds the raw sample, its global class, its task (for its input
   transform) and the logits over all T x C classes the network gave it when it was inserted.
2. Training step: B samples of the current task, plus, once the buffer holds samples, two
   independent draws of min(B, filled) samples without replacement from it, (x', z') and
   (x'', y''). L = CE(current) + alpha * MSE(h(x'), z') + beta * CE(h(x''), y''): both
   cross-entropies and the MSE over the whole head, all T x C outputs, the classes of tasks not
   yet seen included, as the authors' code computes them (Mammoth, models/derpp.py: its loss
   on the network's full output, in the class-incremental setting too; the paper's Algorithm 1
   restricts no output). This is where DER++ departs from ER and LwF here, whose softmax runs
   over the classes seen so far (van de Ven et al. 2022's protocol): the logits DER++ stores
   and replays span the whole head, and pushing the unseen classes' logits down is part of the
   method as its authors ran it (bench/verify/verify_classil.py runs it beside Avalanche's DER,
   whose cross-entropy also spans the whole head). The MSE is the mean over
   the batch and the logits (the paper's ||.||^2 up to the constant Mammoth also drops,
   F.mse_loss). Then the current batch enters the reservoir with its logits of this step. As
   in the paper, the draws come before the insertion.
3. The reservoir's and the draws' random numbers come from a host generator seeded from the
   run's generator at each task's first batch (one read per task), so a step needs no host-device
   synchronisation; checkpoints (task boundaries) carry the buffer and the count n.

Stores the target and the buffer (its samples, classes, tasks and logits are in the memory column).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.class_incremental import (
    ClassIncremental,
    all_class_logits,
    block_width,
    global_labels,
)

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


def reservoir_slots(seen: int, size: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """The slot each of a batch's samples takes in a reservoir of `size` slots that has been
    offered `seen` samples before it (-1: not stored; a slot taken twice in the batch keeps its
    later sample, the earlier one gets -1)."""
    n = seen + np.arange(batch)  # samples offered before each one
    slots = np.where(n < size, n, -1)
    late = n >= size
    draws = np.floor(rng.random(int(late.sum())) * (n[late] + 1)).astype(np.int64)
    slots[late] = np.where(draws < size, draws, -1)
    last = {}
    for i, s in enumerate(slots.tolist()):  # a slot taken twice keeps the later sample
        if s >= 0:
            last[s] = i
    return np.array([s if s >= 0 and last[s] == i else -1 for i, s in enumerate(slots.tolist())], np.int64)


class DERPP(ClassIncremental, MethodBase):
    """DER++ behind the method contract (hypermask.methods.Method)."""

    buffer_x: Tensor  # buffers (attach): samples, global classes, tasks, logits, and n
    buffer_y: Tensor
    buffer_task: Tensor
    buffer_logits: Tensor
    offered: Tensor

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.per_class, self.alpha, self.beta = cfg.derpp.per_class, cfg.derpp.alpha, cfg.derpp.beta
        self.tasks: list = []
        self.rng: np.random.Generator | None = None
        self.seen = 0  # host copies of `offered` and of the stored samples' tasks
        self.slot_task = np.zeros(0, np.int64)
        self.pending: tuple | None = None  # the current batch's raw samples, labels, task and slots

    def attach(self, tasks) -> None:
        self.tasks = list(tasks)
        x, y = tasks[0].train.x, tasks[0].train.y
        self.size = self.per_class * sum(t.n_classes for t in tasks)
        width = self.target.head().out_features  # every class of every task
        self.register_buffer("buffer_x", torch.zeros(self.size, *x.shape[1:], dtype=x.dtype, device=x.device))
        self.register_buffer("buffer_y", torch.zeros(self.size, dtype=torch.long, device=y.device))
        self.register_buffer("buffer_task", torch.full((self.size,), -1, dtype=torch.long, device=y.device))
        self.register_buffer("buffer_logits", torch.zeros(self.size, width, device=y.device))
        self.register_buffer("offered", torch.zeros((), dtype=torch.long, device=y.device))

    def start_task(self, t: int, n_iterations: int) -> None:
        """Host copies of the count and of the slots' tasks (one read per task), and a fresh host
        generator at the task's first batch."""
        self.seen = int(self.offered)
        self.slot_task = self.buffer_task.cpu().numpy().copy()
        self.rng = None

    def _draw(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """n buffered samples without replacement: model inputs (each through its task's transform,
        augmented), global classes and stored logits."""
        assert self.rng is not None
        filled = min(self.seen, self.size)
        pick = np.sort(self.rng.choice(filled, size=min(n, filled), replace=False))
        xs, order = [], []
        for k in np.unique(self.slot_task[pick]).tolist():  # the tasks among the drawn samples
            sel = pick[self.slot_task[pick] == k]
            order.append(sel)
            idx = torch.from_numpy(sel).to(self.buffer_x.device)
            xs.append(self.tasks[k].inputs(self.buffer_x.index_select(0, idx), train=True, gen=gen))
        idx = torch.from_numpy(np.concatenate(order)).to(self.buffer_x.device)
        return torch.cat(xs), self.buffer_y.index_select(0, idx), self.buffer_logits.index_select(0, idx)

    def batch(self, task, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """The task's batch (its labels made global), then the two draws from the buffer."""
        if self.rng is None:
            seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
            self.rng = np.random.default_rng(seed)
        x, y = super().batch(task, idx, gen)
        t, n = task.index, len(idx)
        width = block_width(self.target)
        slots = reservoir_slots(self.seen, self.size, n, self.rng)
        self.pending = (task.train.x.index_select(0, idx), global_labels(y, t, width), t, slots)
        self.replay = None
        if self.seen:
            x1, _, z1 = self._draw(n, gen)
            x2, y2, _ = self._draw(n, gen)
            self.replay = (len(x1), z1, len(x2))
            return torch.cat([x, x1, x2]), torch.cat([global_labels(y, t, width), y2])
        return x, global_labels(y, t, width)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        """y: global classes of the current rows, then of the second draw's; every loss over the
        whole head (all T x C outputs)."""
        out = all_class_logits(self.target, x)
        assert self.pending is not None  # set by batch()
        n = len(self.pending[0])
        ce = F.cross_entropy(out[:n], y[:n])
        total = ce
        if self.replay is not None:
            n1, z1, _ = self.replay
            total = total + self.alpha * F.mse_loss(out[n : n + n1], z1)
            total = total + self.beta * F.cross_entropy(out[n + n1 :], y[n:])
        self._insert(out[:n].detach())
        return total, ce

    @torch.no_grad()
    def _insert(self, logits: Tensor) -> None:
        """The current batch into the reservoir, with its logits of this step."""
        assert self.pending is not None
        raw, labels, t, slots = self.pending
        keep = np.nonzero(slots >= 0)[0]
        if len(keep):
            where = torch.from_numpy(slots[keep]).to(raw.device)
            rows = torch.from_numpy(keep).to(raw.device)
            self.buffer_x.index_copy_(0, where, raw.index_select(0, rows))
            self.buffer_y.index_copy_(0, where, labels.index_select(0, rows))
            self.buffer_task.index_fill_(0, where, t)
            self.buffer_logits.index_copy_(0, where, logits.index_select(0, rows))
            self.slot_task[slots[keep]] = t
        self.seen += len(slots)
        self.offered.fill_(self.seen)
        self.pending = None
