"""Independent networks: one separate target network per task, each trained on its own task's
data only, with the same per-task budget, batches and fresh Adam as every method here. The
isolation bound of the HAT (Serra et al., ICML 2018) and PackNet (Mallya and Lazebnik, CVPR
2018) papers: no forgetting (BWT exactly 0) and no transfer, at T times the target's memory.

Each network is drawn independently at construction (its own default initialisation, task 0's
is the loop's `target`); task t trains and serves network t only, through its own output layer.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hypermask.methods.shared.base import MethodBase
from hypermask.optim import adam

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


def fresh_copy(net: TargetNet) -> TargetNet:
    """A network of the same architecture with newly drawn weights (every layer's own reset)."""
    other = copy.deepcopy(net)
    for m in other.modules():
        reset = getattr(m, "reset_parameters", None)
        if reset is not None:
            reset()
    return other


class Independent(MethodBase):
    """Independent networks behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.others = nn.ModuleList(fresh_copy(target) for _ in range(cfg.data.n_tasks - 1))
        self.current = 0

    def net(self, t: int) -> TargetNet:
        if t == 0:
            return self.target
        return cast("TargetNet", self.others[t - 1])  # nn.ModuleList is not generic: its items are Modules

    def start_task(self, t: int, n_iterations: int) -> None:
        self.current = t

    def make_optimizer(self, lr: float):
        """A fresh Adam over the current task's network only."""
        return adam(self.net(self.current).parameters(), lr)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.net(t)(x, t), y)
        return ce, ce

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        return {}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.net(t)(x, t, features=features)
