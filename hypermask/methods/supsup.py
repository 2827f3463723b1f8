"""SupSup: M. Wortsman, V. Ramanujan, R. Liu, A. Kembhavi, M. Rastegari, J. Yosinski,
A. Farhadi, "Supermasks in Superposition", NeurIPS 2020 (the GG scenario: task id given
while training and testing).

1. The target's weights are random and never trained: signed Kaiming constants,
   w = sign(N(0,1)) * sqrt(2 / fan_in) (the official code's `signed_constant` init,
   github.com/RAIVNLab/supsup), biases 0 (the official layers have none).
2. Each task learns one supermask over the weight tensors with edge-popup: fresh scores per
   task (kaiming-uniform, a = sqrt(5), as the official code), the top-k% of |scores| per
   tensor kept (`supsup.keep`), straight-through gradient to the scores
   (hypermask.methods.shared.supermask); a fresh Adam per task over the task's scores only.
3. After the task its mask is stored bit-packed; task t is evaluated with W * m_t. The
   weights never change, so BWT is exactly 0 by construction.

The mask rule is the official GG scripts' top-k `MultitaskMaskConv` (SplitCIFAR100,
SplitImageNet), the edge-popup the paper describes; the paper's own MNIST experiments use
`FastMultitaskMaskConv` (mask = scores >= 0, no fixed k, RMSprop at 1e-4), not implemented.
The official optimiser defaults, weight decay 1e-4 and a cosine schedule per task, are not
applied (Adam at a constant learning rate, as every method here); bench/verify/verify_supsup.py
runs the official code without them beside this one.

Batch norm's scale and shift stay at identity (the official code uses non-affine batch
norm). The scores of the task being learned are in the checkpoint but not in the memory
count (re-initialised at each task's start); the fixed weights are counted, though a seed
would regenerate them.

Without the task id: the paper's one-shot inference (section 3.3; evaluation setting
`oneshot`, hypermask.evaluation.accuracy.one_shot_inference) superposes every learned mask with weights
alpha_i = 1/k and picks the task whose alpha most lowers the output entropy, argmin_i dH/dalpha_i,
for a batch of one task's samples; entropy task inference (per sample, the lowest entropy
over the stored masks) is available as for HyperMask.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import functional_call

from hypermask.methods.shared.supermask import SupermaskMethod

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


class SupSup(SupermaskMethod):
    """SupSup behind the method contract (hypermask.methods.Method)."""

    transient = ("scores",)

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        names = [n for n in target.masked_names if n.endswith("weight")]
        super().__init__(target, names, cfg.supsup.keep, cfg.data.n_tasks)
        with torch.no_grad():
            for n, p in target.named_parameters():
                if n in names:
                    p.copy_(torch.randn_like(p).sign() * math.sqrt(2.0 / p[0].numel()))
                elif n in target.masked_names:
                    p.zero_()
                p.requires_grad_(False)

    def trained_parameters(self) -> int:
        """A fresh set of scores per task (the weights are never trained)."""
        return len(self.learned) * sum(s.numel() for s in self.scores)

    def start_task(self, t: int, n_iterations: int) -> None:
        """A new task's scores (drawn from the task's seed: the loop seeds torch before)."""
        self.init_scores()

    def superposed_logits(self, ctx: dict, tasks: list[int], alpha: Tensor, x: Tensor) -> Tensor:
        """f(x; W * sum_i alpha_i M_i) over the given tasks' masks (ctx from eval_context holds
        each W * M_i): the superposition one-shot inference differentiates with respect to alpha."""
        if self.target.per_task_bn:
            raise ValueError(
                "one-shot inference superposes tasks: it needs batch norm without per-task statistics"
            )
        params = {
            n: torch.einsum("k,k...->...", alpha, torch.stack([ctx[t][n] for t in tasks])) for n in self.names
        }
        return functional_call(self.target, params, (x,), {"task": None})
