"""The two learners behind one small contract, so the continual loop is method-agnostic.

- `HyperMaskLearner`: a hypernetwork masks one shared target network per task (method.py).
- `FineTuneLearner`: the same target network trained task after task, nothing else; the
  baseline that shows forgetting.

Contract: `parameters()` (all trained), `start_task(t)` (take the task's snapshots),
`loss(x, y, t, sparsity)` -> (total, cross-entropy), `eval_context(tasks)` (everything a
batch of evaluations needs, computed once) and `logits(ctx, x, t)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ExperimentConfig
from .method import (
    HyperNetwork,
    hnet_reg_weight,
    hnet_regularizer,
    masked_forward,
    semi_binary_masks,
    stacked_masked_forward,
    target_regularizer,
)
from .nets import TargetNet


class FineTuneLearner(nn.Module):

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__()
        self.cfg, self.target = cfg, target

    def start_task(self, t: int) -> None:
        pass

    def loss(self, x: Tensor, y: Tensor, t: int, sparsity: float) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        return ce, ce

    @torch.no_grad()
    def eval_context(self, tasks: list[int], sparsity: float) -> dict:
        return {}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.target(x, t, features=features)


class HyperMaskLearner(nn.Module):

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__()
        self.cfg, self.target = cfg, target
        hm = cfg.hypermask
        self.shapes = target.masked_shapes()
        self.hnet = HyperNetwork(self.shapes, cfg.data.n_tasks, hm.embedding_dim, list(hm.hnet_hidden))
        self.h_star: Tensor | None = None  # H(e_j) for j < t, fixed during task t
        self.theta_star: list[Tensor] | None = None  # target weights at the start of task t

    def _theta(self) -> list[Tensor]:
        params = dict(self.target.named_parameters())
        return [params[n] for n in self.target.masked_names]

    @torch.no_grad()
    def start_task(self, t: int) -> None:
        if t == 0:
            self.h_star, self.theta_star = None, None
            return
        self.h_star = self.hnet(slice(0, t)).detach().clone()
        self.theta_star = [w.detach().clone() for w in self._theta()]

    def loss(self, x: Tensor, y: Tensor, t: int, sparsity: float) -> tuple[Tensor, Tensor]:
        hm = self.cfg.hypermask
        h = self.hnet(slice(0, t + 1))  # one call: the current task and every earlier one
        masks = semi_binary_masks(h[t], self.shapes, sparsity)
        ce = F.cross_entropy(masked_forward(self.target, masks, x, t), y)
        if t == 0:
            return ce, ce
        r_hnet = hnet_regularizer(h[:t], self.h_star)
        r_target = target_regularizer(self._theta(), self.theta_star, masks if hm.masked_l1 else None)
        beta = hnet_reg_weight(hm.beta, t, hm.hnet_reg_normalisation)
        return ce + beta * r_hnet + hm.lambda_ * r_target, ce

    @torch.no_grad()
    def eval_context(self, tasks: list[int], sparsity: float) -> dict:
        """All requested tasks' masks from one batched hypernetwork call and one batched threshold."""
        h = self.hnet(torch.tensor(tasks, device=self.hnet.embeddings.device))
        masks = semi_binary_masks(h, self.shapes, sparsity)  # thresholds of all tasks at once
        return {t: [m[i] for m in masks] for i, t in enumerate(tasks)}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return masked_forward(self.target, ctx[t], x, t, features=features)

    def all_task_outputs(self, ctx: dict, tasks: list[int], x: Tensor, features: bool = False) -> Tensor:
        """Outputs of the same inputs under each task's mask, (K, N, out): batched over tasks
        with vmap, or task by task where batch norm keeps per-task running statistics."""
        if self.per_task_bn:
            return torch.stack([self.logits(ctx, x, t, features) for t in tasks])
        return stacked_masked_forward(self.target, [ctx[t] for t in tasks], x, features)

    @property
    def per_task_bn(self) -> bool:
        return any(getattr(m, "mode", None) == "per_task" for m in self.target.modules())


def build_learner(cfg: ExperimentConfig, target: TargetNet) -> FineTuneLearner | HyperMaskLearner:
    return HyperMaskLearner(cfg, target) if cfg.method == "hypermask" else FineTuneLearner(cfg, target)
