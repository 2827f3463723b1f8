"""Optuna sweeps: one persistent study per (benchmark, method) under RESULTS/sweeps/BENCHMARK/METHOD/.

The objective is the accuracy the method's table reports, on the tasks' *validation* splits
(never the test data): each trial trains on the training split and is scored from its
validation rows. For a task-incremental method that is the average accuracy with the task id
(its record's `study_objective`: "average_accuracy"); for a class-incremental one (its record's
`class_incremental`: ER and LwF in their class-incremental form, DER++) its class accuracy over
every validation sample of every task, its own head over all classes seen, no task id
("classil", the `classil` setting scored on the validation splits). A study records its
objective; one stored under another is refused, never mixed with new trials.

- storage: SQLite (default), a journal file (`storage: journal`, safe on shared
  filesystems) or any database URL; several worker processes may share one study;
- a seeded TPE sampler with every argument written out; the budget by one rule for every
  method (sweeps.trials_per_dimension x the space's dimensions, at least sweeps.min_trials);
  optionally a median pruner fed with the running average accuracy over the tasks seen so
  far, after each task (sweeps.pruner; null, the project's setting: no pruning, every trial
  is scored on the validation average accuracy after its last task);
- the experiment's own (reference) values enqueued as the first trial;
- resumable: the budget counts complete and pruned trials over all workers, so rerunning
  adds only the missing ones; database storages keep a heartbeat, so a trial whose worker
  was killed is marked FAILED after `sweeps.grace_period` seconds and retried (up to twice)
  by another worker or the next run, in the killed trial's directory: the retry resumes
  from its last checkpoint and inherits its pruner reports. The job that writes the outputs
  first waits for every running trial (a dead worker's: until it is failed and retried);
- a trial keeps only its last checkpoint (what a retry resumes from);
- each trial is a nested MLflow run under one parent run per study;
- outputs: best_params.yaml, trials.csv, optimisation_history.png (written atomically).
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from filelock import FileLock

from hypermask.config import (
    ConfigError,
    ParamsFile,
    SweepConfig,
    SweepsConfig,
    experiment_config,
    split_name,
)
from hypermask.records.storage import atomic_write_bytes, atomic_write_text
from hypermask.tracking.tracker import Tracker

TPE_DEFAULTS = {
    "seed": 0,
    "n_startup_trials": 4,
    "n_ei_candidates": 24,
    "multivariate": True,
    "group": False,
    "constant_liar": True,  # workers sharing a study do not all propose the same point
}
PRUNER_DEFAULTS = {"n_startup_trials": 2, "n_warmup_steps": 1, "interval_steps": 1, "n_min_trials": 1}


OBJECTIVE_LABELS = {  # a study's objective (MethodRecord.study_objective) as its outputs name it
    "average_accuracy": "validation average accuracy",
    "classil": "validation class-incremental accuracy",
}


def sweep_dir(results: Path, experiment: str) -> Path:
    return results / "sweeps" / experiment


def storage_for(sweeps: SweepsConfig, directory: Path):
    """The study's storage (sweeps.storage), with sweeps' heartbeat for database URLs."""
    import optuna

    spec = sweeps.storage
    if spec == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str((directory / "study.journal").resolve())))
    url = spec or f"sqlite:///{(directory / 'study.db').resolve()}"
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        heartbeat_interval=sweeps.heartbeat_interval,
        grace_period=sweeps.grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=2, inherit_intermediate_values=True
        ),
    )


def _suggest(trial, space: dict) -> dict[str, Any]:
    out = {}
    for key, d in space.items():
        if d.type == "categorical":
            out[key] = trial.suggest_categorical(key, d.choices)
        elif d.type == "int":
            out[key] = trial.suggest_int(key, int(d.low), int(d.high), log=d.log)
        else:
            out[key] = trial.suggest_float(key, d.low, d.high, log=d.log)
    return out


def _reference_values(params: ParamsFile, name: str, space: dict) -> dict[str, Any]:
    cfg = experiment_config(params, name).as_dict()
    out = {}
    for key in space:
        node: Any = cfg
        for k in key.split("."):
            node = node[k]
        out[key] = node
    return out


def run_sweep(
    params: ParamsFile,
    name: str,
    results: Path,
    device: str,
    tracking_uri: str | None,
    n_trials: int | None = None,
    quiet: bool = True,
    data_cache: Path | None = None,
    outputs: bool = True,
) -> dict[str, Any]:
    """Run the study of `name` until it holds its budget of finished trials; write outputs
    (`outputs=False`: a worker among several, which only runs trials)."""
    import optuna
    from optuna.trial import TrialState

    from hypermask.engine.run import run

    benchmark, method = split_name(name)
    name = f"{benchmark}/{method}"
    sc: SweepConfig | None = params.sweeps.study(benchmark, method)
    if sc is None:
        raise ConfigError(
            f"params.yaml: sweeps: no study of {name} (list {benchmark!r} under sweeps.benchmarks "
            f"and give sweeps.spaces.{method})"
        )
    from hypermask.pipeline.preflight import storage_problem

    problem = storage_problem(params.sweeps.storage)
    if problem:
        raise ConfigError(problem)
    budget = n_trials or sc.n_trials
    directory = sweep_dir(results, name)
    directory.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler_seed = int({**TPE_DEFAULTS, **sc.sampler}["seed"])
    sampler = optuna.samplers.TPESampler(**{**TPE_DEFAULTS, **sc.sampler})
    pruner = (
        optuna.pruners.NopPruner()
        if sc.pruner is None
        else optuna.pruners.MedianPruner(**{**PRUNER_DEFAULTS, **sc.pruner})
    )
    # One lock file shared by the study's workers (flock: one machine, or a filesystem with
    # working POSIX locks). Its release is a no-op when not held (see objective below).
    lock = FileLock(str(directory / ".study.lock"))

    with lock:  # one worker at a time creates the storage, the study and the parent run
        storage = storage_for(params.sweeps, directory)
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        from hypermask.methods import METHODS

        goal = METHODS[experiment_config(params, name).method].study_objective
        stored = study.user_attrs.get("objective", "average_accuracy" if study.trials else None)
        if stored is not None and stored != goal:
            raise ConfigError(
                f"{directory}: the study of {name} was scored on {stored!r}; its objective is now {goal!r}. "
                f"Its trials cannot be mixed with new ones: move {directory} aside to run the study again"
            )
        if stored is None:
            study.set_user_attr("objective", goal)
        if sc.enqueue_reference and not study.trials:
            study.enqueue_trial(_reference_values(params, name, sc.space), skip_if_exists=True)
        tracker = Tracker(tracking_uri is not None, tracking_uri)
        parent = study.user_attrs.get("mlflow_parent_run_id")
        if tracker.enabled and parent is None:
            tracker.start(
                f"sweep_{name}",
                f"study_{name}",
                {"experiment": name, "kind": "sweep"},
                {f"space.{k}": str(v.model_dump()) for k, v in sc.space.items()},
                None,
            )
            parent = tracker.run_id
            study.set_user_attr("mlflow_parent_run_id", parent)

    def objective(trial: optuna.Trial) -> float:
        lock.release()  # the trial exists (RUNNING): other workers may count it and go on
        trial.set_user_attr("worker", worker_id())
        values = _suggest(trial, sc.space)
        # Scored on the validation splits, the task-id-free settings too (only the objective's is
        # computed). A trial keeps only its last checkpoint: what a retry of it resumes from.
        settings = ["til", "classil"] if goal == "classil" else ["til"]
        cfg = experiment_config(
            params,
            name,
            overrides={**values, "evaluation.settings": settings, "train.keep_checkpoints": "last"},
        )
        child = Tracker(tracking_uri is not None, tracking_uri)
        child.parent_run_id = parent

        def report(t: int, row: np.ndarray) -> None:
            running = float(np.mean(row[: t + 1]))
            trial.report(running, t)
            if trial.should_prune():
                raise optuna.TrialPruned()

        number = trial_directory_number(study, trial.number)
        out = run(
            cfg,
            sc.seed,
            directory / "trials" / f"trial_{number:04d}",
            device,
            child,
            quiet=quiet,
            on_task_end=report
            if goal == "average_accuracy"
            else None,  # the pruner sees the objective's scale only
            data_cache=data_cache,
            restart_on_change=True,
            mlflow_experiment=f"sweep_{name}",
            run_name=f"trial_{number}",
            score_split="val",
        )
        assert out is not None  # stopped early only when asked to (stop_after_task)
        if goal == "classil":
            return float(out["classil"]["final_class_accuracy"])
        return float(out["average_accuracy"])

    # Claim one trial at a time under the lock: fail the trials of dead workers (their retries
    # wait to be run first), count finished and running trials, stop at the budget, else start
    # a trial (optimize releases the lock once the trial is RUNNING). So any number of workers
    # ends with exactly `budget` complete or pruned trials. optimize() keeps the trial's
    # heartbeat. The job that writes the outputs stops only when no trial is running: a killed
    # worker's trial is failed once its heartbeat is grace_period old, and this job retries it.
    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    beating = isinstance(storage, optuna.storages.RDBStorage)  # storage_for gives these a heartbeat
    waited_for: list[int] = []
    while True:
        lock.acquire()
        optuna.storages.fail_stale_trials(study)  # a no-op without a heartbeat (journal files)
        trials = study.get_trials(deepcopy=False)
        if sum(t.state in taken for t in trials) >= budget:
            lock.release()
            running = [t.number for t in trials if t.state == TrialState.RUNNING]
            if outputs and running and beating:
                if running != waited_for:
                    print(
                        f"{name}: waiting for running trials {running} before writing the outputs (a "
                        f"dead worker's trial is retried {params.sweeps.grace_period} s after its last "
                        f"heartbeat)",
                        file=sys.stderr,
                    )
                    waited_for = running
                time.sleep(params.sweeps.heartbeat_interval)
                continue
            if outputs and running:
                print(
                    f"warning: {name}: trials {running} are RUNNING and a journal file keeps no heartbeat; "
                    f"the outputs leave them out (if their workers are gone, they never finish: use a "
                    f"database storage to have them retried)",
                    file=sys.stderr,
                )
            break
        # The sampler's seed advances with the trial count: reproducible with one worker, and
        # workers never draw the same "random" startup point.
        n = len(study.get_trials(deepcopy=False))
        study.sampler = optuna.samplers.TPESampler(**{**TPE_DEFAULTS, **sc.sampler, "seed": sampler_seed + n})
        try:
            study.optimize(objective, n_trials=1, catch=())
        finally:
            lock.release()
    if not outputs:
        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        return {"n_finished": sum(t.state in finished for t in study.get_trials(deepcopy=False))}
    return write_outputs(study, directory, sc)


def trial_directory_number(study, number: int) -> int:
    """The trial whose directory trial `number` trains in: the first of its retry series
    (RetryHeartbeatStaleTrialCallback), so a retry resumes the killed trial's checkpoints."""
    from optuna.storages import RetryFailedTrialCallback

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    history = RetryFailedTrialCallback.retry_history(frozen)
    return history[0] if history else number


