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


def _retry(fn, *args, attempts: int = 8, **kwargs):
    """Parallel jobs share one SQLite store; a write that meets a locked database waits and
    tries again (0.1 s, 0.2 s, ... up to about 25 s in all) instead of failing the run."""
    delay = 0.1
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # MlflowException wrapping sqlite3.OperationalError
            if "locked" not in str(e).lower() or i == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2


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
        """Open the run: `run_id` (from a checkpoint), else an unfinished run carrying the same
        RUN_ID_TAG (a process killed before its first checkpoint), else a new one."""
        if not self.enabled:
            return
        if run_id is None and RUN_ID_TAG in tags:
            run_id = self._unfinished_run(experiment, tags[RUN_ID_TAG])
        if run_id is not None:
            self.run_id = run_id
            _retry(self.client.update_run, run_id, status="RUNNING")
            return
        exp = _retry(self.client.get_experiment_by_name, experiment)
        if exp is not None:
            exp_id = exp.experiment_id
        else:
            try:
                exp_id = _retry(self.client.create_experiment, experiment)
            except Exception:  # created meanwhile by a parallel job
                exp_id = _retry(self.client.get_experiment_by_name, experiment).experiment_id
        if self.parent_run_id is not None:
            tags = {**tags, "mlflow.parentRunId": self.parent_run_id}
        run = _retry(self.client.create_run, exp_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            _retry(self.client.log_batch, self.run_id, params=items[i : i + 100])

    def _unfinished_run(self, experiment: str, key: str) -> str | None:
        exp = _retry(self.client.get_experiment_by_name, experiment)
        if exp is None:
            return None
        runs = _retry(self.client.search_runs, [exp.experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{key}'")
        open_runs = [r for r in runs if r.info.status != "FINISHED"]
        return open_runs[0].info.run_id if open_runs else None

    def metric(self, key: str, value: float, step: int) -> None:
        if self.enabled:
            from mlflow.entities import Metric

            self._buffer.append(Metric(key, float(value), int(time.time() * 1000), int(step)))

    def pending(self) -> list[list]:
        """The buffered metrics, as plain lists (stored in a checkpoint before they are flushed)."""
        return [[m.key, m.value, m.timestamp, m.step] for m in self._buffer]

    def replay(self, pending: list[list], marker: str, step: int) -> None:
        """After a crash between a checkpoint and its flush: log the checkpoint's metrics unless
        the marker metric shows they reached the store (log_batch writes all or nothing)."""
        if not self.enabled or not pending:
            return
        logged = {m.step for m in _retry(self.client.get_metric_history, self.run_id, marker)}
        if step not in logged:
            from mlflow.entities import Metric

            self._buffer = [Metric(k, float(v), int(ts), int(st)) for k, v, ts, st in pending]
            self.flush()

    def flush(self) -> None:
        if self.enabled and self._buffer:
            for i in range(0, len(self._buffer), 1000):
                _retry(self.client.log_batch, self.run_id, metrics=self._buffer[i : i + 1000])
            self._buffer = []

    def artifact(self, path: str | Path) -> None:
        if self.enabled:
            _retry(self.client.log_artifact, self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        if self.enabled and self.run_id is not None:
            self.flush()
            _retry(self.client.set_terminated, self.run_id, status=status)
