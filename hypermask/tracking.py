"""MLflow: one run per (experiment, seed); metrics are buffered and written in batches.

Tracking URI: $MLFLOW_TRACKING_URI, else an SQLite store at the repository root given as
an absolute path. A resumed run reopens the same MLflow run (its id is in the checkpoint).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

RUN_ID_TAG = "hypermask.run_dir"


def default_tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


class Tracker:
    """A thin wrapper over MlflowClient; `enabled=False` makes every call a no-op."""

    def __init__(self, enabled: bool, uri: str | None = None):
        self.enabled = enabled
        self.uri = uri
        self.run_id: str | None = None
        self.parent_run_id: str | None = None  # set to nest this run under another (sweeps)
        self._buffer: list = []
        if enabled:
            import logging

            logging.getLogger("alembic").setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=uri)

    def start(self, experiment: str, run_name: str, tags: dict[str, str], params: dict[str, str], run_id: str | None):
        if not self.enabled:
            return
        if run_id is not None:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            return
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
        if self.parent_run_id is not None:
            tags = {**tags, "mlflow.parentRunId": self.parent_run_id}
        run = self.client.create_run(exp_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def metric(self, key: str, value: float, step: int) -> None:
        if self.enabled:
            from mlflow.entities import Metric

            self._buffer.append(Metric(key, float(value), int(time.time() * 1000), int(step)))

    def flush(self) -> None:
        if self.enabled and self._buffer:
            for i in range(0, len(self._buffer), 1000):
                self.client.log_batch(self.run_id, metrics=self._buffer[i : i + 1000])
            self._buffer = []

    def artifact(self, path: str | Path) -> None:
        if self.enabled:
            self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        if self.enabled and self.run_id is not None:
            self.flush()
            self.client.set_terminated(self.run_id, status=status)
