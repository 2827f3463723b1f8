"""MLflow: one run per (experiment, seed); metrics are buffered and written in batches.

Layout (`run_identity`): one MLflow experiment per benchmark, whose runs are (method, seed),
named METHOD/seed_N and tagged with benchmark, method, seed and protocol; each finished run
carries the table's final metrics (average accuracy, BWT, FWT, forgetting, memory bytes,
trained parameters), so the UI's grouping by the `method` tag shows a benchmark's methods
side by side with the table's means. Stores written before this layout (one experiment per
BENCHMARK/METHOD) keep their runs where they are; a run resumed from such a store continues
in the benchmark's experiment (a new run tagged with the old id, see below).

Tracking URI: see resolve_uri. A resumed run reopens the same MLflow run (its id is in the checkpoint);
where that run is gone (the store was removed or replaced), it continues in a new run tagged
with the old id. metrics.json and the checkpoints are the record: a store that fails during
a run costs MLflow rows (reported), never the run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hypermask.tracking.store import TrackingError, prepare_store, run_user

RUN_ID_TAG = "hypermask.run_dir"


PREVIOUS_RUN_TAG = "hypermask.previous_run_id"


PROTOCOL = "task-incremental"  # what every method is told at test time (the tables' protocol)


def run_identity(
    benchmark: str, method: str, seed: int, suites: tuple[str, ...] = (), variant_of: str | None = None
) -> tuple[str, str, dict[str, str]]:
    """(MLflow experiment, run name, tags) of one (benchmark, method, seed) run: one experiment per
    benchmark, whose runs the UI groups by the `method` tag (a table's row: a variant's own name);
    `suites`: the suites of params.yaml that hold the run's (benchmark, method), comma-separated (a
    run serves every suite that lists it); a variant's runs also carry `variant` (its name) and
    `variant_of` (the method it runs)."""
    tags = {
        "experiment": f"{benchmark}/{method}",
        "benchmark": benchmark,
        "method": method,
        "seed": str(seed),
        "protocol": PROTOCOL,
    }
    if variant_of:
        tags["variant"], tags["variant_of"] = method, variant_of
    if suites:
        tags["suites"] = ",".join(sorted(suites))
    return benchmark, f"{method}/seed_{seed}", tags


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
        self.resumed_in_new_run = False  # the checkpoint's run was gone: earlier tasks are relogged
        self.failed_writes = 0  # metric batches the store refused mid-run (kept, retried)
        if enabled:
            import logging

            logging.getLogger("alembic").setLevel(logging.WARNING)
            assert uri is not None, "an enabled tracker needs its store's uri"
            self.client = prepare_store(uri)

    def start(
        self, experiment: str, run_name: str, tags: dict[str, str], params: dict[str, str], run_id: str | None
    ):
        """Open the run: `run_id` (from a checkpoint), else an unfinished run carrying the same
        RUN_ID_TAG (a process killed before its first checkpoint), else a new one."""
        if not self.enabled:
            return
        try:
            self._start(experiment, run_name, tags, params, run_id)
        except TrackingError:
            raise
        except Exception as e:  # read-only store, server gone, schema mismatch
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrackingError(
                f"MLflow store {self.uri}: cannot open a run ({msg[:300]}); fix the store, point "
                "MLFLOW_TRACKING_URI (or --tracking-uri) elsewhere, or pass --no-tracking"
            ) from None

    def _start(self, experiment, run_name, tags, params, run_id):
        if run_id is None and RUN_ID_TAG in tags:
            run_id = self._unfinished_run(experiment, tags[RUN_ID_TAG])
        if run_id is not None:
            if self._run_exists(run_id):
                self.run_id = run_id
                _retry(self.client.update_run, run_id, status="RUNNING")
                return
            import sys

            print(
                f"warning: MLflow run {run_id} of this checkpoint is not in {self.uri} (store removed or "
                "replaced); continuing in a new run tagged with the old id",
                file=sys.stderr,
            )
            tags = {**tags, PREVIOUS_RUN_TAG: run_id}
            self.resumed_in_new_run = True
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
        tags = {"mlflow.user": run_user(), **tags}
        run = _retry(self.client.create_run, exp_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            _retry(self.client.log_batch, self.run_id, params=items[i : i + 100])

    def _run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            run = _retry(self.client.get_run, run_id)
        except MlflowException as e:
            if getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(e).lower():
                return False
            raise
        return run.info.lifecycle_stage != "deleted"

    def _unfinished_run(self, experiment: str, key: str) -> str | None:
        exp = _retry(self.client.get_experiment_by_name, experiment)
        if exp is None:
            return None
        runs = _retry(
            self.client.search_runs, [exp.experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{key}'"
        )
        open_runs = [r for r in runs if r.info.status != "FINISHED"]
        return open_runs[0].info.run_id if open_runs else None

    def has_metric(self, key: str) -> bool:
        """Whether the open run already holds `key` (a rebuilt run does not log its summary twice)."""
        if not self.enabled:
            return False
        try:
            return bool(_retry(self.client.get_metric_history, self.run_id, key))
        except Exception:
            return False

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

    def flush(self) -> bool:
        """Write the buffered metrics; True when the buffer is empty afterwards. A store that
        fails (server gone, disk full) keeps the rest buffered for the next flush and warns:
        training goes on, its results are in metrics.json and the checkpoints."""
        while self.enabled and self._buffer:
            chunk = self._buffer[:1000]
            try:
                _retry(self.client.log_batch, self.run_id, metrics=chunk)
            except Exception as e:
                self._warn("log metrics", e)
                return False
            del self._buffer[: len(chunk)]
        return True

    def _warn(self, what: str, e: Exception) -> None:
        import sys

        self.failed_writes += 1
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(
            f"warning: MLflow store {self.uri}: could not {what} ({msg[:200]}); kept for a later try, "
            "the run's results are in metrics.json and its checkpoints",
            file=sys.stderr,
        )

    def artifact(self, path: str | Path) -> None:
        if self.enabled:
            try:
                _retry(self.client.log_artifact, self.run_id, str(path))
            except Exception as e:
                self._warn(f"log the artifact {path}", e)

    def end(self, status: str = "FINISHED") -> None:
        if self.enabled and self.run_id is not None:
            import sys

            if not self.flush():
                print(
                    f"warning: MLflow store {self.uri}: {len(self._buffer)} metric rows of run {self.run_id} "
                    "were not logged",
                    file=sys.stderr,
                )
            try:
                _retry(self.client.set_terminated, self.run_id, status=status)
            except Exception as e:
                self._warn("close the run", e)
