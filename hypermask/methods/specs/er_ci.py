"""er_ci's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord
from hypermask.methods.specs.er import ERConfig

RECORD = MethodRecord(
    name="er_ci",
    implementation="er_ci:ERClassIncremental",
    family="shared_network",
    head="one head over all classes seen so far (class-incremental); replayed samples with their global classes",
    paper='ER (A. Chaudhry et al., arXiv 1902.10486, 2019) in the class-incremental form of G. M. van de Ven et al., "Three types of incremental learning", Nature Machine Intelligence 2022',
    code="github.com/GMvandeVen/continual-learning (the class-incremental setting)",
    settings=ERConfig,
    per_task_head=True,
    class_incremental=True,
)
