"""packnet's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class PackNetConfig(Strict):
    """PackNet (hypermask/methods/packnet.py): after training a task, release `prune` % of the
    weights it trained (smallest |w|, per layer) and retrain the rest for the task's last
    `retrain_fraction` of iterations at `retrain_lr` times the learning rate."""

    prune: Annotated[float, Field(ge=0, lt=100)] = 75.0
    retrain_fraction: Annotated[float, Field(ge=0, lt=1)] = 1 / 3
    retrain_lr: Annotated[float, Field(gt=0)] = 0.1


RECORD = MethodRecord(
    name="packnet",
    implementation="packnet:PackNet",
    family="forget_free",
    head="one output head per task; the trunk pruned and frozen",
    paper='A. Mallya and S. Lazebnik, "PackNet: Adding Multiple Tasks to a Single Network by Iterative Pruning", CVPR 2018',
    code="github.com/arunmallya/packnet (src/prune.py, src/networks.py)",
    settings=PackNetConfig,
    per_task_head=True,
    model_per_task=True,
    # packnet.OWNER_DTYPE: 0 is a free weight, 1..255 the task that trained it
    max_tasks=255,
    max_tasks_why="each weight's owner is stored in 8 bits (0: free, 1 to 255: the task that trained it)",
)
