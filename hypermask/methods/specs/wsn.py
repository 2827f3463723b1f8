"""wsn's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class WSNConfig(Strict):
    """WSN (hypermask/methods/wsn.py): per tensor, the top `capacity` % of scores form the mask."""

    capacity: Annotated[float, Field(gt=0, le=100)] = 50.0


RECORD = MethodRecord(
    name="wsn",
    implementation="wsn:WSN",
    family="forget_free",
    head="one output head per task, dense and unmasked; the trunk masked",
    paper='H. Kang et al., "Forget-free Continual Learning with Winning Subnetworks", ICML 2022',
    code="github.com/ihaeyong/WSN (networks/mlp.py: per-task heads, curr_head_keys)",
    settings=WSNConfig,
    per_task_head=True,
    model_per_task=True,
)
