"""joint's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord

RECORD = MethodRecord(
    name="joint",
    implementation="joint:Joint",
    family="bound",
    head="one output head per task, all tasks' data from the start",
    paper="joint training on every task's data: the upper bound of a shared network",
    per_task_head=True,
)
