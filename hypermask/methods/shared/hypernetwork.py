"""The task-conditioned hypernetwork HyperMask and hnet_full share (an ELU MLP from a task
embedding to one value per target entry; its wide output layer stored transposed) and the
hypernetwork regulariser (von Oswald et al. 2020) HyperMask and HNET share.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --------------------------------------------------------------------------- 1. hypernetwork
class WideLinear(nn.Module):
    """nn.Linear(k, n) for n >> k (the hypernetwork's output layer: k ~ 25 hidden units, n ~ 1e5
    target entries) with its weight stored transposed, (k, n) contiguous. The same
    initialisation as nn.Linear (its draws, then transposed), the same products; but each of the
    step's three products (forward h W^T, backward g W and h^T g) now streams the weight or its
    gradient once along n, and Adam's fused kernel gets a contiguous tensor. Row-major, these
    products took about 3x as long in the training step (docs/performance.md). Sums over n may round
    differently from the row-major layout. Checkpoints with an (n, k) `weight` load too."""

    def __init__(self, k: int, n: int):
        super().__init__()
        lin = nn.Linear(k, n)
        self.weight_t = nn.Parameter(lin.weight.detach().t().contiguous())
        self.bias = nn.Parameter(lin.bias.detach().clone())

    @property
    def weight(self) -> Tensor:
        """The (n, k) weight as nn.Linear holds it (a view)."""
        return self.weight_t.t()

    def forward(self, h: Tensor) -> Tensor:
        return torch.addmm(self.bias, h, self.weight_t) if h.dim() == 2 else h @ self.weight_t + self.bias

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        old = state_dict.pop(prefix + "weight", None)  # a checkpoint from nn.Linear
        if old is not None:
            state_dict[prefix + "weight_t"] = old.t()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class HyperNetwork(nn.Module):
    """Task embeddings (N(0,1)) -> ELU MLP -> one fused output layer for all target tensors."""

    def __init__(self, out_shapes: list[torch.Size], n_tasks: int, emb_dim: int, hidden: list[int]):
        super().__init__()
        self.out_shapes = [torch.Size(s) for s in out_shapes]
        self.out_sizes = [s.numel() for s in self.out_shapes]
        self.embeddings = nn.Parameter(torch.randn(n_tasks, emb_dim))
        sizes = [emb_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = WideLinear(sizes[-1], sum(self.out_sizes))

    def forward(self, tasks: Tensor | slice) -> Tensor:
        """Flat outputs for the given tasks, shape (len(tasks), total)."""
        h = self.embeddings[tasks]
        for layer in self.hidden:
            h = F.elu(layer(h))
        return self.out(h)

    def current_and_earlier(self, t: int) -> tuple[Tensor, Tensor]:
        """H(e_t), shape (total,), and H(e_j) for j < t, (t, total), from one call. Split, not
        indexed as h[t] and h[:t]: the split's gradient is one cat of the two parts', where
        each index's was a zero tensor of the whole output, filled in, and then the two summed."""
        earlier, current = self(slice(0, t + 1)).split((t, 1))
        return current.squeeze(0), earlier


# --------------------------------------------------------------------------- 4. regularizers, loss
def hnet_regularizer(current: Tensor, targets: Tensor) -> Tensor:
    """R_hnet = (1/t) sum_{j<t} ||H(e_j) - H*_j||^2 over all outputs; rows are tasks j < t."""
    t = current.shape[0]
    # mse_loss: the same value and gradient, bit for bit, as (current - targets).pow(2).sum(), in
    # one fused backward pass (2 * d * g) where pow's takes three (2.5x faster on 475k entries)
    return F.mse_loss(current, targets, reduction="sum") / t
