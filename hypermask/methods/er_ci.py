"""Experience replay in the class-incremental setting: ER (hypermask/methods/er.py; Chaudhry et
al., "On Tiny Episodic Memories in Continual Learning", arXiv 1902.10486, 2019) with one head
over all classes seen so far instead of a head per task, the class-incremental form of van de
Ven et al., "Three types of incremental learning", Nature Machine Intelligence 2022.

The same memory as the task-incremental ER (`per_class` ring-buffer slots for every class of
every task, filled as it fills them) and the same joint batch: task t's B samples plus B
replayed ones of tasks 0..t-1. The loss is the mean cross-entropy over the 2B rows of one
softmax over the classes of tasks 0..t (hypermask/methods/shared/class_incremental.py), each
row with its global class. Without the task id it predicts the argmax over every seen class.
"""

from __future__ import annotations

from torch import Tensor

from hypermask.methods.er import ER
from hypermask.methods.shared.class_incremental import (
    ClassIncremental,
    all_class_logits,
    block_width,
    seen_cross_entropy,
)


class ERClassIncremental(ClassIncremental, ER):
    """ER with one head over the classes seen so far (hypermask.methods.Method)."""

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        assert self.row_task is not None  # set by batch()
        ce = seen_cross_entropy(
            all_class_logits(self.target, x), y, self.row_task, t + 1, block_width(self.target)
        )
        return ce, ce
