"""HyperMask: K. Książek and P. Spurek, "HyperMask: Adaptive Hypernetwork-based Masks for
Continual Learning", arXiv 2310.00113 (ICLR 2024 submission), in the paper's order; where the
paper is silent, the authors' implementation (github.com/gmum/HyperMask) decides, as noted.

1. H(e_t; Phi): an ELU MLP from a learned task embedding to one value per entry of every
   target tensor (weights and biases, batch norm excluded; the output bias included, as in
   the reference, whose hypernetwork is sized from all target shapes).
2. The semi-binary mask: s = |tanh(h)|; per tensor, zero the entries below the p-th
   percentile (linear interpolation); no gradient through the threshold. The last tensor
   (output bias) is not masked in the forward pass.
3. The network runs with theta_l * m_l.
4. Loss for task t > 0: CE + beta' * R_hnet + lambda * R_target with snapshots from the
   start of the task.
5. The method behind the loop's contract (`HyperMask`): a fresh Adam per task over the
   hypernetwork (embeddings included) and the target, the adaptive sparsity ramp on the first
   task, every task's mask at evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.functional import masked_forward, stacked_masked_forward
from hypermask.methods.shared.hypernetwork import HyperNetwork, hnet_regularizer
from hypermask.methods.shared.percentile import segments, thresholds

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


# --------------------------------------------------------------------------- 2. semi-binary mask
def sparsity_at(iteration: int, n_iterations: int, target: float, first_task: bool, adaptive: bool) -> float:
    """Adaptive sparsity: on the first task p rises linearly to its target, p*(i+1)/I for
    iteration i = 0..I-1 (the reference's calculate_current_threshold(i + 1, p, I))."""
    if not (first_task and adaptive):
        return target
    return target * min(iteration + 1, n_iterations) / n_iterations


def semi_binary_masks(h: Tensor, shapes: list[torch.Size], p: float) -> list[Tensor]:
    """Masks from flat hypernetwork outputs h (..., total), one tensor per target tensor (with
    h's leading dimensions). Entries l < last: |tanh(h_l)| where it is >= the tensor's p-th
    percentile, else 0; all thresholds from one batched call, applied to the fused vector, which
    is then split into views. The last entry is |tanh(h_last)| without threshold: the forward
    pass leaves the output bias unmasked, the masked L1 term uses it (reference)."""
    sizes = tuple(sh.numel() for sh in shapes)
    s = h.tanh().abs()
    if p > 0:
        seg = segments(sizes, s.device)[0]
        q = thresholds(s, sizes, p).index_select(-1, seg)
        # s * 1[s >= q] (= where(s >= q, s, 0), as s >= 0) with the indicator written as s's dtype
        # by the comparison itself: one pass, where s * (s >= q) casts the bool mask in a pass of
        # its own and again in the backward (3x slower on 475k entries; where is not vectorised)
        s = s * torch.ge(s, q, out=torch.empty_like(s))
    lead = s.shape[:-1]
    return [c.view(*lead, *sh) for c, sh in zip(s.split(sizes, -1), shapes)]


def target_regularizer(theta: list[Tensor], theta_star: list[Tensor], masks: list[Tensor] | None) -> Tensor:
    """R_target = sum_l ||(theta_l - theta*_l) (* m_l)||_1 over the masked tensor list (which
    includes the output layer; batch norm excluded). With masks the gradient also reaches the
    hypernetwork."""
    total = theta[0].new_zeros(())
    for i, (w, w0) in enumerate(zip(theta, theta_star)):
        d = w - w0
        if masks is not None:
            d = d * masks[i]
        total = total + d.abs().sum()
    return total


def hnet_reg_weight(beta: float, t: int, normalisation: str) -> float:
    """beta' in L = CE + beta' R_hnet + lambda R_target: the reference divides by t once more."""
    return beta / max(1, t) if normalisation == "reference" else beta


# --------------------------------------------------------------------------- 5. the method
class HyperMask(MethodBase):
    """HyperMask behind the method contract (hypermask.methods.Method). Its fresh Adam per task
    (MethodBase) covers hypernetwork (embeddings included) and target together, as the
    reference's does."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = hm = cfg.hypermask
        self.shapes = target.masked_shapes()
        self.hnet = HyperNetwork(self.shapes, cfg.data.n_tasks, hm.embedding_dim, list(hm.hnet_hidden))
        self.h_star: Tensor | None = None  # H(e_j) for j < t, fixed during task t
        self.theta_star: list[Tensor] | None = None  # target weights at the start of task t
        self.n_iterations = 1
        self.sparsity = hm.sparsity  # p of the latest training step (the ramp); evaluation uses it

    def _theta(self) -> list[Tensor]:
        params = dict(self.target.named_parameters())
        return [params[n] for n in self.target.masked_names]

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """Snapshots H*_j = H(e_j) for j < t and theta* (paper, section 3: taken at the start of
        the task and held fixed during it)."""
        self.n_iterations = n_iterations
        if t == 0:
            self.h_star, self.theta_star = None, None
            return
        self.h_star = self.hnet(slice(0, t)).detach().clone()
        self.theta_star = [w.detach().clone() for w in self._theta()]

    def graph_key(self, t: int, iteration: int):
        """The step depends on the iteration only through the sparsity (the first task's ramp)."""
        hm = self.hp
        return sparsity_at(iteration, self.n_iterations, hm.sparsity, t == 0, hm.adaptive_sparsity)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        hm = self.hp
        self.sparsity = sparsity_at(iteration, self.n_iterations, hm.sparsity, t == 0, hm.adaptive_sparsity)
        current, earlier = self.hnet.current_and_earlier(t)  # one call for every task so far
        masks = semi_binary_masks(current, self.shapes, self.sparsity)
        ce = F.cross_entropy(masked_forward(self.target, masks, x, t), y)
        if t == 0:
            return ce, ce
        assert self.h_star is not None and self.theta_star is not None  # start_task's, for t > 0
        r_hnet = hnet_regularizer(earlier, self.h_star)
        r_target = target_regularizer(self._theta(), self.theta_star, masks if hm.masked_l1 else None)
        beta = hnet_reg_weight(hm.beta, t, hm.hnet_reg_normalisation)
        return ce + beta * r_hnet + hm.lambda_ * r_target, ce

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        """All requested tasks' masks from one batched hypernetwork call and one batched threshold."""
        h = self.hnet(torch.tensor(tasks, device=self.hnet.embeddings.device))
        masks = semi_binary_masks(h, self.shapes, self.sparsity)  # thresholds of all tasks at once
        return {t: [m[i] for m in masks] for i, t in enumerate(tasks)}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return masked_forward(self.target, ctx[t], x, t, features=features)

    def all_task_outputs(self, ctx: dict, tasks: list[int], x: Tensor, features: bool = False) -> Tensor:
        """Outputs of the same inputs under each task's mask, (K, N, out): batched over tasks
        with vmap, or task by task where batch norm keeps per-task running statistics."""
        if self.target.per_task_bn:
            return torch.stack([self.logits(ctx, x, t, features) for t in tasks])
        return stacked_masked_forward(self.target, [ctx[t] for t in tasks], x, features)
