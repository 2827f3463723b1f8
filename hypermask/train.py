"""The continual loop: tasks one after another, evaluation on every task after each,
a checkpoint after each task, resume from the last completed task, final outputs.

One run = one (experiment, seed) and writes results/runs/EXPERIMENT/seed_N/:
metrics.json, accuracy_matrix.csv, accuracy_matrix.png, checkpoints/task_XXX.pt.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import metrics as M
from .config import ExperimentConfig, training_fingerprint
from .data import BatchStream, Task, build_tasks
from .evaluate import evaluate_tasks, split_accuracy
from .graphs import GraphedSteps
from .methods import build_method, heads_of
from .nets import build_target, set_train_mode
from .optim import plateau
from .plots import write_heatmap
from .prepared import load_prepared
from .provenance import cpu_model, environment_lock, git_commit, uncommitted_code
from .events import Console, Events, RunStart, TaskCallback
from .runs import SETTING_METRICS, RunLock, RunPaths, read_metrics, run_dir
from .settings import SETTINGS, WITHOUT_TASK_ID
from .step import step_on, training_step  # noqa: F401 (the step, where the loop and its readers find it)
from .storage import UnreadableFile, atomic_torch_save, atomic_write_json, atomic_write_text, read_checkpoint
from .tracking import RUN_ID_TAG, MLflowSink, Tracker, run_identity

# what a run's speed depends on beyond its config, recorded in metrics.json: the OpenMP wait
# policy and glibc's large-block settings the `hypermask` command sets (hypermask/cli.py)
PROCESS_SETTINGS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES")


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, a foreign checkpoint, a run held by another process)."""


class StaleCheckpoint(TrainingError):
    """A checkpoint written with other training settings."""


# --------------------------------------------------------------------------- reproducibility
def task_seed(seed: int, t: int) -> int:
    """Each task draws its batches, augmentation and dropout from its own seed, so a run resumed
    at a task boundary continues exactly as an uninterrupted one."""
    return seed * 1_000_003 + t


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_determinism(device: torch.device) -> None:
    """Bit-identical reruns. The CPU kernels used here are deterministic for a given thread
    count (tested), so the global flag is set on accelerators only: on a CPU it would import
    torch's compiler stack (+150 MB RSS) and fill every new tensor with NaN before use.

    On accelerators deterministic mode also fills every new tensor (NaN) by default, to expose
    reads of uninitialised memory; no kernel used here reads any, and the fill was a third of a
    CIFAR-100 ResNet-20 step on an H200 (21.2 ms -> 16.7 ms, docs/performance.md, "Speed on a GPU"), so it is
    off where torch has the switch (torch.utils.deterministic, public since 2.1)."""
    if device.type == "cpu":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        import torch.utils.deterministic as det
    except ImportError:  # torch < 2.1: the fill stays
        return
    det.fill_uninitialized_memory = False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- one task
def iterations_for(cfg: ExperimentConfig, task: Task) -> tuple[int, int | None]:
    """(iterations, iterations per epoch or None) as the reference counts them."""
    tc = cfg.train
    if tc.epochs is None:
        return tc.iterations, None
    per_epoch = math.ceil(len(task.train.y) / tc.batch_size)
    return per_epoch * tc.epochs, per_epoch