def worker_id() -> str:
    """Who ran a trial: the SLURM job (under SLURM), else host and process."""
    import os
    import socket

    job = os.environ.get("SLURM_JOB_ID")
    return f"slurm-job-{job}" if job else f"{socket.gethostname()}-pid-{os.getpid()}"


def write_outputs(study, directory: Path, sc: SweepConfig) -> dict[str, Any]:
    from optuna.trial import TrialState

    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    atomic_write_text(directory / "trials.csv", df.to_csv(index=False))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"{directory}: the study has no complete trial")
    best = study.best_trial
    what = OBJECTIVE_LABELS[study.user_attrs.get("objective", "average_accuracy")]
    atomic_write_text(
        directory / "best_params.yaml",
        f"# best of {len(complete)} complete trials (trial {best.number}): {what} {best.value:.4f}\n"
        + yaml.safe_dump(dict(best.params), sort_keys=True),
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [t.number for t in complete]
    ys = [t.value for t in complete]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(xs, ys, "o", label="trial")
    ax.plot(xs, np.maximum.accumulate(ys), "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{what} (%)")
    ax.set_title(f"{study.study_name}: optimisation history", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(directory / "optimisation_history.png", buf.getvalue())
    return {"best_value": best.value, "best_params": dict(best.params), "n_complete": len(complete)}
