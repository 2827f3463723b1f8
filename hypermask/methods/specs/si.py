"""si's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Strict


class SIConfig(Strict):
    """SI (hypermask/methods/si.py): c * sum_k Omega_k (theta_k - theta~_k)^2, damping xi."""

    c: Annotated[float, Field(ge=0)] = 0.1
    xi: Annotated[float, Field(gt=0)] = 1e-3


RECORD = MethodRecord(
    name="si",
    implementation="si:SI",
    family="shared_network",
    head="one output head per task",
    paper='F. Zenke, B. Poole, S. Ganguli, "Continual Learning Through Synaptic Intelligence", ICML 2017',
    code="github.com/ganguli-lab/pathint",
    settings=SIConfig,
    per_task_head=True,
)
