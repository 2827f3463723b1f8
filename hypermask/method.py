"""HyperMask (METHOD.md sections 2-4), in the paper's order.

1. H(e_t; Phi): an ELU MLP from a learned task embedding to one value per entry of every
   target tensor (weights and biases, batch norm excluded; the output bias included, as in
   the reference, whose hypernetwork is sized from all target shapes).
2. The semi-binary mask: s = |tanh(h)|; per tensor, zero the entries below the p-th
   percentile (linear interpolation); no gradient through the threshold. The last tensor
   (output bias) is not masked in the forward pass.
3. The network runs with theta_l * m_l.
4. Loss for task t > 0: CE + beta' * R_hnet + lambda * R_target with snapshots from the
   start of the task.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .nets import TargetNet


# --------------------------------------------------------------------------- 1. hypernetwork
class HyperNetwork(nn.Module):
    """Task embeddings (N(0,1)) -> ELU MLP -> one fused output layer for all target tensors."""

    def __init__(self, out_shapes: list[torch.Size], n_tasks: int, emb_dim: int, hidden: list[int]):
        super().__init__()
        self.out_shapes = [torch.Size(s) for s in out_shapes]
        self.out_sizes = [s.numel() for s in self.out_shapes]
        self.embeddings = nn.Parameter(torch.randn(n_tasks, emb_dim))
        sizes = [emb_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], sum(self.out_sizes))

    def forward(self, tasks: Tensor | slice) -> Tensor:
        """Flat outputs for the given tasks, shape (len(tasks), total)."""
        h = self.embeddings[tasks]
        for layer in self.hidden:
            h = F.elu(layer(h))
        return self.out(h)


# --------------------------------------------------------------------------- 2. semi-binary mask
def sparsity_at(iteration: int, n_iterations: int, target: float, first_task: bool, adaptive: bool) -> float:
    """Adaptive sparsity: on the first task p rises linearly to its target, p*(i+1)/I for
    iteration i = 0..I-1 (the reference's calculate_current_threshold(i + 1, p, I))."""
    if not (first_task and adaptive):
        return target
    return target * min(iteration + 1, n_iterations) / n_iterations


@torch.no_grad()
def percentile(s: Tensor, p: float) -> Tensor:
    """p-th percentile of a 1-D tensor with linear interpolation (numpy/torch.quantile default),
    via kthvalue, which has no 2^24-element cap."""
    n = s.numel()
    pos = p / 100.0 * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    v_lo = torch.kthvalue(s, lo + 1).values
    if frac == 0.0 or hi == lo:
        return v_lo
    v_hi = torch.kthvalue(s, hi + 1).values
    return v_lo + frac * (v_hi - v_lo)


def semi_binary_masks(h: Tensor, shapes: list[torch.Size], p: float) -> list[Tensor]:
    """Masks for one task from its flat hypernetwork output h.

    Returns one tensor per target tensor. Entries l < last: |tanh(h_l)| where it is >= the
    tensor's p-th percentile, else 0. The last entry is |tanh(h_last)| without threshold: the
    forward pass leaves the output bias unmasked, the masked L1 term uses it (reference).
    """
    s = h.tanh().abs()
    chunks = s.split([sh.numel() for sh in shapes])
    masks = []
    for i, (c, sh) in enumerate(zip(chunks, shapes)):
        if i < len(shapes) - 1 and p > 0:
            q = percentile(c, p)
            c = torch.where(c >= q, c, torch.zeros_like(c))
        masks.append(c.view(sh))
    return masks


# --------------------------------------------------------------------------- 3. masked forward
def masked_params(target: TargetNet, masks: list[Tensor]) -> dict[str, Tensor]:
    """theta_l * m_l for every masked tensor; the last tensor (output bias) unmasked."""
    params = dict(target.named_parameters())
    names = target.masked_names
    out = {n: params[n] * m for n, m in zip(names[:-1], masks[:-1])}
    out[names[-1]] = params[names[-1]]
    return out


def stacked_masked_forward(target: TargetNet, masks: list[list[Tensor]], x: Tensor, features: bool = False) -> Tensor:
    """f(x; theta * m_k) for K tasks' masks at once: (K, N, out). One vmapped call over the
    stacked masked weights instead of a Python loop over tasks. For targets whose batch norm
    uses batch statistics (or has none); per-task running statistics need the task id."""
    params = dict(target.named_parameters())
    names = target.masked_names
    k = len(masks)
    stacked = {n: params[n] * torch.stack([m[i] for m in masks]) for i, n in enumerate(names[:-1])}
    stacked[names[-1]] = params[names[-1]].expand(k, *params[names[-1]].shape)

    def one(p: dict[str, Tensor]) -> Tensor:
        return functional_call(target, p, (x,), {"task": None, "features": features})

    return torch.func.vmap(one, randomness="same")(stacked)


def masked_forward(target: TargetNet, masks: list[Tensor], x: Tensor, task: int | None, features: bool = False) -> Tensor:
    """f(x; theta * m) (or its penultimate features) without touching the module's own weights."""
    return functional_call(target, masked_params(target, masks), (x,), {"task": task, "features": features})


# --------------------------------------------------------------------------- 4. regularizers, loss
def hnet_regularizer(current: Tensor, targets: Tensor) -> Tensor:
    """R_hnet = (1/t) sum_{j<t} ||H(e_j) - H*_j||^2 over all outputs; rows are tasks j < t."""
    t = current.shape[0]
    return (current - targets).pow(2).sum() / t


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
