"""finetune's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord

RECORD = MethodRecord(
    name="finetune",
    implementation="finetune:FineTune",
    family="shared_network",
    head="one output head per task",
    paper="fine-tuning: the lower bound of a continual-learning table",
    per_task_head=True,
)
