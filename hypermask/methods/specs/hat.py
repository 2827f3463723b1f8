"""hat's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class HATConfig(Strict):
    """HAT (hypermask/methods/hat.py): the gates' s_max, the attention regulariser's c, plain
    SGD's learning rate and the gradient-norm clip (the authors' values)."""

    s_max: Annotated[float, Field(gt=1)] = 400.0
    c: Annotated[float, Field(ge=0)] = 0.75
    lr: Annotated[float, Field(gt=0)] = 0.05
    clip_grad: Annotated[float, Field(gt=0)] = 10000.0


RECORD = MethodRecord(
    name="hat",
    implementation="hat:HAT",
    family="isolation",
    head="one output head per task; hidden units gated per task",
    paper='J. Serra, D. Suris, M. Miron, A. Karatzoglou, "Overcoming Catastrophic Forgetting with Hard Attention to the Task", ICML 2018',
    code="github.com/joansj/hat (src/approaches/hat.py, src/networks/mlp_hat.py)",
    settings=HATConfig,
    per_task_head=True,
    targets=("mlp",),
    targets_why="hat is implemented for MLP targets (its conv form, the paper's AlexNet, is not)",
)