def train_task(learner, task: Task, cfg: ExperimentConfig, seed: int, events: Events, step0: int) -> dict:
    """Learn task t: the method's fresh optimiser, the task's iteration or epoch budget,
    periodic validation, optional ReduceLROnPlateau and best-validation selection. Emits
    task_started, iteration and validation (hypermask/events.py)."""
    t, tc = task.index, cfg.train
    device = task.train.y.device
    n_iter, per_epoch = iterations_for(cfg, task)
    gen = torch.Generator(device=device).manual_seed(task_seed(seed, t))  # batches, augmentation
    torch.manual_seed(task_seed(seed, t))  # dropout

    learner.start_task(t, n_iter)
    opt = learner.make_optimizer(tc.lr)
    sched = plateau(opt) if per_epoch is not None and tc.lr_scheduler else None
    stream = BatchStream(len(task.train.y), tc.batch_size, gen)
    step = GraphedSteps(learner, opt, task, stream, gen)  # eager where no CUDA graph applies
    has_val = len(task.val.y) > 0
    best_acc, best_state = -1.0, None
    loss_sum = torch.zeros((), device=device)
    n_loss = 0
    val_seconds = 0.0
    events.emit("task_started", t, n_iter)
    set_train_mode(learner, dropout=True)
    _sync(device)
    start = time.perf_counter()
    for i in range(n_iter):
        loss_sum += step(i)
        n_loss += 1
        last = i == n_iter - 1
        mean_loss = None
        if (i + 1) % tc.log_every == 0 or last:  # the only host sync of the training step
            mean_loss = (loss_sum / n_loss).item()
            if not math.isfinite(mean_loss):
                raise TrainingError(f"task {t}, iteration {i}: training loss is {mean_loss}; stopped")
            loss_sum.zero_()
            n_loss = 0
        events.emit("iteration", t, i, step0 + i, mean_loss)
        epoch_end = per_epoch is not None and (i + 1) % per_epoch == 0
        if has_val and (i % tc.val_every == 0 or last or epoch_end):
            v0 = time.perf_counter()
            learner.eval()
            with torch.no_grad():
                ctx = learner.eval_context([t])
                acc = split_accuracy(learner, ctx, task, task.val, tc.eval_batch_size).item()
            events.emit("validation", t, i, step0 + i, acc)
            if tc.selection == "best_val" and acc > best_acc:
                best_acc = acc
                best_state = {k: v.detach().clone() for k, v in learner.state_dict().items()}
            if sched is not None and epoch_end:
                sched.step(acc)
            # The reference never switches back to training mode after its first check:
            # dropout stays off for the rest of the task unless corrected (target.dropout: train).
            set_train_mode(learner, dropout=cfg.target.dropout == "train")
            _sync(device)
            val_seconds += time.perf_counter() - v0
    _sync(device)
    seconds = time.perf_counter() - start
    if best_state is not None:
        learner.load_state_dict(best_state)
    return {
        "iterations": n_iter,
        "train_seconds": seconds - val_seconds,
        "validation_seconds": val_seconds,
        "best_val_accuracy": best_acc if best_state is not None else None,
    }


# --------------------------------------------------------------------------- outputs
def matrix_csv(A: np.ndarray) -> str:
    header = "after_task," + ",".join(f"task_{j}" for j in range(A.shape[1]))
    rows = [f"{t}," + ",".join(f"{v:.4f}" for v in row) for t, row in enumerate(A)]
    return "\n".join([header, *rows]) + "\n"


# --------------------------------------------------------------------------- a whole run
def latest_checkpoint(paths: RunPaths, config_json: str) -> dict | None:
    """The newest checkpoint that loads and belongs to this configuration."""
    if not paths.checkpoints.is_dir():
        return None
    for ckpt in sorted(paths.checkpoints.glob("task_*.pt"), reverse=True):
        try:
            state = read_checkpoint(ckpt)
        except UnreadableFile as e:  # truncated or foreign: report and fall back to the previous one
            print(f"warning: {e}; ignoring it, falling back to the one before", file=sys.stderr)
            continue
        if state.get("config") != config_json:
            raise StaleCheckpoint(
                f"{ckpt}: checkpoint was written with a different configuration; "
                "rerun with --force to start this run again"
            )
        return state
    return None


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
) -> dict | None:
    """Train one (experiment, seed); resume if checkpoints exist; return metrics.json's dict.
    Returns None when stopped early by `stop_after_task` (tests, interruption drills).

    data_cache: where prepared sources are (used when present). restart_on_change: checkpoints
    of other settings are moved to checkpoints.stale/ and training starts over (the pipeline's
    behaviour after an edit of params.yaml) instead of stopping. on_task_end(t, row): called
    after each task's evaluation (sweeps report to the pruner there). score_split "val": the
    accuracy matrix (and so every summary metric) from the validation splits (sweeps: choosing
    hyperparameters never looks at test data)."""
    device = torch.device(device)
    paths = run_dir(results, cfg.name, seed)
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
        identity = run_identity(cfg.benchmark, cfg.method, seed)
        subscribers = [Console(cfg.name, seed, cfg.data.n_tasks, quiet),
                       MLflowSink(tracker, mlflow_experiment or identity[0], run_name or identity[1])]
        if on_task_end is not None:
            subscribers.append(TaskCallback(on_task_end))
        return _run_locked(cfg, seed, paths, device, Events(subscribers), stop_after_task, repo_root or Path.cwd(),
                           data_cache, restart_on_change, regenerate, score_split)


