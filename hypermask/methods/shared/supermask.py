"""What the two supermask methods (WSN, SupSup) share: the top-k% binary mask of a score
tensor with a straight-through gradient (edge-popup, Ramanujan et al., CVPR 2020), and
bit-packed storage of binary masks (one bit per weight, 8 per byte)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.functional import stacked_forward
from hypermask.methods.shared.percentile import kth_smallest

if TYPE_CHECKING:
    from hypermask.nets import TargetNet

_BITS = 1 << torch.arange(8, dtype=torch.uint8)


def top_mask(scores: Tensor, keep: float) -> Tensor:
    """The binary mask (scores' dtype) that keeps the `keep` % largest |scores| of the tensor:
    the n - int((1 - keep/100) n) largest, as WSN's `GetSubnetFaster` counts them. The
    threshold is the n_drop-th smallest |score| by selection (linear time, numpy's on a CPU:
    hypermask.methods.shared.percentile.kth_smallest; the official codes sort, 4x slower here on
    fmnist_split's 410k-weight layer); scores tied with the threshold are dropped with it,
    which changes the count only on exact ties (scores are continuous)."""
    a = scores.detach().abs()
    n_drop = int((1 - keep / 100) * a.numel())
    if n_drop == 0:
        return torch.ones_like(a)
    return (a > kth_smallest(a.flatten(), n_drop).to(a.device)).to(a.dtype)


def straight_through_mask(scores: Tensor, keep: float) -> Tensor:
    """top_mask in the forward pass; in the backward pass the gradient reaches the scores as if
    the mask were |scores| (edge-popup's straight-through estimator, as WSN and SupSup use it)."""
    a = scores.abs()
    return top_mask(scores, keep) + (a - a.detach())


def pack(mask: Tensor) -> Tensor:
    """A binary mask as uint8 bytes, 8 entries per byte (little-endian bit order)."""
    flat = mask.detach().flatten().to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return (flat.view(-1, 8) * _BITS.to(flat.device)).sum(1, dtype=torch.uint8)


def unpack(packed: Tensor, shape: torch.Size, dtype: torch.dtype = torch.float32) -> Tensor:
    """The inverse of pack: the mask of `shape` as `dtype` (0 or 1)."""
    bits = (packed.unsqueeze(1) & _BITS.to(packed.device)).ne(0).flatten()
    n = 1
    for d in shape:
        n *= d
    return bits[:n].view(shape).to(dtype)


def packed_size(shape: torch.Size) -> int:
    n = 1
    for d in shape:
        n *= d
    return (n + 7) // 8


def freeze_batch_norm(target) -> None:
    """Batch norm's scale and shift fixed at identity: shared by all tasks, a trained one would
    change every earlier task's function (WSN and SupSup are forget-free by construction only
    if nothing shared is trained; batch statistics themselves carry no state)."""
    masked = set(target.masked_names)
    for n, p in target.named_parameters():
        if n not in masked:
            p.requires_grad_(False)


class TaskTensors:
    """Outputs of a method whose eval context maps each task to its own values of the target
    tensors `self.names` (WSN's and SupSup's masked weights, PackNet's owned weights), and whose
    output layer is either among them (one shared head) or one block per task (WSN, PackNet)."""

    target: TargetNet  # the method's (MethodBase)
    names: list[str]

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return functional_call(self.target, ctx[t], (x,), {"task": t, "features": features})

    def all_task_outputs(self, ctx: dict, tasks: list[int], x: Tensor, features: bool = False) -> Tensor:
        if self.target.per_task_bn:
            return torch.stack([self.logits(ctx, x, t, features) for t in tasks])
        stacked = {n: torch.stack([ctx[t][n] for t in tasks]) for n in self.names}
        if self.target.n_heads == 1:
            return stacked_forward(self.target, stacked, x, features)
        feats = stacked_forward(self.target, stacked, x, features=True)  # then each task's own head
        return feats if features else self.target.task_heads(feats, tasks)


class SupermaskMethod(TaskTensors, MethodBase):
    """A method that runs the target with one binary mask per task over (some of) its tensors,
    learned as top-k% of scores and stored bit-packed after the task (WSN, SupSup)."""

    learned: Tensor  # buffer: which tasks have their mask stored

    def __init__(self, target, names: list[str], keep: float, n_tasks: int):
        super().__init__(target)
        params = dict(target.named_parameters())
        self.names, self.keep = names, keep
        self.shapes = [params[n].shape for n in names]
        self.scores = nn.ParameterList(nn.Parameter(torch.empty(s)) for s in self.shapes)
        self.init_scores()
        self.register_buffer("learned", torch.zeros(n_tasks, dtype=torch.bool))
        for i, s in enumerate(self.shapes):
            self.register_buffer(f"masks_{i}", torch.zeros(n_tasks, packed_size(s), dtype=torch.uint8))
        freeze_batch_norm(target)

    @torch.no_grad()
    def init_scores(self) -> None:
        """kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (both
        official codes); a bias's scores take its layer's fan-in."""
        fan_in = {n.rsplit(".", 1)[0]: s[1:].numel() for n, s in zip(self.names, self.shapes) if len(s) > 1}
        for n, s in zip(self.names, self.scores):
            s.uniform_(-1, 1).div_(math.sqrt(fan_in.get(n.rsplit(".", 1)[0], s.numel())))

    def stored_mask(self, t: int, i: int) -> Tensor:
        return unpack(getattr(self, f"masks_{i}")[t], self.shapes[i])

    def masked(self, masks: list[Tensor]) -> dict[str, Tensor]:
        params = dict(self.target.named_parameters())
        return {n: params[n] * m for n, m in zip(self.names, masks)}

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        masks = [straight_through_mask(s, self.keep) for s in self.scores]
        ce = F.cross_entropy(functional_call(self.target, self.masked(masks), (x,), {"task": t}), y)
        return ce, ce

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """m_t from the final scores, stored bit-packed."""
        for i, s in enumerate(self.scores):
            getattr(self, f"masks_{i}")[t] = pack(top_mask(s, self.keep))
        self.learned[t] = True

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        """Stored masks for learned tasks; a task not learned yet uses the current scores' mask
        (the random-init row of the accuracy matrix)."""
        return {
            t: self.masked(
                [self.stored_mask(t, i) for i in range(len(self.names))]
                if self.learned[t]
                else [top_mask(s, self.keep) for s in self.scores]
            )
            for t in tasks
        }
