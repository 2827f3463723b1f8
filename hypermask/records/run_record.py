"""metrics.json's content: a finished run's summary, accuracy matrix, per-setting results,
timings and provenance (what the run's numbers depend on); its reader is records/runs.py.
"""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hypermask.evaluation import metrics as M
from hypermask.records.provenance import cpu_model, environment_lock, uncommitted_code
from hypermask.records.runs import SETTING_METRICS

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.engine.checkpoint import Progress


# what a run's speed depends on beyond its config, recorded in metrics.json: the OpenMP wait
# policy (and the CPUs found busy when choosing it) and glibc's large-block settings the `hypermask`
# command sets (hypermask/cli/process.py)
PROCESS_SETTINGS = (
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "HYPERMASK_CPUS_BUSY",
    "OMP_NUM_THREADS",
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
)


# --------------------------------------------------------------------------- outputs
def matrix_csv(A: np.ndarray) -> str:
    header = "after_task," + ",".join(f"task_{j}" for j in range(A.shape[1]))
    rows = [f"{t}," + ",".join(f"{v:.4f}" for v in row) for t, row in enumerate(A)]
    return "\n".join([header, *rows]) + "\n"


def summarize_settings(rows: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per setting: each metric after every task, and its value after the last task."""
    out: dict[str, dict[str, Any]] = {}
    for setting, keys in SETTING_METRICS.items():
        if rows and setting in rows[0]:
            out[setting] = {k: [r[setting][k] for r in rows] for k in keys}
            out[setting].update({f"final_{k}": rows[-1][setting][k] for k in keys})
            last = rows[-1][setting]
            out[setting]["per_task_after_last"] = last.get(
                "task_accuracy_per_task", last.get("accuracy_per_task")
            )
    return out


def run_record(
    cfg: ExperimentConfig,
    seed: int,
    device: torch.device,
    progress: Progress,
    wall: float,
    commit: str,
    repo_root: Path,
) -> dict[str, Any]:
    """metrics.json's content."""
    A = np.stack(progress.rows)
    summary = M.summary(A, progress.random_init)
    per_task = progress.per_task
    iters = sum(p["iterations"] for p in per_task)
    train_s = sum(p["train_seconds"] for p in per_task)
    return {
        "experiment": cfg.name,
        "seed": seed,
        "status": "finished",
        "method": cfg.row,
        **summary,
        **summarize_settings(progress.settings),
        "accuracy_matrix": A.round(4).tolist(),
        "random_init_accuracy": progress.random_init.round(4).tolist(),
        "wall_seconds": round(wall, 3),
        "train_seconds": round(train_s, 3),
        "seconds_per_iteration": train_s / max(1, iters),
        "eval_seconds": round(sum(p["eval_seconds"] for p in per_task), 3),
        "iterations": iters,
        "per_task": per_task,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch_threads": torch.get_num_threads(),
        "process_settings": {k: os.environ[k] for k in PROCESS_SETTINGS if k in os.environ},
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": commit,
        "uncommitted_code": uncommitted_code(repo_root),
        "environment_lock": environment_lock(repo_root),
        "cpu": cpu_model(),
        "host": socket.gethostname(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.as_dict(),
    }
