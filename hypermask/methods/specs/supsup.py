"""supsup's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class SupSupConfig(Strict):
    """SupSup (hypermask/methods/supsup.py): per tensor, the top `keep` % of a task's scores."""

    keep: Annotated[float, Field(gt=0, le=100)] = 50.0


RECORD = MethodRecord(
    name="supsup",
    implementation="supsup:SupSup",
    family="forget_free",
    head="one shared output layer under each task's supermask",
    paper='M. Wortsman et al., "Supermasks in Superposition", NeurIPS 2020',
    code="github.com/RAIVNLab/supsup",
    settings=SupSupConfig,
    model_per_task=True,
    one_shot=True,
)
