"""`hypermask evaluate`: a setting evaluated on a finished run's checkpoints, no retraining.

Each per-task checkpoint is the model after that task, so TIL rows, entropy task inference
and FeCAM are recomputed after every task whose checkpoint is kept (only the last with
`train.keep_checkpoints: last`). Writes eval_SETTING.json next to metrics.json and logs to
the run's MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hypermask.config import ConfigError, ExperimentConfig
from hypermask.engine.loop import build_run, evaluate_settings
from hypermask.evaluation.accuracy import evaluate_tasks
from hypermask.evaluation.fecam import load_stats
from hypermask.evaluation.settings import supported, why_not
from hypermask.methods import METHODS
from hypermask.records.run_record import summarize_settings
from hypermask.records.runs import (
    SETTING_METRICS,
    read_metrics,
    run_dir,
    settings_digest,
    stale_keys,
)
from hypermask.records.storage import UnreadableFile, atomic_write_json, read_checkpoint
from hypermask.tracking.tracker import Tracker, run_identity


def evaluate_run(
    cfg: ExperimentConfig,
    seed: int,
    results: Path,
    device: str,
    setting: str,
    tracker: Tracker,
    data_cache: Path | None = None,
) -> dict:
    paths = run_dir(results, cfg.name, seed)
    metrics, why = read_metrics(paths, cfg.name, seed)
    if metrics is None:
        raise ConfigError(f"{paths.metrics}: no finished run to evaluate ({why}; train it first)")
    keys = stale_keys(metrics, cfg)
    if keys:  # an evaluation under other settings would be counted under neither
        raise ConfigError(
            f"{paths.metrics}: the run was trained under other settings than params.yaml gives now "
            f"({', '.join(keys[:4])}); evaluate it under its own (restore params.yaml) or retrain it "
            f"(snakemake --forcerun {paths.metrics})"
        )
    digest = settings_digest(cfg)
    ckpts = sorted(paths.checkpoints.glob("task_*.pt"))
    if not ckpts:
        raise ConfigError(f"{paths.checkpoints}: no checkpoints to evaluate")
    if not supported(setting, METHODS[cfg.method]):
        raise ConfigError(f"--setting {setting}: {cfg.name}: {why_not(setting, cfg.method)}")
    cfg = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"settings": [setting]})})
    tasks, learner = build_run(cfg, seed, torch.device(device), data_cache)
    after, til_rows, setting_rows = [], [], []
    for ckpt in ckpts:
        try:
            state = read_checkpoint(ckpt)
        except UnreadableFile as e:
            raise ConfigError(
                f"{e}; retrain the run (hypermask train {cfg.benchmark} --method {cfg.row} "
                f"--seed {seed} --force) to evaluate it"
            ) from None
        learner.load_state_dict(state["learner"])
        if state.get("fecam_stats"):  # the statistics fitted during training (older checkpoints: none)
            load_stats(learner, state["fecam_stats"], torch.device(device))
        t = int(state["completed_tasks"]) - 1
        after.append(t)
        if setting == "til":
            til_rows.append(evaluate_tasks(learner, tasks, cfg.train.eval_batch_size))
        else:
            setting_rows.append(evaluate_settings(learner, tasks, t, cfg))
    out: dict = {
        "experiment": cfg.name,
        "seed": seed,
        "setting": setting,
        "after_task": after,
        "settings_sha256": digest,
    }
    if setting == "til":
        stored = np.array(metrics["accuracy_matrix"])
        rows = np.stack(til_rows)
        out["accuracy_rows"] = rows.round(4).tolist()
        out["max_abs_difference_to_metrics_json"] = float(np.abs(rows.round(4) - stored[after]).max())
    else:
        out.update(summarize_settings(setting_rows)[setting])
    atomic_write_json(paths.root / f"eval_{setting}.json", out)
    experiment, run_name, _ = run_identity(
        cfg.benchmark, cfg.row, seed, variant_of=cfg.method if cfg.variant else None
    )
    tracker.start(experiment, run_name, {}, {}, metrics.get("mlflow_run_id"))
    if setting != "til":
        for key in SETTING_METRICS[setting]:
            for t, v in zip(after, out[key]):
                tracker.metric(f"posthoc_{setting}_{key}", v, t)
    tracker.artifact(paths.root / f"eval_{setting}.json")
    tracker.end()
    return out
