"""Joint training: one network trained on the union of all tasks' training data, the upper
bound of a continual-learning table (BASELINES; e.g. Zenke et al. 2017, van de Ven et al.).

Every training batch mixes all T tasks (batch_size / T samples of each, the remainder to the
first tasks, drawn uniformly with replacement from each task's training split with the
loop's generator, augmented by each task's own transform), and each sample's loss goes
through its own task's output head (one head per task on every benchmark, the task-incremental
protocol's heads for a network without task-specific weights). The budget is the same as every method's summed over tasks: the loop runs T phases of
the per-task budget, and the accuracy matrix's row t is the network after t + 1 phases (so
row t already reflects every task's data: its BWT and forgetting are not those of a
continual learner; the table reports its final average accuracy as the bound).
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


class Joint(MethodBase):
    """Joint training behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.tasks: list = []
        self.row_task: Tensor | None = None  # the task of each row of the current batch

    def attach(self, tasks) -> None:
        self.tasks = list(tasks)

    def batch(self, task, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """A batch of idx's size from the union of all tasks (see the module's docstring)."""
        T, n = len(self.tasks), len(idx)
        xs, ys, ts = [], [], []
        for j, tj in enumerate(self.tasks):
            k = n // T + (1 if j < n % T else 0)
            if k == 0:
                continue
            pick = torch.randint(len(tj.train.y), (k,), generator=gen, device=tj.train.y.device)
            xs.append(tj.inputs(tj.train.x[pick], train=True, gen=gen))
            ys.append(tj.train.y[pick])
            ts.append(torch.full((k,), j, dtype=torch.long, device=pick.device))
        self.row_task = torch.cat(ts)
        return torch.cat(xs), torch.cat(ys)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        net = self.target
        out = net.head()(net.features(x))
        if net.n_heads > 1:  # each row through its own task's head (a one-task stream has one head)
            out = out.view(len(x), net.n_heads, -1)[torch.arange(len(x), device=x.device), self.row_task]
        ce = F.cross_entropy(out, y)
        return ce, ce
