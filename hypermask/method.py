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

import functools
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


def _interpolation(n: int, p: float) -> tuple[int, int, float]:
    """0-based ranks of the lower and upper neighbours of the p-th percentile of n values and
    the fraction between them (linear interpolation, the numpy/torch.quantile default)."""
    pos = p / 100.0 * (n - 1)
    lo = math.floor(pos)
    return lo, min(lo + 1, n - 1), pos - lo


@torch.no_grad()
def percentile_rows(x: Tensor, p: float) -> Tensor:
    """p-th percentile along the last dimension, all rows at once. One kthvalue (no 2^24 cap,
    unlike torch.quantile) finds the lower neighbour; the upper one is the lower one again when
    that value is repeated, else the smallest larger value: two linear passes instead of a
    second selection."""
    lo, hi, frac = _interpolation(x.shape[-1], p)
    v_lo = torch.kthvalue(x, lo + 1, dim=-1).values
    if frac == 0.0 or hi == lo:
        return v_lo
    below = v_lo.unsqueeze(-1)
    repeated = (x <= below).sum(-1) >= lo + 2
    above = torch.where(x > below, x, math.inf).amin(-1)
    return v_lo + frac * (torch.where(repeated, v_lo, above) - v_lo)


@functools.lru_cache(maxsize=64)
def _size_groups(sizes: tuple[int, ...]) -> tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...]:
    """(numel, flat offsets, tensor indices) of the thresholded tensors (all but the last),
    grouped by size: equal-sized tensors (ResNet blocks) share one batched selection."""
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i, n in enumerate(sizes[:-1]):
        groups.setdefault(n, ([], []))
        groups[n][0].append(offsets[i])
        groups[n][1].append(i)
    return tuple((n, tuple(o), tuple(ix)) for n, (o, ix) in groups.items())


@functools.lru_cache(maxsize=64)
def _segments(sizes: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """On the device, once: each entry's tensor index, each tensor's size and flat offset."""
    n = torch.tensor(sizes)
    seg = torch.repeat_interleave(torch.arange(len(sizes)), n)
    offsets = torch.cumsum(n, 0) - n
    return seg.to(device), n.to(device), offsets.to(device)


def _thresholds_select(s: Tensor, sizes: tuple[int, ...], p: float) -> Tensor:
    """Per-size-group batched kthvalue (the CPU path: selection is linear, a sort is not)."""
    q = s.new_zeros(*s.shape[:-1], len(sizes))
    for n, offsets, index in _size_groups(sizes):
        rows = torch.stack([s[..., o:o + n] for o in offsets], -2) if len(offsets) > 1 else s[..., offsets[0]:offsets[0] + n].unsqueeze(-2)
        q[..., list(index)] = percentile_rows(rows, p)
    return q


def _thresholds_sort(s: Tensor, sizes: tuple[int, ...], p: float) -> Tensor:
    """One segmented sort of the fused vector (the accelerator path: no call per tensor). The
    bit patterns of non-negative float32 values order as the values, so the int64 key
    (tensor index << 32) + bits sorts tensor by tensor, exactly."""
    seg, n, offsets = _segments(sizes, s.device)
    high = seg << 32
    bits = torch.sort(s.contiguous().view(torch.int32).long() + high, dim=-1).values - high
    key = bits.int().view(torch.float32)
    pos = (n - 1).double() * (p / 100.0)
    lo = pos.floor()
    frac = (pos - lo).float()
    lo = lo.long()
    hi = torch.minimum(lo + 1, n - 1)
    v_lo = key.index_select(-1, offsets + lo)
    v_hi = key.index_select(-1, offsets + hi)
    q = v_lo + frac * (v_hi - v_lo)
    return torch.where(torch.arange(len(sizes), device=s.device) < len(sizes) - 1, q, 0.0)


@torch.no_grad()
def thresholds(s: Tensor, sizes: tuple[int, ...], p: float, how: str = "auto") -> Tensor:
    """Every tensor's p-th percentile of s (..., total) at once, (..., len(sizes)); the last
    tensor (output bias) gets 0, i.e. no threshold. how: select | sort | auto (select on CPU,
    sort elsewhere). Both equal numpy.percentile per tensor (tests)."""
    if how == "auto":
        how = "select" if s.device.type == "cpu" else "sort"
    return _thresholds_select(s, sizes, p) if how == "select" else _thresholds_sort(s, sizes, p)


def semi_binary_masks(h: Tensor, shapes: list[torch.Size], p: float) -> list[Tensor]:
    """Masks from flat hypernetwork outputs h (..., total), one tensor per target tensor (with
    h's leading dimensions). Entries l < last: |tanh(h_l)| where it is >= the tensor's p-th
    percentile, else 0; all thresholds from one batched call, applied to the fused vector, which
    is then split into views. The last entry is |tanh(h_last)| without threshold: the forward
    pass leaves the output bias unmasked, the masked L1 term uses it (reference)."""
    sizes = tuple(sh.numel() for sh in shapes)
    s = h.tanh().abs()
    if p > 0:
        seg = _segments(sizes, s.device)[0]
        q = thresholds(s, sizes, p).index_select(-1, seg)
        s = torch.where(s >= q, s, 0.0)
    lead = s.shape[:-1]
    return [c.view(*lead, *sh) for c, sh in zip(s.split(sizes, -1), shapes)]


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
