"""lwf's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class LwFConfig(Strict):
    """Learning without Forgetting, class-incremental (hypermask/methods/lwf.py)."""

    lambda_: Annotated[float, Field(ge=0, alias="lambda")] = 1.0  # Li and Hoiem's lambda_o
    temperature: Annotated[float, Field(gt=0)] = 2.0  # Li and Hoiem's T


RECORD = MethodRecord(
    name="lwf",
    implementation="lwf:LwF",
    family="shared_network",
    head="one head over all classes seen so far (class-incremental); no stored samples",
    paper='Z. Li and D. Hoiem, "Learning without Forgetting", TPAMI 2018, class-incremental as in van de Ven et al. 2022',
    code="github.com/GMvandeVen/continual-learning (the class-incremental setting)",
    settings=LwFConfig,
    per_task_head=True,
    class_incremental=True,
)
