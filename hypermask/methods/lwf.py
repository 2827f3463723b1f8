"""Learning without Forgetting in the class-incremental setting: Z. Li and D. Hoiem, "Learning
without Forgetting", IEEE TPAMI 2018 (ECCV 2016), in the class-incremental form of van de Ven et
al., "Three types of incremental learning", Nature Machine Intelligence 2022: exemplar-free,
one head over all classes seen so far.

1. At the end of every task the network is copied and frozen (`previous`): the model that
   recorded the earlier tasks' responses.
2. Training step of task t: L = CE + lambda * L_old, where CE is the cross-entropy of the batch
   over the classes of tasks 0..t with its global classes (hypermask/methods/shared/
   class_incremental.py), and, for t > 0, L_old is Li and Hoiem's knowledge-distillation loss
   on the earlier tasks' classes: with temperature T, the soft targets softmax(z_prev / T) of
   the frozen copy's logits z_prev over the classes of tasks 0..t-1 on the current batch, and
   L_old = -mean over the batch of sum_c softmax(z_prev / T)_c * log softmax(z / T)_c, times
   T^2 (Hinton et al. 2015's scaling, as van de Ven et al. do, so the gradient's scale does not
   shrink with T). `lwf.lambda` is Li and Hoiem's lambda_o (1 in their experiments), `lwf.
   temperature` their T (2).
3. The same target, per-task budget, batches and fresh Adam as every method here.

Stores the network and its frozen copy (both in the memory column: the copy is what the next
task's distillation needs).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.class_incremental import (
    ClassIncremental,
    all_class_logits,
    block_width,
    seen_cross_entropy,
)

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


def distillation(logits: Tensor, previous: Tensor, temperature: float) -> Tensor:
    """Li and Hoiem's L_old on logits (N, K) of the K earlier classes against the frozen model's
    (N, K): T^2 times the mean over the batch of the cross-entropy of the softened outputs."""
    soft = F.softmax(previous / temperature, dim=1)
    return -(soft * F.log_softmax(logits / temperature, dim=1)).sum(1).mean() * temperature**2


class LwF(ClassIncremental, MethodBase):
    """LwF, class-incremental (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.weight, self.temperature = cfg.lwf.lambda_, cfg.lwf.temperature
        self.previous = copy.deepcopy(target).requires_grad_(False)  # in the state (checkpoints)

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        self.previous.load_state_dict(self.target.state_dict())

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        width = block_width(self.target)
        out = all_class_logits(self.target, x)
        ce = seen_cross_entropy(out, y, t, t + 1, width)
        if t == 0:
            return ce, ce
        self.previous.eval()
        with torch.no_grad():
            old = all_class_logits(self.previous, x)[:, : t * width]
        return ce + self.weight * distillation(out[:, : t * width], old, self.temperature), ce
