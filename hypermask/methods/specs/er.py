"""er's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class ERConfig(Strict):
    """Experience replay (hypermask/methods/er.py): `per_class` slots of a ring buffer for every
    class of every task (Chaudhry et al. 2019's tiny memories hold 1 to 5 per class)."""

    per_class: Positive = 5


RECORD = MethodRecord(
    name="er",
    implementation="er:ER",
    family="shared_network",
    head="one output head per task; replayed samples through their own task's",
    paper='A. Chaudhry et al., "On Tiny Episodic Memories in Continual Learning", arXiv 1902.10486, 2019',
    settings=ERConfig,
    per_task_head=True,
)
