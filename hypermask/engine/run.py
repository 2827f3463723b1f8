"""One run from start to finish: the run's folder and lock, resume from its last completed
task (or rebuild outputs from complete checkpoints), the tasks one after another through the
loop (engine/loop.py) with an evaluation and a checkpoint after each, then the final outputs.

One run = one (experiment, seed) and writes results/runs/EXPERIMENT/seed_N/:
metrics.json, accuracy_matrix.csv, accuracy_matrix.png, checkpoints/task_XXX.pt.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hypermask.config import ExperimentConfig, training_fingerprint
from hypermask.engine.checkpoint import Progress, StaleCheckpoint, latest_checkpoint
from hypermask.engine.loop import (
    TrainingError,
    build_run,
    evaluate_settings,
    train_task,
)
from hypermask.evaluation.accuracy import evaluate_tasks
from hypermask.evaluation.fecam import load_stats
from hypermask.evaluation.metrics import shown
from hypermask.events import Console, Events, RunStart, TaskCallback
from hypermask.records.provenance import git_commit
from hypermask.records.run_record import matrix_csv, run_record
from hypermask.records.runs import RunLock, RunPaths, read_metrics, run_dir
from hypermask.records.staging import adopt_staged
from hypermask.records.storage import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
)
from hypermask.reporting.plots import write_heatmap
from hypermask.tracking.sink import MLflowSink
from hypermask.tracking.tracker import RUN_ID_TAG, Tracker, run_identity


def run(
    cfg: ExperimentConfig,
    seed: int,
    results: Path,
    device: str | torch.device,
    tracker: Tracker,
    *,
    force: bool = False,
    quiet: bool = False,
    stop_after_task: int | None = None,
    repo_root: Path | None = None,
    data_cache: Path | None = None,
    restart_on_change: bool = False,
    on_task_end=None,
    mlflow_experiment: str | None = None,
    run_name: str | None = None,
    score_split: str = "test",
    suites: tuple[str, ...] = (),
    stage: bool = False,
) -> dict | None:
    """Train one (experiment, seed); resume if checkpoints exist; return metrics.json's dict.
    Returns None when stopped early by `stop_after_task` (tests, interruption drills).

    data_cache: where prepared sources are (used when present). restart_on_change: checkpoints
    of other settings are moved to checkpoints.stale/ and training starts over (the pipeline's
    behaviour after an edit of params.yaml) instead of stopping. on_task_end(t, row): called
    after each task's evaluation (sweeps report to the pruner there). score_split "val": the
    accuracy matrix (and so every summary metric) from the validation splits (sweeps: choosing
    hyperparameters never looks at test data). stage: the outputs go under seed_N/staged/ for
    the seed's own pipeline job to adopt (records.runs); without it, staged outputs found are
    adopted first (or, with `force`, removed)."""
    device = torch.device(device)
    paths = run_dir(results, cfg.name, seed)
    if stage:
        paths = paths.staged()
    elif force:
        shutil.rmtree(paths.staged().out, ignore_errors=True)
    elif paths.staged().metrics.is_file():
        with RunLock(paths.lock):  # not while a process writes them
            adopt_staged(paths.root)
        if not quiet:
            print(f"{paths.metrics}: adopted from {paths.staged().out}")
    finished, why = read_metrics(paths, cfg.name, seed)
    if finished is not None and not force:
        if not paths.finished.exists():  # stopped after metrics.json, during MLflow's uploads
            atomic_write_text(paths.finished, "\n")
        if not quiet:
            print(f"{paths.metrics}: run already finished; nothing to do (use --force to train it again)")
        return finished
    with RunLock(paths.lock):
        regenerate = False
        if paths.metrics.exists() and not force:
            corrupt = paths.root / "metrics.json.corrupt"
            paths.metrics.replace(corrupt)
            regenerate = True  # outputs are rebuilt from the checkpoints, not trained again
            print(f"{paths.metrics}: {why}; moved to {corrupt}, rebuilding it", file=sys.stderr)
        if force:
            for p in sorted(paths.checkpoints.glob("task_*.pt")) if paths.checkpoints.is_dir() else []:
                p.unlink()
            for p in (paths.metrics, paths.finished, paths.mlflow_state):
                p.unlink(missing_ok=True)
        identity = run_identity(cfg.benchmark, cfg.row, seed, variant_of=cfg.method if cfg.variant else None)
        subscribers = [
            Console(cfg.name, seed, cfg.data.n_tasks, quiet),
            MLflowSink(tracker, mlflow_experiment or identity[0], run_name or identity[1]),
        ]
        if on_task_end is not None:
            subscribers.append(TaskCallback(on_task_end))
        return _run_locked(
            cfg,
            seed,
            paths,
            device,
            Events(subscribers),
            stop_after_task,
            repo_root or Path.cwd(),
            data_cache,
            restart_on_change,
            regenerate,
            score_split,
            suites,
        )


def _set_aside(paths: RunPaths, why: str) -> None:
    stale = paths.root / "checkpoints.stale"
    if stale.exists():
        shutil.rmtree(stale)
    paths.checkpoints.rename(stale)
    paths.mlflow_state.unlink(missing_ok=True)  # the next run is a new MLflow run
    print(f"{paths.checkpoints}: {why}; moved to {stale} and training from task 0", file=sys.stderr)


def _run_locked(
    cfg,
    seed,
    paths: RunPaths,
    device,
    events: Events,
    stop_after_task,
    repo_root,
    data_cache,
    restart_on_change,
    regenerate=False,
    score_split="test",
    suites=(),
) -> dict | None:
    wall0 = time.perf_counter()
    config_json = training_fingerprint(cfg) + ("" if score_split == "test" else f"|scored on {score_split}")
    tasks, learner = build_run(cfg, seed, device, data_cache)
    T = len(tasks)
    eval_bs = cfg.train.eval_batch_size

    try:
        state = latest_checkpoint(paths, config_json)
    except StaleCheckpoint:
        if not restart_on_change:
            raise
        _set_aside(paths, "written with other settings")
        state = None
    if state is not None and int(state["completed_tasks"]) >= T and not regenerate:
        if paths.finished.exists():
            # The run had finished and metrics.json is gone: a pipeline tool deleted it to run
            # this seed again (snakemake --forcerun, dvc repro -f). Train again.
            _set_aside(paths, "complete but metrics.json was removed (a forced rerun)")
            state = None
        else:  # stopped after its last checkpoint, before its end: write the outputs, train nothing
            print(
                f"{paths.metrics}: missing after the last task's checkpoint; rebuilding it", file=sys.stderr
            )
    if state is None:
        paths.finished.unlink(missing_ok=True)
        progress = Progress(evaluate_tasks(learner, tasks, eval_bs, score_split))
    else:
        learner.load_state_dict(state["learner"])
        load_stats(learner, state.get("fecam_stats"), device)
        progress = Progress.from_checkpoint(state)
        torch.set_rng_state(state["rng_torch"])
        print(
            f"resuming {cfg.name} seed {seed} after task {progress.done - 1} from "
            f"{paths.checkpoint(progress.done - 1)}",
            file=sys.stderr,
        )

    commit = git_commit(repo_root)
    events.emit(
        "run_started",
        RunStart(
            cfg.name,
            seed,
            paths.root,
            cfg.own_settings(),  # MLflow's params: the shared settings and this method's block only
            {
                **run_identity(cfg.benchmark, cfg.row, seed, suites, cfg.method if cfg.variant else None)[2],
                "git_commit": commit,
                RUN_ID_TAG: str(paths.root.resolve()),
            },
            progress.done,
            list(progress.rows),
            list(progress.settings),
        ),
    )
    try:
        step0 = sum(p["iterations"] for p in progress.per_task)
        for t in range(progress.done, T):
            info = train_task(learner, tasks[t], cfg, seed, events, step0)
            learner.end_task(t, tasks[t])
            step0 += info["iterations"]
            e0 = time.perf_counter()
            row = evaluate_tasks(learner, tasks, eval_bs, score_split)
            settings = evaluate_settings(learner, tasks, t, cfg, score_split)
            info["eval_seconds"] = time.perf_counter() - e0
            bad = [
                k
                for k, v in learner.state_dict().items()
                if v.is_floating_point() and not torch.isfinite(v).all()
            ]
            if bad:
                raise TrainingError(
                    f"task {t}: non-finite weights in {bad[:3]}; the last good checkpoint is kept"
                )
            progress.rows.append(row)
            progress.settings.append(settings)
            progress.per_task.append(info)
            events.emit("task_evaluated", t, row, settings)  # subscribers persist what they must not lose
            wall = progress.wall_before + time.perf_counter() - wall0
            atomic_torch_save(paths.checkpoint(t), progress.checkpoint(learner, wall, config_json))
            if cfg.train.keep_checkpoints == "last" and t > 0:
                paths.checkpoint(t - 1).unlink(missing_ok=True)
            events.emit("task_saved", t, row)
            if stop_after_task is not None and t + 1 >= stop_after_task and t + 1 < T:
                events.emit("run_stopped", "KILLED")
                return None
    except BaseException:
        events.emit("run_stopped", "FAILED")
        raise

    out = run_record(
        cfg, seed, device, progress, progress.wall_before + time.perf_counter() - wall0, commit, repo_root
    )
    out["memory"] = learner.memory()
    if score_split != "test":
        out["scored_on"] = score_split
    events.emit("run_summary", out)
    A = np.array(out["accuracy_matrix"])
    atomic_write_text(paths.matrix_csv, matrix_csv(np.stack(progress.rows)))
    write_heatmap(
        paths.heatmap,
        A,
        f"{cfg.name} seed {seed}: avg {out['average_accuracy']:.2f}%, BWT {shown(out['bwt'])}",
    )
    atomic_write_json(paths.metrics, out)
    events.emit("run_finished", out, [paths.metrics, paths.heatmap, paths.matrix_csv])
    # The marker comes last: a process stopped anywhere before it (Ctrl-C during MLflow's
    # uploads included) left an incomplete job, which a rerun rebuilds from the checkpoints
    # without training; only a run that got here and then lost metrics.json is a forced rerun.
    atomic_write_text(paths.finished, out["finished_at"] + "\n")
    return out
