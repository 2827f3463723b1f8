"""One output head over all classes seen so far: what the class-incremental methods (ER and
LwF in their class-incremental form, DER++, joint_ci) share.

The target's output layer keeps one block of C outputs per task (nets.py, n_heads = T), so
block k holds task k's classes and the whole layer is one head over all T x C classes: a sample
of task k with label y (local to its task) has the global class k * C + y. While task t trains,
a class-incremental method's softmax runs over the classes of tasks 0..t (the classes seen so
far; van de Ven et al., "Three types of incremental learning", Nature Machine Intelligence
2022, class-IL with "active" classes), not only over task t's block: the earlier tasks' blocks
are trained too, which is what lets it predict without the task id, by argmax over every seen
class (the `classil` evaluation setting, `seen_class_logits`). Told the task id (the `til`
setting), it reads task t's block, as every method with a head per task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from hypermask.nets import TargetNet


def block_width(net: TargetNet) -> int:
    """C, the classes of one task (the width of one output block)."""
    return net.head().out_features // net.n_heads


def all_class_logits(net: TargetNet, x: Tensor) -> Tensor:
    """(N, T * C): every class of every task, the one head."""
    return net.head()(net.features(x))


def global_labels(y: Tensor, task: Tensor | int, width: int) -> Tensor:
    """The global class of labels y (local to their tasks) of samples of `task` (one or per row)."""
    return y + task * width


def seen_cross_entropy(out: Tensor, y: Tensor, task: Tensor | int, seen: int, width: int) -> Tensor:
    """Mean cross-entropy over the classes of the first `seen` tasks (out: (N, T * C) logits)."""
    return F.cross_entropy(out[:, : seen * width], global_labels(y, task, width))


class ClassIncremental:
    """Mixed into a class-incremental method (a MethodBase with one block of outputs per task)."""

    target: TargetNet

    @torch.no_grad()
    def seen_class_logits(self, ctx: dict, x: Tensor, seen: int) -> Tensor:
        """(N, seen * C) logits of x over every class of the first `seen` tasks, no task id."""
        return all_class_logits(self.target, x)[:, : seen * block_width(self.target)]
