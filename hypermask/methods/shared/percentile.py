"""Percentiles of many tensors at once: the thresholds of HyperMask's semi-binary masks.

`thresholds(s, sizes, p)` gives every tensor's p-th percentile of a fused vector (and of many
tasks' vectors at once), with linear interpolation, equal to numpy.percentile per tensor
(tests): per-size-group selection on a CPU, one exact segmented sort on an accelerator.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor


def _interpolation(n: int, p: float) -> tuple[int, int, float]:
    """0-based ranks of the lower and upper neighbours of the p-th percentile of n values and
    the fraction between them (linear interpolation, the numpy/torch.quantile default)."""
    pos = p / 100.0 * (n - 1)
    lo = math.floor(pos)
    return lo, min(lo + 1, n - 1), pos - lo


@torch.no_grad()
def percentile_rows(x: Tensor, p: float) -> Tensor:
    """p-th percentile along the last dimension, all rows at once, from its two neighbouring
    order statistics (exact values of x; no 2^24 cap, unlike torch.quantile)."""
    lo, hi, frac = _interpolation(x.shape[-1], p)
    v_lo, v_hi = _order_stats(x, lo, hi)
    if frac == 0.0 or hi == lo:
        return v_lo
    return v_lo + frac * (v_hi - v_lo)


def _numpy_selects(x: Tensor) -> bool:
    """Whether numpy's selection serves x: a CPU tensor numpy can view (float32 or float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _order_stats(x: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """The lo-th and hi-th smallest values (0-based ranks, hi = lo or lo + 1) along the last
    dimension: numpy's selection on a CPU, torch's elsewhere (both exact)."""
    if _numpy_selects(x):
        return _order_stats_numpy(x, lo, hi)
    return _order_stats_torch(x, lo, hi)


def kth_smallest(x: Tensor, k: int) -> Tensor:
    """torch.kthvalue(x, k, dim=-1).values (k 1-based), the same value: numpy's selection on a
    CPU (2-10x faster on the 2-core AMD EPYC VMs measured, bench/bench_percentile.py), torch's
    elsewhere."""
    if _numpy_selects(x):
        return torch.from_numpy(np.partition(x.detach().numpy(), k - 1, axis=-1)[..., k - 1].copy())
    return torch.kthvalue(x, k, dim=-1).values


def _order_stats_numpy(x: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """numpy's introselect puts the lo-th in place; the hi-th is the least of the values after
    it. For the 313,600 entries of fmnist_split's first layer: 0.52 ms on a 2-core AMD EPYC VM
    with AVX2, where the torch path took 5.4 ms and numpy.partition with both ranks at once
    3.3 ms; 2.3 ms on another with AVX-512, against 4.6 and 2.9 ms (bench/bench_percentile.py)."""
    part = np.partition(x.detach().numpy(), lo, axis=-1)
    v_hi = part[..., lo + 1 :].min(axis=-1) if hi > lo else part[..., lo]
    return torch.from_numpy(part[..., lo].copy()), torch.from_numpy(np.array(v_hi, copy=True))


def _order_stats_torch(x: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """One kthvalue for the lower neighbour; the upper one is the lower one again when that
    value is repeated, else the smallest larger value (two linear passes, no second selection)."""
    v_lo = torch.kthvalue(x, lo + 1, dim=-1).values
    if hi == lo:
        return v_lo, v_lo
    below = v_lo.unsqueeze(-1)
    repeated = (x <= below).sum(-1) >= lo + 2
    above = torch.where(x > below, x, math.inf).amin(-1)
    return v_lo, torch.where(repeated, v_lo, above)


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
def segments(sizes: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """On the device, once: each entry's tensor index, each tensor's size and flat offset."""
    n = torch.tensor(sizes)
    seg = torch.repeat_interleave(torch.arange(len(sizes)), n)
    offsets = torch.cumsum(n, 0) - n
    return seg.to(device), n.to(device), offsets.to(device)


def _thresholds_select(s: Tensor, sizes: tuple[int, ...], p: float) -> Tensor:
    """Per-size-group batched selection (the CPU path: selection is linear, a sort is not)."""
    q = s.new_zeros(*s.shape[:-1], len(sizes))
    for n, offsets, index in _size_groups(sizes):
        rows = (
            torch.stack([s[..., o : o + n] for o in offsets], -2)
            if len(offsets) > 1
            else s[..., offsets[0] : offsets[0] + n].unsqueeze(-2)
        )
        q[..., list(index)] = percentile_rows(rows, p)
    return q


def _thresholds_sort(s: Tensor, sizes: tuple[int, ...], p: float) -> Tensor:
    """One segmented sort of the fused vector (the accelerator path: no call per tensor). The
    bit patterns of non-negative float32 values order as the values, so the int64 key
    (tensor index << 32) + bits sorts tensor by tensor, exactly."""
    seg, n, offsets = segments(sizes, s.device)
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
