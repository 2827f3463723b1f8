"""joint_ci's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord

RECORD = MethodRecord(
    name="joint_ci",
    implementation="joint_ci:JointClassIncremental",
    family="bound",
    head="one head over all classes, all tasks' data from the start",
    paper="joint training with one head over all classes: the upper bound of class-incremental learning",
    per_task_head=True,
    class_incremental=True,
)
