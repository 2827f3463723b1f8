"""The continual loop's events and their subscribers.

The loop (hypermask/engine/loop.py) trains and evaluates; everything that watches it subscribes
to these events: the MLflow sink (hypermask/tracking/sink.py, with its exactly-once crash
replay), the console (below), a sweep's pruner. A subscriber overrides what it needs.

Order within a task: task_started, then iteration (every step; the mean training loss at
each log point, else None) and validation (each check), then task_evaluated (the task's
accuracy row, *before* its checkpoint is written: what a subscriber must not lose is
persisted here), then task_saved (after the checkpoint). A run ends with run_summary (the
outputs' dict, which subscribers may annotate), then run_finished (outputs written), or
with run_stopped(status) when it stops early or fails.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm as ProgressBar


@dataclass
class RunStart:
    """What subscribers learn when a run (re)starts."""

    experiment: str
    seed: int
    root: Path  # the run folder
    config: dict[str, Any]
    tags: dict[str, str]
    completed: int  # tasks finished before this process (a resumed run), 0 for a fresh one
    rows: list = field(default_factory=list)  # their accuracy rows (numpy), from the checkpoint
    settings: list[dict] = field(default_factory=list)  # their task-id-free results


class Subscriber:
    def run_started(self, start: RunStart) -> None:
        pass

    def task_started(self, t: int, n_iterations: int) -> None:
        pass

    def iteration(self, t: int, i: int, step: int, loss: float | None) -> None:
        pass

    def validation(self, t: int, i: int, step: int, accuracy: float) -> None:
        pass

    def task_evaluated(self, t: int, row, settings: dict[str, dict]) -> None:
        pass

    def task_saved(self, t: int, row) -> None:
        pass

    def run_summary(self, out: dict[str, Any]) -> None:
        pass

    def run_finished(self, out: dict[str, Any], files: list[Path]) -> None:
        pass

    def run_stopped(self, status: str) -> None:
        pass


class Events:
    """The subscribers of one run, called in order."""

    def __init__(self, subscribers: list[Subscriber]):
        self.subscribers = subscribers

    def emit(self, event: str, *args: Any) -> None:
        for s in self.subscribers:
            getattr(s, event)(*args)


class Console(Subscriber):
    """A tqdm bar per task on stderr with the latest loss and validation accuracy (only on a
    terminal), and one line per finished task on stdout; nothing when quiet."""

    def __init__(self, name: str, seed: int, n_tasks: int, quiet: bool):
        self.name, self.seed, self.n_tasks, self.quiet = name, seed, n_tasks, quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: ProgressBar[Any] | None = None
        self.shown: dict[str, str] = {}

    def task_started(self, t: int, n_iterations: int) -> None:
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=n_iterations,
                desc=f"{self.name} task {t + 1}/{self.n_tasks}",
                leave=False,
                dynamic_ncols=True,
            )

    def iteration(self, t: int, i: int, step: int, loss: float | None) -> None:
        if self.bar is not None:
            if loss is not None:
                self.shown["loss"] = f"{loss:.4f}"
                self.bar.set_postfix(self.shown, refresh=False)
            self.bar.update(1)

    def validation(self, t: int, i: int, step: int, accuracy: float) -> None:
        if self.bar is not None:
            self.shown["val"] = f"{accuracy:.1f}"

    def task_evaluated(self, t: int, row, settings: dict[str, dict]) -> None:
        self._close()

    def task_saved(self, t: int, row) -> None:
        if not self.quiet:
            seen = sum(row[: t + 1]) / (t + 1)
            print(
                f"{self.name} seed {self.seed}: after task {t}: mean accuracy on tasks 0..{t} = {seen:.2f}%"
            )

    def run_stopped(self, status: str) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TaskCallback(Subscriber):
    """fn(t, row) after each task's checkpoint (a sweep reports to its pruner there)."""

    def __init__(self, fn):
        self.fn = fn

    def task_saved(self, t: int, row) -> None:
        self.fn(t, row)
