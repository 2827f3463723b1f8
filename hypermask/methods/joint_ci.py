"""Joint training with one head over all classes: the upper bound of the class-incremental
setting (e.g. van de Ven et al., "Three types of incremental learning", Nature Machine
Intelligence 2022, "Joint"). Joint training's batches (hypermask/methods/joint.py: every batch
mixes all T tasks, the same total budget as every method) with one softmax over every class of
every task, each sample with its global class; without the task id it predicts the argmax over
every seen class, told it, the task's block of classes.
"""

from __future__ import annotations

from torch import Tensor

from hypermask.methods.joint import Joint
from hypermask.methods.shared.class_incremental import (
    ClassIncremental,
    all_class_logits,
    block_width,
    seen_cross_entropy,
)


class JointClassIncremental(ClassIncremental, Joint):
    """Joint training, one head over all classes (hypermask.methods.Method)."""

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        assert self.row_task is not None  # set by batch()
        net = self.target
        ce = seen_cross_entropy(all_class_logits(net, x), y, self.row_task, net.n_heads, block_width(net))
        return ce, ce
