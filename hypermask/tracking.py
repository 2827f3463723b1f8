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

import os
import time
from pathlib import Path
from typing import Any

from hypermask.events import RunStart, Subscriber
from hypermask.records.runs import SETTING_METRICS, RunPaths

RUN_ID_TAG = "hypermask.run_dir"
PREVIOUS_RUN_TAG = "hypermask.previous_run_id"
PROTOCOL = "task-incremental"  # what every method is told at test time (the tables' protocol)


def run_identity(benchmark: str, method: str, seed: int) -> tuple[str, str, dict[str, str]]:
    """(MLflow experiment, run name, tags) of one (benchmark, method, seed) run."""
    return benchmark, f"{method}/seed_{seed}", {
        "experiment": f"{benchmark}/{method}", "benchmark": benchmark, "method": method, "seed": str(seed),
        "protocol": PROTOCOL}


class TrackingError(RuntimeError):
    """The tracking store cannot be opened or written before training starts; names the URI."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local SQLite URI (sqlite:///rel or sqlite:////abs), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def _build_sqlite_store(db: Path) -> None:
    """A new store built in a temporary file and renamed into place: a process killed during
    MLflow's schema creation (seconds of migrations) leaves no half-built store behind."""
    import uuid

    from mlflow.tracking import MlflowClient

    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.tmp")  # a new name: MLflow caches stores by URI
    try:
        MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
        _dispose_engines(f"sqlite:///{tmp}")
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def _dispose_engines(uri: str) -> None:
    """Close the SQLite connections MLflow caches for `uri` before its file is renamed (two
    open paths to one SQLite file in one process can drop each other's POSIX locks). MLflow
    has no public call for this; where its private cache moved, the connections stay open
    to a file no writer uses, which is harmless."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store

        _get_store(uri).engine.dispose()
    except Exception:
        pass


def prepare_store(uri: str):
    """An MlflowClient on `uri`, with the store created or migrated first by exactly one process.

    MLflow creates and migrates an SQLite store on first use; processes that start together
    on a missing file all run the migration on it and leave it half-migrated (every later
    run then fails). Creating the store under a file lock beside the database makes the first
    process build it and the others find it built."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    try:
        if db is None:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # a server that is down fails here, not mid-run
            return client
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".init.lock", timeout=600):
            if not db.exists():
                _build_sqlite_store(db)
                _dispose_engines(uri)  # this process may hold connections to a removed file
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # migrates an older schema, under the lock
            return client
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrackingError(
            f"MLflow store {uri}: cannot be opened ({msg[:300]}); fix it, point MLFLOW_TRACKING_URI "
            "(or pipeline.tracking_uri, --tracking-uri) elsewhere, or pass --no-tracking"
        ) from None


def run_user() -> str:
    """Who a run belongs to, as MLflow's fluent API records it: the tracking user (a server's
    login, MLFLOW_TRACKING_USERNAME or ~/.mlflow/credentials), else the account's name."""
    import getpass

    from mlflow.utils.credentials import read_mlflow_creds

    try:
        return read_mlflow_creds().username or getpass.getuser()
    except Exception:  # no account name (a container without a passwd entry)
        return "unknown"


def uri_source(given: str | None, configured: str | None) -> str:
    """Where resolve_uri's choice came from, in words (printed by each run and the workflow)."""
    if given:
        return "--tracking-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    return "pipeline.tracking_uri in params.yaml" if configured else "the default: mlflow.db at the repository root"


