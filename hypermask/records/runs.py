"""The layout of one run on disk, and what counts as a finished run.

One run = one (experiment, seed) = RESULTS/runs/BENCHMARK/METHOD/seed_N/ holding metrics.json,
accuracy_matrix.csv, accuracy_matrix.png, checkpoints/task_XXX.pt, a `.lock` while a process
trains it and a `.finished` marker once everything was written. Training, `evaluate`, the
tables and the pipeline plan all read this module; it imports neither torch nor MLflow.

A pipeline job that trains several seeds in one process (pipeline.seeds_in_one_job) writes each
seed's three outputs under seed_N/staged/ instead, for the seed's own job to adopt (staging.py).

metrics.json is validated on every read against `RunMetrics`: a file of the wrong shape or
with junk values is never taken for a finished run.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hypermask.evaluation import metrics as M
from hypermask.evaluation.settings import SETTINGS
from hypermask.records.staging import STAGED

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig

RUN_FILES = ("metrics.json", "accuracy_matrix.csv", "accuracy_matrix.png")
# metrics.json: the results of each task-id-free setting (evaluation.settings) after every task
SETTING_METRICS = {n: s.metrics for n, s in SETTINGS.items() if s.metrics}  # hypermask/evaluation/settings.py


@dataclass(frozen=True)
class RunPaths:
    root: Path
    outputs: Path | None = None  # where metrics.json and the matrix files go (default: root)

    @property
    def out(self) -> Path:
        return self.outputs or self.root

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def matrix_csv(self) -> Path:
        return self.out / "accuracy_matrix.csv"

    @property
    def heatmap(self) -> Path:
        return self.out / "accuracy_matrix.png"

    def staged(self) -> RunPaths:
        """The same run with its outputs under staged/ (a job training several seeds)."""
        return RunPaths(self.root, self.root / STAGED)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def finished(self) -> Path:
        """Written last, after metrics.json and MLflow: with it, a missing metrics.json was
        removed on purpose (a forced rerun); without it, the process stopped before the end."""
        return self.root / ".finished"

    @property
    def mlflow_state(self) -> Path:
        """The MLflow sink's own state (run id, metrics not yet known to be logged)."""
        return self.root / "mlflow.json"

    def checkpoint(self, t: int) -> Path:
        return self.checkpoints / f"task_{t:03d}.pt"


def run_relpath(experiment: str, seed: int | str) -> str:
    """The run folder relative to the results root (the pipeline plan builds its paths from it)."""
    return f"runs/{experiment}/seed_{seed}"


def run_dir(results: str | Path, experiment: str, seed: int) -> RunPaths:
    return RunPaths(Path(results) / run_relpath(experiment, seed))


# --------------------------------------------------------------------------- metrics.json
Percent = Annotated[float, Field(ge=0, le=100)]
Signed = Annotated[float, Field(ge=-100, le=100)]


class RunMetrics(BaseModel):
    """What a finished run's metrics.json must hold (the writer adds more; extra keys pass).
    The summary figures must follow from the accuracy matrix, so hand-edited or junk values
    are caught, not averaged into a table."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    experiment: str
    seed: int
    status: Literal["finished"]
    method: str
    average_accuracy: Percent
    bwt: Signed | None  # None (null): undefined, a single task (evaluation/metrics.py, MIN_TASKS)
    fwt: Signed | None
    forgetting: Signed | None
    accuracy_matrix: list[list[Percent]] = Field(min_length=1)
    random_init_accuracy: list[Percent]

    @model_validator(mode="after")
    def _consistent(self) -> RunMetrics:
        import numpy as np

        T = len(self.accuracy_matrix)
        if any(len(r) != T for r in self.accuracy_matrix) or len(self.random_init_accuracy) != T:
            raise ValueError(f"accuracy_matrix: must be {T} x {T} with {T} random_init_accuracy values")
        A, R = np.array(self.accuracy_matrix), np.array(self.random_init_accuracy)
        for key, value in M.summary(A, R).items():
            stored = getattr(self, key)
            if (stored is None) != (value is None):
                raise ValueError(
                    f"{key}: {stored} but the metric is {'un' if value is None else ''}defined for {T} task(s)"
                )
            if value is not None and not math.isclose(
                stored, value, abs_tol=1e-2
            ):  # the matrix is stored rounded
                raise ValueError(
                    f"{key}: {getattr(self, key)} does not follow from accuracy_matrix ({value:.4f})"
                )
        return self


def read_metrics(
    paths: RunPaths, experiment: str | None = None, seed: int | None = None
) -> tuple[dict[str, Any] | None, str]:
    """(metrics.json's dict, "") for a valid finished run of this experiment and seed, else
    (None, why): missing, unreadable, unfinished, of the wrong shape or of another run."""
    try:
        raw = json.loads(paths.metrics.read_text())
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e})"
    if not isinstance(raw, dict):
        return None, f"not a JSON object but a {type(raw).__name__}"
    if raw.get("status") != "finished":
        return None, "unfinished"
    try:
        RunMetrics.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return None, f"invalid: {loc + ': ' if loc else ''}{err['msg'].removeprefix('Value error, ')}"
    if experiment is not None and raw["experiment"] != experiment or seed is not None and raw["seed"] != seed:
        return None, f"belongs to {raw['experiment']} seed {raw['seed']}"
    return raw, ""


# --------------------------------------------------------------------------- lock
class RunLockError(RuntimeError):
    """Another live process trains this run."""


class RunLock:
    """One process per run directory: a lock file created exclusively, holding the pid; a lock
    left by a process that is gone is taken over."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise RunLockError(
                        f"{self.path}: run is being trained by process {pid}; wait for it or stop it"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
        raise RunLockError(f"{self.path}: could not take the run lock")

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------ what a result was derived under
def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def stale_keys(run: dict[str, Any], cfg: ExperimentConfig) -> list[str]:
    """The settings keys whose value differs between a run's recorded config (metrics.json) and
    `cfg` (empty: the run is current; also where the recorded config cannot be read back)."""
    from hypermask.config import ExperimentConfig, training_fingerprint

    try:
        then = training_fingerprint(ExperimentConfig.model_validate(run["config"]))
    except Exception:  # a config written by an older schema: not comparable, not flagged
        return []
    now = training_fingerprint(cfg)
    if then == now:
        return []
    a, b = _flat(json.loads(then)), _flat(json.loads(now))
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def settings_digest(cfg: ExperimentConfig) -> str:
    """SHA-256 of the settings a result depends on (config.training_fingerprint): a post-hoc
    evaluation records the digest it was computed under, and is used only under the same."""
    import hashlib

    from hypermask.config import training_fingerprint

    return hashlib.sha256(training_fingerprint(cfg).encode()).hexdigest()


def read_evaluation(path: Path, cfg: ExperimentConfig) -> tuple[dict[str, Any] | None, str]:
    """A post-hoc evaluation (eval_SETTING.json) if it was computed under the settings `cfg`
    gives now: (its content, "") or (None, why: "missing", unreadable, other settings)."""
    try:
        ev = json.loads(path.read_text())
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__})"
    if not isinstance(ev, dict):
        return None, "not an evaluation (no JSON object)"
    if ev.get("settings_sha256") != settings_digest(cfg):
        return None, (
            "evaluated under other settings than params.yaml gives now"
            if "settings_sha256" in ev
            else "written without the settings it was computed under (an older version)"
        )
    return ev, ""
