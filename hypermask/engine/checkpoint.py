"""A run's checkpoint after each task: what it holds besides the weights (accuracy rows,
timings, task-id-free results, wall time, RNG) and the newest one that belongs to a configuration.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from hypermask.engine.loop import TrainingError
from hypermask.evaluation.fecam import stats_state
from hypermask.records.storage import UnreadableFile, read_checkpoint

if TYPE_CHECKING:
    from hypermask.records.runs import RunPaths


class StaleCheckpoint(TrainingError):
    """A checkpoint written with other training settings."""


# --------------------------------------------------------------------------- a whole run
def latest_checkpoint(paths: RunPaths, config_json: str) -> dict | None:
    """The newest checkpoint that loads and belongs to this configuration."""
    if not paths.checkpoints.is_dir():
        return None
    for ckpt in sorted(paths.checkpoints.glob("task_*.pt"), reverse=True):
        try:
            state = read_checkpoint(ckpt)
        except UnreadableFile as e:  # truncated or foreign: report and fall back to the previous one
            print(f"warning: {e}; ignoring it, falling back to the one before", file=sys.stderr)
            continue
        if state.get("config") != config_json:
            raise StaleCheckpoint(
                f"{ckpt}: checkpoint was written with a different configuration; "
                "rerun with --force to start this run again"
            )
        return state
    return None


@dataclass
class Progress:
    """The training state a checkpoint holds (besides the weights and the RNG)."""

    random_init: np.ndarray
    rows: list = field(default_factory=list)  # accuracy rows after each finished task
    per_task: list[dict] = field(default_factory=list)  # timings
    settings: list[dict] = field(default_factory=list)  # task-id-free results after each task
    wall_before: float = 0.0  # seconds spent by earlier processes

    @property
    def done(self) -> int:
        return len(self.rows)

    def checkpoint(self, learner, wall: float, config_json: str) -> dict:
        return {
            "completed_tasks": self.done,
            "learner": {k: v.detach().cpu() for k, v in learner.state_dict().items()},
            "acc_rows": torch.tensor(np.stack(self.rows)),
            "random_init": torch.tensor(self.random_init),
            "per_task": json.dumps(self.per_task),
            "settings": json.dumps(self.settings),
            "wall_seconds": wall,
            "config": config_json,
            "rng_torch": torch.get_rng_state(),
            "fecam_stats": stats_state(learner),  # each task's FeCAM statistics, fitted after it
        }

    @classmethod
    def from_checkpoint(cls, state: dict) -> Progress:
        return cls(
            state["random_init"].numpy().astype(float),
            list(state["acc_rows"].numpy().astype(float)),
            json.loads(state["per_task"]),
            json.loads(state["settings"]),
            float(state["wall_seconds"]),
        )
