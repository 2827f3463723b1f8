"""The training loop's MLflow subscriber: a run's parameters, per-task results and final metrics,
logged exactly once across crashes and resumes (each task's batch ends with its marker).
"""

from __future__ import annotations

from pathlib import Path

from hypermask.events import RunStart, Subscriber
from hypermask.records.runs import SETTING_METRICS, RunPaths
from hypermask.tracking.tracker import Tracker, flatten

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

        assert self.path is not None  # run_started's
        try:
            state = json.loads(self.path.read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, pending: dict | None) -> None:
        from hypermask.records.storage import atomic_write_json

        assert self.path is not None  # run_started's
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
            for k in (
                "average_accuracy",
                "bwt",
                "fwt",
                "forgetting",
                "seconds_per_iteration",
                "wall_seconds",
            ):
                if out[k] is not None:  # an undefined metric (one task's BWT) is not logged
                    tr.metric(k, out[k], T - 1)
            if "memory" in out:
                tr.metric("memory_kib", out["memory"]["bytes"] / 1024, T - 1)  # the tables' unit
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
