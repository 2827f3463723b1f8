"""Fine-tuning: the target network trained on one task after another with plain cross-entropy
and nothing against forgetting (one head per task in the split scenario, as every method
here). The lower bound of a continual-learning table: it shows how much a method saves."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ExperimentConfig
from ..nets import TargetNet


class FineTune(nn.Module):
    """Fine-tuning behind the method contract (hypermask.methods.Method)."""

    supports_task_inference = False  # one set of weights: nothing to infer the task from

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__()
        self.target = target

    def start_task(self, t: int, n_iterations: int) -> None:
        pass

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        return ce, ce

    def end_task(self, t: int, task) -> None:
        pass

    def make_optimizer(self, lr: float):
        """A fresh Adam per task, as for HyperMask: the same budget and optimiser."""
        from ..optim import adam

        return adam(self.parameters(), lr)

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        return {}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.target(x, t, features=features)
