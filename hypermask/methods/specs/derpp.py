"""derpp's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class DERPPConfig(Strict):
    """DER++ (hypermask/methods/derpp.py): a reservoir of `per_class` x (all classes) samples, the
    same number as ER's memory at the stream's end; alpha weighs the logit replay, beta the label replay."""

    per_class: Positive = 5
    alpha: Annotated[float, Field(ge=0)] = 0.5
    beta: Annotated[float, Field(ge=0)] = 0.5


RECORD = MethodRecord(
    name="derpp",
    implementation="derpp:DERPP",
    family="shared_network",
    head="one head over all classes (class-incremental; its losses over the whole head); replayed logits and classes",
    paper='P. Buzzega et al., "Dark Experience for General Continual Learning: a Strong, Simple Baseline", NeurIPS 2020',
    code="github.com/aimagelab/mammoth (models/derpp.py)",
    settings=DERPPConfig,
    per_task_head=True,
    class_incremental=True,
)
