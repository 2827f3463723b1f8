"""SI: F. Zenke, B. Poole, S. Ganguli, "Continual Learning Through Synaptic Intelligence",
ICML 2017.

1. During task t, at every optimisation step, per parameter: omega_k += -g_k * delta_k, with
   g the gradient of the task's loss *without* the penalty (the official code's
   `unreg_grads`, github.com/ganguli-lab/pathint) and delta the change of the parameter made
   by that step. g is not a second backward pass: the penalty's gradient is known in closed
   form, 2 c Omega_k (theta_k - theta~_k), and is subtracted from the total gradient.
2. At the end of task t: Omega_k = relu(Omega_k + omega_k / ((theta_k(end) - theta_k(start))^2 + xi)),
   then omega is reset and theta~ = theta(end). The clip at zero is the authors' (pathint's
   `protocols.py`, the path-integral protocol's relu of the sum): omega_k is negative where the
   loss rose along a weight's path, and a negative Omega_k would turn the penalty into a reward
   for moving that weight away from its anchor.
3. Loss while learning task t > 0: CE + c * sum_k Omega_k (theta_k - theta~_k)^2.

Omega and theta~ are buffers (checkpoints carry them; omega is zero at every task boundary,
where checkpoints are written). Same target, batches, budget and fresh Adam per task as every
method here; one output head per task on every benchmark (the task-incremental protocol: a method
whose weights carry no task-specific part gets per-task heads, permuted benchmarks included), as
the paper's split experiments do; the penalty covers every head (an earlier task's head is not
touched by a later task's loss, so its term stays zero).
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


class PathIntegral:
    """An optimiser wrapper that accumulates SI's omega over the steps of its inner optimiser."""

    def __init__(self, inner, si: SI):
        self.inner, self.si = inner, si

    def __getattr__(self, name: str):  # lr, param_groups ...: the inner optimiser's (schedulers)
        return getattr(self.inner, name)

    def zero_grad(self) -> None:
        self.inner.zero_grad()

    def step(self) -> None:
        si = self.si
        before: list[Tensor | None] = []
        grads: list[Tensor | None] = []
        with torch.no_grad():
            for p, big, anchor in si.triples():
                if p.grad is None:
                    before.append(None)
                    grads.append(None)
                    continue
                before.append(p.detach().clone())
                # g of the task loss alone: the total gradient minus the penalty's 2 c Omega (theta - theta~)
                grads.append(p.grad - (2 * si.hp.c) * big * (p.detach() - anchor))
        self.inner.step()
        with torch.no_grad():
            for i, (p, _, _) in enumerate(si.triples()):
                g, b = grads[i], before[i]
                if g is not None and b is not None:  # both or neither
                    si.omega(i).sub_(g * (p.detach() - b))


class SI(MethodBase):
    """Synaptic intelligence behind the method contract (hypermask.methods.Method)."""

    transient = ("omega",)  # zero at every task boundary

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = cfg.si
        for i, p in enumerate(target.parameters()):
            self.register_buffer(f"importance_{i}", torch.zeros_like(p))  # Omega
            self.register_buffer(f"anchor_{i}", p.detach().clone())  # theta~ (theta at the task's start)
            self.register_buffer(f"omega_{i}", torch.zeros_like(p))  # the running path integral

    def omega(self, i: int) -> Tensor:
        return getattr(self, f"omega_{i}")

    def triples(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(theta_k, Omega_k, theta~_k) for every target tensor."""
        return [
            (p, getattr(self, f"importance_{i}"), getattr(self, f"anchor_{i}"))
            for i, p in enumerate(self.target.parameters())
        ]

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """omega = 0 and theta~ = theta(start of task t) = theta(end of task t-1)."""
        for i, (p, _, anchor) in enumerate(self.triples()):
            self.omega(i).zero_()
            anchor.copy_(p.detach())

    def penalty(self) -> Tensor:
        """sum_k Omega_k (theta_k - theta~_k)^2 (without c)."""
        total = sum((big * (p - anchor).pow(2)).sum() for p, big, anchor in self.triples())
        assert isinstance(total, Tensor)  # the target has parameters: sum's start (0) never comes back
        return total

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        if t == 0:
            return ce, ce
        return ce + self.hp.c * self.penalty(), ce

    def make_optimizer(self, lr: float):
        return PathIntegral(super().make_optimizer(lr), self)

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """Omega = relu(Omega + omega / (delta^2 + xi)); theta~ is set at the next task's start."""
        for i, (p, big, anchor) in enumerate(self.triples()):
            big.add_(self.omega(i) / ((p.detach() - anchor).pow(2) + self.hp.xi)).clamp_(min=0)
            self.omega(i).zero_()
