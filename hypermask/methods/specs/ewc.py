"""ewc's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class EWCConfig(Strict):
    """Online EWC (hypermask/methods/ewc.py)."""

    lambda_: Annotated[float, Field(ge=0, alias="lambda")] = 100.0  # penalty weight (lambda / 2 in the loss)
    gamma: Annotated[float, Field(gt=0, le=1)] = 1.0  # decay of the earlier tasks' Fisher (online form)
    fisher_samples: Positive = 1000  # training samples of a task used for its Fisher
    fisher_batch_size: Positive = 256  # per-sample gradients computed this many at a time


RECORD = MethodRecord(
    name="ewc",
    implementation="ewc:EWC",
    family="shared_network",
    head="one output head per task",
    paper="J. Kirkpatrick et al., PNAS 2017, online form of J. Schwarz et al., ICML 2018",
    settings=EWCConfig,
    per_task_head=True,
    targets=("mlp",),
    targets_why="online EWC needs per-sample gradients, here of an MLP target (batch norm with batch statistics has no per-sample output)",
)
