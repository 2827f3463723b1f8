"""independent's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord

RECORD = MethodRecord(
    name="independent",
    implementation="independent:Independent",
    family="bound",
    head="a separate network (and head) per task",
    paper="one network per task: the isolation bound of the HAT and PackNet papers",
    model_per_task=True,
)
