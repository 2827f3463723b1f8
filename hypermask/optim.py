"""Adam and ReduceLROnPlateau for the training loop.

torch.optim's Optimizer imports torch's compiler stack (torch._dynamo, sympy, triton: about
900 modules) the first time it is built, which costs every training process 1-3 s and
150 MB of resident memory (docs/performance.md). FusedAdam calls the same fused Adam kernel
(`torch._fused_adam_`, one pass over each tensor) and ReduceLROnPlateau follows torch's
plateau rule; both equal torch's own bit for bit (tests). `torch._fused_adam_` is a private
op: `adam()` uses it only where it exists and HYPERMASK_TORCH_OPTIM is unset, and falls back
to torch.optim.Adam(fused=True) with torch's scheduler otherwise (the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor


def use_torch_optim() -> bool:
    from hypermask.environment import read_environment

    return read_environment().torch_optim == "1" or not hasattr(torch, "_fused_adam_")


def adam(params: Iterable[Tensor], lr: float):
    """A fresh Adam (default betas and eps, no weight decay) for one task."""
    if use_torch_optim():
        return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, fused=True)
    return FusedAdam(params, lr=lr)


def scale_lr(opt, factor: float) -> None:
    """Multiply the learning rate of whichever Adam adam() returned by `factor` (PackNet's
    retraining after pruning)."""
    opt = getattr(opt, "inner", opt)
    if isinstance(opt, FusedAdam):
        opt.lr *= factor
    else:
        for g in opt.param_groups:
            g["lr"] *= factor


def plateau(opt):
    """The reference's ReduceLROnPlateau on validation accuracy: factor sqrt(0.1), patience 5,
    min_lr 5e-7, for whichever Adam adam() returned."""
    kw = {"factor": math.sqrt(0.1), "patience": 5, "min_lr": 5e-7, "cooldown": 0}
    opt = getattr(opt, "inner", opt)  # a method's wrapper around adam() (SI's path integral)
    if isinstance(opt, FusedAdam):
        return ReduceLROnPlateau(opt, **kw)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", **kw)


class FusedAdam:
    """torch.optim.Adam(params, lr, fused=True) with default betas, eps and no weight decay:
    the first and second moments and the step count of each parameter, one fused kernel per
    (device, dtype) group, parameters without a gradient skipped (their state stays at zero,
    as torch's lazily created state does)."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is not None:
                groups.setdefault((p.device, p.dtype), []).append(i)
        for idx in groups.values():
            steps = [self.steps[i] for i in idx]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                [self.params[i] for i in idx],
                [g for i in idx if (g := self.params[i].grad) is not None],  # all of them: see groups
                [self.exp_avg[i] for i in idx],
                [self.exp_avg_sq[i] for i in idx],
                [],
                steps,
                lr=self.lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=0.0,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )


class ReduceLROnPlateau:
    """torch.optim.lr_scheduler.ReduceLROnPlateau in mode "max" with a relative threshold:
    after more than `patience` validations without a relative improvement of `threshold`, the
    learning rate is multiplied by `factor` (not below min_lr), then `cooldown` validations pass
    before bad ones count again."""

    def __init__(
        self,
        opt: FusedAdam,
        factor: float,
        patience: int,
        min_lr: float,
        threshold: float = 1e-4,
        cooldown: int = 0,
        eps: float = 1e-8,
    ):
        self.opt, self.factor, self.patience, self.min_lr = opt, factor, patience, min_lr
        self.threshold, self.cooldown, self.eps = threshold, cooldown, eps
        self.best, self.bad, self.cooldown_left = float("-inf"), 0, 0

    def step(self, metric: float) -> None:
        current = float(metric)
        if current > self.best * (self.threshold + 1.0):
            self.best, self.bad = current, 0
        else:
            self.bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad = 0
        if self.bad > self.patience:
            new = max(self.opt.lr * self.factor, self.min_lr)
            if self.opt.lr - new > self.eps:
                self.opt.lr = new
            self.cooldown_left, self.bad = self.cooldown, 0
