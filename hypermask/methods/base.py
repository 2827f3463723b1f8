"""What most methods share: a torch module around the target network, no-op task hooks and
a fresh Adam per task over all trained parameters (the protocol every method here faces)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nets import TargetNet


class MethodBase(nn.Module):
    supports_task_inference = False

    def __init__(self, target: TargetNet):
        super().__init__()
        self.target = target

    def start_task(self, t: int, n_iterations: int) -> None:
        pass

    def end_task(self, t: int, task) -> None:
        pass

    def make_optimizer(self, lr: float):
        """A fresh Adam per task over every trained parameter (the reference's protocol)."""
        from ..optim import adam

        return adam(self.parameters(), lr)

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        return {}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.target(x, t, features=features)