def resolve_uri(given: str | None, configured: str | None, root: Path) -> str:
    """The MLflow store, in this order: --tracking-uri, $MLFLOW_TRACKING_URI (the pipeline exports
    one to every job), params.yaml's pipeline.tracking_uri, an SQLite file at the repository root
    (as an absolute path, so every job and node names the same store)."""
    from hypermask.config.credentials import embedded_password_problem

    env = os.environ.get("MLFLOW_TRACKING_URI")
    for where, uri in (("--tracking-uri", given), ("$MLFLOW_TRACKING_URI", env)):
        problem = embedded_password_problem(where, uri)
        if problem:
            raise TrackingError(problem)
    return given or env or configured or f"sqlite:///{(root / 'mlflow.db').resolve()}"


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
            self.client = prepare_store(uri)

    def start(self, experiment: str, run_name: str, tags: dict[str, str], params: dict[str, str], run_id: str | None):
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

            print(f"warning: MLflow run {run_id} of this checkpoint is not in {self.uri} (store removed or "
                  "replaced); continuing in a new run tagged with the old id", file=sys.stderr)
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
        runs = _retry(self.client.search_runs, [exp.experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{key}'")
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
        print(f"warning: MLflow store {self.uri}: could not {what} ({msg[:200]}); kept for a later try, "
              "the run's results are in metrics.json and its checkpoints", file=sys.stderr)

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
                print(f"warning: MLflow store {self.uri}: {len(self._buffer)} metric rows of run {self.run_id} "
                      "were not logged", file=sys.stderr)
            try:
                _retry(self.client.set_terminated, self.run_id, status=status)
            except Exception as e:
                self._warn("close the run", e)


# --------------------------------------------------------------------------- the loop's sink
TASK_MARKER = "tasks_completed"  # logged last with each task's results: its presence proves the batch


class MLflowSink(Subscriber):
    """MLflow as a subscriber of the continual loop, exactly once across crashes.

    One run per (experiment, seed). A task's metrics are buffered; at task_evaluated (before
    the checkpoint) the buffer is saved to RunPaths.mlflow_state with the task's index, at
    task_saved (after the checkpoint) it is flushed and cleared. A process that dies between
    the two leaves a checkpoint and a saved buffer: the next process replays the buffer unless
    TASK_MARKER shows it arrived (log_batch writes all or nothing). A saved buffer of a task
    without a checkpoint is dropped: that task is trained and logged again."""

    def __init__(self, tracker: Tracker, experiment: str, run_name: str):
        self.tracker, self.experiment, self.run_name = tracker, experiment, run_name
        self.path: Path | None = None

    def _state(self) -> dict:
        import json

        try:
            state = json.loads(self.path.read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, pending: dict | None) -> None:
        from hypermask.records.storage import atomic_write_json

        atomic_write_json(self.path, {"run_id": self.tracker.run_id, "pending": pending})

    def run_started(self, start: RunStart) -> None:
        tr = self.tracker
        if not tr.enabled:
            return
        self.path = RunPaths(start.root).mlflow_state
        state = self._state() if start.completed else {}  # a fresh start opens no earlier run
        tr.start(self.experiment, self.run_name, start.tags, flatten(start.config), state.get("run_id"))
        pending = state.get("pending") or None
        if tr.resumed_in_new_run:
            for t, (row, settings) in enumerate(zip(start.rows, start.settings)):
                log_task_results(tr, t, row, settings)  # the checkpoint's results into the new run
            tr.flush()
        elif pending and pending.get("task", start.completed) < start.completed:
            tr.replay(pending["metrics"], TASK_MARKER, pending["task"])
        self._save(None)

    def iteration(self, t: int, i: int, step: int, loss: float | None) -> None:
        if loss is not None:
            self.tracker.metric("train_loss", loss, step)

    def validation(self, t: int, i: int, step: int, accuracy: float) -> None:
        self.tracker.metric("val_accuracy", accuracy, step)

    def task_evaluated(self, t: int, row, settings: dict[str, dict]) -> None:
        if self.tracker.enabled:
            log_task_results(self.tracker, t, row, settings)
            self._save({"task": t, "metrics": self.tracker.pending()})

    def task_saved(self, t: int, row) -> None:
        if self.tracker.enabled:
            self.tracker.flush()
            self._save({"task": t, "metrics": self.tracker.pending()} if self.tracker.pending() else None)

    def run_summary(self, out: dict) -> None:
        out["mlflow_run_id"] = self.tracker.run_id

    def run_finished(self, out: dict, files: list[Path]) -> None:
        tr = self.tracker
        if not tr.enabled:
            return
        T = len(out["accuracy_matrix"])
        if not tr.has_metric("average_accuracy"):  # rebuilt outputs: the summary may be there already
            for k in ("average_accuracy", "bwt", "fwt", "forgetting", "seconds_per_iteration", "wall_seconds"):
                tr.metric(k, out[k], T - 1)
            if "memory" in out:
                tr.metric("memory_bytes", out["memory"]["bytes"], T - 1)
                if "trained_parameters" in out["memory"]:
                    tr.metric("trained_parameters", out["memory"]["trained_parameters"], T - 1)
            for setting, keys in SETTING_METRICS.items():
                for key in keys if setting in out else ():
                    tr.metric(f"final_{setting}_{key}", out[setting][f"final_{key}"], T - 1)
        for f in files:
            tr.artifact(f)
        tr.end()
        self._save(None)

    def run_stopped(self, status: str) -> None:
        self.tracker.end(status=status)


def log_task_results(tracker: Tracker, t: int, row, settings: dict[str, dict]) -> None:
    """Task t's test accuracies (and task-id-free settings), then TASK_MARKER last."""
    for setting, res in settings.items():
        for key in SETTING_METRICS[setting]:
            tracker.metric(f"{setting}_{key}", res[key], t)
    for j, acc in enumerate(row):
        tracker.metric(f"test_accuracy_task_{j}", acc, t)
    tracker.metric("test_accuracy_mean_seen", float(sum(row[: t + 1]) / (t + 1)), t)
    tracker.metric(TASK_MARKER, t + 1, t)
