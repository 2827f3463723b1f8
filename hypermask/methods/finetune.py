"""Fine-tuning: the target network trained on one task after another with plain cross-entropy
and nothing against forgetting, with the same target, batches, budget and fresh Adam per task
as every method here. The lower bound of a continual-learning table: it shows how much a
method saves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


class FineTune(MethodBase):
    """Fine-tuning behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        return ce, ce