def build_run(cfg: ExperimentConfig, seed: int, device: torch.device, data_cache: Path | None = None,
              tasks: list[Task] | None = None):
    """The task stream and the freshly initialised learner of one (experiment, seed); `tasks`
    given (the benches' stand-ins where the data is absent) replaces the data's."""
    set_determinism(device)
    seed_everything(seed)
    if tasks is None:
        tasks = build_tasks(cfg.data, seed, device, raw=load_prepared(cfg.data, data_cache))
    smallest = min(len(task.train.y) for task in tasks)
    if cfg.train.batch_size > smallest:  # legal (a batch then repeats samples), almost surely a mistake
        print(f"warning: {cfg.name}: train.batch_size {cfg.train.batch_size} exceeds the {smallest} training "
              "samples of its smallest task; each batch repeats samples of the task", file=sys.stderr)
    input_shape = tuple(tasks[0].inputs(tasks[0].train.x[:1]).shape[1:])
    n_out = max(t.n_classes for t in tasks)
    torch.manual_seed(seed)
    target = build_target(cfg.target, input_shape, n_out, len(tasks), heads=heads_of(cfg))
    learner = build_method(cfg, target).to(device)
    learner.attach(tasks)
    return tasks, learner


def evaluate_settings(learner, tasks: list[Task], t: int, cfg: ExperimentConfig) -> dict[str, dict]:
    """The task-id-free settings listed in evaluation.settings, after learning task t, over
    tasks 0..t."""
    ev = cfg.evaluation
    return {s: SETTINGS[s].run(learner, tasks, t + 1, ev) for s in WITHOUT_TASK_ID if s in ev.settings}


def summarize_settings(rows: list[dict[str, dict]]) -> dict[str, dict]:
    """Per setting: each metric after every task, and its value after the last task."""
    out: dict[str, dict] = {}
    for setting, keys in SETTING_METRICS.items():
        if rows and setting in rows[0]:
            out[setting] = {k: [r[setting][k] for r in rows] for k in keys}
            out[setting].update({f"final_{k}": rows[-1][setting][k] for k in keys})
            last = rows[-1][setting]
            out[setting]["per_task_after_last"] = last.get("task_accuracy_per_task", last.get("accuracy_per_task"))
    return out


def _set_aside(paths: RunPaths, why: str) -> None:
    stale = paths.root / "checkpoints.stale"
    if stale.exists():
        shutil.rmtree(stale)
    paths.checkpoints.rename(stale)
    paths.mlflow_state.unlink(missing_ok=True)  # the next run is a new MLflow run
    print(f"{paths.checkpoints}: {why}; moved to {stale} and training from task 0", file=sys.stderr)


