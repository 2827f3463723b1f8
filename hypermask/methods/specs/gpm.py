"""gpm's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Fraction, Positive, Strict


class GPMConfig(Strict):
    """GPM (hypermask/methods/gpm.py): energy thresholds of the bases, samples per
    representation matrix, plain SGD's learning rate."""

    threshold_first: Fraction = 0.95  # the first layer's (the authors' Permuted MNIST values)
    threshold: Fraction = 0.99  # every other layer's
    samples: Positive = 300
    lr: Annotated[float, Field(gt=0)] = 0.01


RECORD = MethodRecord(
    name="gpm",
    implementation="gpm:GPM",
    family="shared_network",
    head="one head per task on every benchmark, trained only by its task and not projected (the task-incremental "
    "protocol; the authors' single projected head on Permuted MNIST is a domain-incremental choice)",
    paper='G. Saha, I. Garg, K. Roy, "Gradient Projection Memory for Continual Learning", ICLR 2021',
    code="github.com/sahagobinda/GPM (main_pmnist.py)",
    settings=GPMConfig,
    per_task_head=True,
    targets=("mlp",),
    targets_why="gpm is implemented for MLP targets (its conv form, the paper's AlexNet and ResNet-18, is not)",
)
