"""Online elastic weight consolidation: J. Kirkpatrick et al., "Overcoming catastrophic
forgetting in neural networks", PNAS 2017, in the online form of J. Schwarz et al.,
"Progress & Compress: A scalable framework for continual learning", ICML 2018.

1. After task t, the diagonal Fisher of the target's weights on the task's training data,
   F^t_k = mean over samples of (d log p(y|x; theta) / d theta_k)^2, from per-sample gradients
   (torch.func: one vmapped gradient per sample, no loop). This is the *empirical* Fisher: y is
   the true label, as in most implementations; Kirkpatrick et al. take the expectation under the
   model's predictive distribution. At most `ewc.fisher_samples` samples of the task, in order.
2. Online accumulation: F = gamma * F + F^t, and theta* = theta at the end of task t (one copy of
   each, however many tasks).
3. Loss while learning task t > 0: CE + (lambda / 2) * sum_k F_k (theta_k - theta*_k)^2.

F and theta* are buffers of the module, so checkpoints carry them and a resumed run continues
exactly. The same target, batches, budget and fresh Adam per task as every method here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, grad, vmap

from hypermask.methods.shared.base import MethodBase

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.data.tasks import Task
    from hypermask.nets import TargetNet


class EWC(MethodBase):
    """Online EWC behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = cfg.ewc
        self.names = [n for n, _ in target.named_parameters()]
        for i, (_, p) in enumerate(target.named_parameters()):
            self.register_buffer(f"fisher_{i}", torch.zeros_like(p))
            self.register_buffer(f"anchor_{i}", torch.zeros_like(p))

    def _pairs(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(theta_k, F_k, theta*_k) for every target tensor."""
        return [
            (p, getattr(self, f"fisher_{i}"), getattr(self, f"anchor_{i}"))
            for i, p in enumerate(self.target.parameters())
        ]

    def penalty(self) -> Tensor:
        """sum_k F_k (theta_k - theta*_k)^2 (without lambda / 2)."""
        total = sum((f * (p - a).pow(2)).sum() for p, f, a in self._pairs())
        assert isinstance(total, Tensor)  # the target has parameters: sum's start (0) never comes back
        return total

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        if t == 0:
            return ce, ce
        return ce + (self.hp.lambda_ / 2) * self.penalty(), ce

    @torch.no_grad()
    def fisher(self, task: Task) -> list[Tensor]:
        """The diagonal empirical Fisher of task's first `fisher_samples` training samples."""
        params = {n: p.detach() for n, p in self.target.named_parameters()}
        t = task.index

        def nll(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            out = functional_call(self.target, p, (x.unsqueeze(0),), {"task": t})
            return F.cross_entropy(out, y.unsqueeze(0))

        per_sample = vmap(grad(nll), in_dims=(None, 0, 0))
        n = min(self.hp.fisher_samples, len(task.train.y))
        total = {k: torch.zeros_like(v) for k, v in params.items()}
        for i in range(0, n, self.hp.fisher_batch_size):
            j = min(i + self.hp.fisher_batch_size, n)
            with torch.enable_grad():
                g = per_sample(params, task.inputs(task.train.x[i:j]), task.train.y[i:j])
            for k in total:
                total[k] += g[k].pow(2).sum(0)
        return [total[k] / n for k in self.names]

    @torch.no_grad()
    def end_task(self, t: int, task: Task) -> None:
        """F = gamma * F + F^t, theta* = theta (the online form)."""
        was_training = self.training
        self.eval()  # the Fisher of the model as it will be evaluated (no dropout)
        new = self.fisher(task)
        self.train(was_training)
        for (p, f, a), ft in zip(self._pairs(), new):
            f.mul_(self.hp.gamma).add_(ft)
            a.copy_(p.detach())