@dataclass
class Progress:
    """The training state a checkpoint holds (besides the weights and the RNG)."""

    random_init: np.ndarray
    rows: list = field(default_factory=list)  # accuracy rows after each finished task
    per_task: list[dict] = field(default_factory=list)  # timings
    settings: list[dict] = field(default_factory=list)  # task-id-free results after each task
    wall_before: float = 0.0  # seconds spent by earlier processes

    @property
    def done(self) -> int:
        return len(self.rows)

    def checkpoint(self, learner, wall: float, config_json: str) -> dict:
        return {
            "completed_tasks": self.done,
            "learner": {k: v.detach().cpu() for k, v in learner.state_dict().items()},
            "acc_rows": torch.tensor(np.stack(self.rows)),
            "random_init": torch.tensor(self.random_init),
            "per_task": json.dumps(self.per_task),
            "settings": json.dumps(self.settings),
            "wall_seconds": wall,
            "config": config_json,
            "rng_torch": torch.get_rng_state(),
        }

    @classmethod
    def from_checkpoint(cls, state: dict) -> Progress:
        return cls(state["random_init"].numpy().astype(float), list(state["acc_rows"].numpy().astype(float)),
                   json.loads(state["per_task"]), json.loads(state["settings"]), float(state["wall_seconds"]))


def _run_locked(
    cfg, seed, paths: RunPaths, device, events: Events, stop_after_task, repo_root,
    data_cache, restart_on_change, regenerate=False, score_split="test",
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
            print(f"{paths.metrics}: missing after the last task's checkpoint; rebuilding it", file=sys.stderr)
    if state is None:
        paths.finished.unlink(missing_ok=True)
        progress = Progress(evaluate_tasks(learner, tasks, eval_bs, score_split))
    else:
        learner.load_state_dict(state["learner"])
        progress = Progress.from_checkpoint(state)
        torch.set_rng_state(state["rng_torch"])
        print(f"resuming {cfg.name} seed {seed} after task {progress.done - 1} from "
              f"{paths.checkpoint(progress.done - 1)}", file=sys.stderr)

    commit = git_commit(repo_root)
    events.emit("run_started", RunStart(
        cfg.name, seed, paths.root, cfg.as_dict(),
        {**run_identity(cfg.benchmark, cfg.method, seed)[2], "git_commit": commit, RUN_ID_TAG: str(paths.root.resolve())},
        progress.done, list(progress.rows), list(progress.settings)))
    try:
        step0 = sum(p["iterations"] for p in progress.per_task)
        for t in range(progress.done, T):
            info = train_task(learner, tasks[t], cfg, seed, events, step0)
            learner.end_task(t, tasks[t])
            step0 += info["iterations"]
            e0 = time.perf_counter()
            row = evaluate_tasks(learner, tasks, eval_bs, score_split)
            settings = evaluate_settings(learner, tasks, t, cfg)
            info["eval_seconds"] = time.perf_counter() - e0
            bad = [k for k, v in learner.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
            if bad:
                raise TrainingError(f"task {t}: non-finite weights in {bad[:3]}; the last good checkpoint is kept")
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

    out = _outputs(cfg, seed, device, progress, progress.wall_before + time.perf_counter() - wall0, commit, repo_root)
    out["memory"] = learner.memory()
    if score_split != "test":
        out["scored_on"] = score_split
    events.emit("run_summary", out)
    A = np.array(out["accuracy_matrix"])
    atomic_write_text(paths.matrix_csv, matrix_csv(np.stack(progress.rows)))
    write_heatmap(paths.heatmap, A, f"{cfg.name} seed {seed}: avg {out['average_accuracy']:.2f}%, BWT {out['bwt']:.2f}")
    atomic_write_json(paths.metrics, out)
    events.emit("run_finished", out, [paths.metrics, paths.heatmap, paths.matrix_csv])
    # The marker comes last: a process stopped anywhere before it (Ctrl-C during MLflow's
    # uploads included) left an incomplete job, which a rerun rebuilds from the checkpoints
    # without training; only a run that got here and then lost metrics.json is a forced rerun.
    atomic_write_text(paths.finished, out["finished_at"] + "\n")
    return out


def _outputs(cfg, seed, device, progress: Progress, wall: float, commit: str, repo_root: Path) -> dict:
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
        "method": cfg.method,
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
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.as_dict(),
    }
