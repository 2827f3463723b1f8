"""The target network run with per-task parameters: masked (HyperMask, supermasks) or generated
(HNET), one task or several tasks stacked in one batched pass (functional_call over vmap-free
batched products).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import functional_call

if TYPE_CHECKING:
    from hypermask.nets import TargetNet


# --------------------------------------------------------------------------- 3. masked forward
def masked_params(target: TargetNet, masks: list[Tensor]) -> dict[str, Tensor]:
    """theta_l * m_l for every masked tensor; the last tensor (output bias) unmasked."""
    params = dict(target.named_parameters())
    names = target.masked_names
    out = {n: params[n] * m for n, m in zip(names[:-1], masks[:-1])}
    out[names[-1]] = params[names[-1]]
    return out


def stacked_masked_forward(
    target: TargetNet, masks: list[list[Tensor]], x: Tensor, features: bool = False
) -> Tensor:
    """f(x; theta * m_k) for K tasks' masks at once: (K, N, out). One vmapped call over the
    stacked masked weights instead of a Python loop over tasks. For targets whose batch norm
    uses batch statistics (or has none); per-task running statistics need the task id."""
    params = dict(target.named_parameters())
    names = target.masked_names
    k = len(masks)
    stacked = {n: params[n] * torch.stack([m[i] for m in masks]) for i, n in enumerate(names[:-1])}
    stacked[names[-1]] = params[names[-1]].expand(k, *params[names[-1]].shape)
    return stacked_forward(target, stacked, x, features)


def stacked_forward(
    target: TargetNet, stacked: dict[str, Tensor], x: Tensor, features: bool = False
) -> Tensor:
    """f(x; p_k) for K stacked sets of the target's tensors (leading dimension K): (K, N, out),
    one vmapped call (HyperMask's masked weights, HNET's generated weights, WSN's and SupSup's
    masks)."""

    def one(p: dict[str, Tensor]) -> Tensor:
        return functional_call(target, p, (x,), {"task": None, "features": features})

    return torch.func.vmap(one, randomness="same")(stacked)


def masked_forward(
    target: TargetNet, masks: list[Tensor], x: Tensor, task: int | None, features: bool = False
) -> Tensor:
    """f(x; theta * m) (or its penultimate features) without touching the module's own weights."""
    return functional_call(target, masked_params(target, masks), (x,), {"task": task, "features": features})
