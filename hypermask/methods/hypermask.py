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

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..config import ExperimentConfig
from ..nets import TargetNet
from ..percentile import segments, thresholds
from .base import MethodBase


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
        s = s * (s >= q)  # = where(s >= q, s, 0), as s >= 0; vectorised (where is not): 3.5x faster
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
    return stacked_forward(target, stacked, x, features)


def stacked_forward(target: TargetNet, stacked: dict[str, Tensor], x: Tensor, features: bool = False) -> Tensor:
    """f(x; p_k) for K stacked sets of the target's tensors (leading dimension K): (K, N, out),
    one vmapped call (HyperMask's masked weights, HNET's generated weights, WSN's and SupSup's
    masks)."""

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
