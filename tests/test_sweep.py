"""Optuna sweeps on real data: reference trial first, resumable budget, workers sharing a study."""

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import tiny_suite, write_params
from hypermask.config import SweepsConfig, read_params
from hypermask.sweep import run_sweep, storage_for, sweep_dir

pytestmark = pytest.mark.slow  # real Optuna studies of real training: minutes (the fast lane skips them)

BIN = Path(sys.executable).parent


def _study(results: Path, name: str = "tiny/hypermask") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_for(SweepsConfig(), sweep_dir(results, name)))


def test_reference_first_reports_per_task_and_resumes(tmp_path):
    p = write_params(tmp_path / "params.yaml", tiny_suite())
    params = read_params(p)
    res = tmp_path / "results"
    run_sweep(params, "tiny", res, "cpu", None, n_trials=2)
    study = _study(res)
    trials = study.get_trials()
    assert len(trials) == 2
    assert trials[0].params == {"hypermask.beta": 5e-3}  # the experiment's own value, enqueued first
    assert sorted(trials[0].intermediate_values) == [0, 1, 2]  # running mean after each of 3 tasks
    import json

    scored = json.loads(
        (
            sweep_dir(res, "tiny/hypermask") / "trials/trial_0000/runs/tiny/hypermask/seed_0/metrics.json"
        ).read_text()
    )
    assert (
        scored["scored_on"] == "val" and trials[0].value == scored["average_accuracy"]
    )  # never the test data
    assert "entropy" not in scored
    run_sweep(params, "tiny", res, "cpu", None, n_trials=2)  # nothing missing: nothing added
    assert len(_study(res).get_trials()) == 2
    out = run_sweep(params, "tiny", res, "cpu", None, n_trials=3)  # only the missing trial
    assert (
        len(_study(res).get_trials()) == 3
        and out["n_complete"]
        + sum(t.state == optuna.trial.TrialState.PRUNED for t in _study(res).get_trials())
        == 3
    )
    best = yaml.safe_load((sweep_dir(res, "tiny/hypermask") / "best_params.yaml").read_text())
    assert best["hypermask.beta"] == _study(res).best_params["hypermask.beta"]


def test_four_workers_share_one_study_without_losing_or_duplicating_trials(tmp_path):
    suite = tiny_suite()
    suite["sweeps"]["n_trials"] = 8
    p = write_params(tmp_path / "params.yaml", suite)
    cmd = [
        str(BIN / "hypermask"),
        "--params",
        str(p),
        "sweep",
        "tiny",
        "--no-tracking",
        "--results",
        str(tmp_path / "results"),
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    trials = _study(tmp_path / "results").get_trials()
    finished = [
        t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    assert len(finished) == 8  # the budget, exactly
    assert len(trials) == 8  # no worker started a trial beyond the budget (none failed, none left)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    params_seen = [t.params["hypermask.beta"] for t in finished]
    assert len(set(params_seen)) == len(params_seen)  # no trial evaluated twice


def test_a_killed_workers_trial_is_retried_from_its_last_checkpoint(tmp_path):
    """A worker SIGKILLed mid-trial leaves the trial RUNNING. The next run waits until its
    heartbeat is grace_period old, fails it and retries it in the killed trial's directory:
    the retry resumes from that trial's last checkpoint (not task 0) and ends with the value an
    uninterrupted trial gets. The budget is met exactly; a trial keeps only its last checkpoint."""
    from optuna.storages import RetryFailedTrialCallback
    from optuna.trial import TrialState

    suite = tiny_suite()
    suite["benchmarks"]["tiny"]["train"]["iterations"] = 300  # a task lasts long enough to kill in
    # grace_period: longer than a process start, so the next run finds the killed trial's beat fresh
    suite["sweeps"].update(n_trials=1, heartbeat_interval=1, grace_period=15)
    p = write_params(tmp_path / "params.yaml", suite)
    res = tmp_path / "results"
    cmd = [
        str(BIN / "hypermask"),
        "--params",
        str(p),
        "sweep",
        "tiny",
        "--no-tracking",
        "--results",
        str(res),
    ]
    ckpts = sweep_dir(res, "tiny/hypermask") / "trials/trial_0000/runs/tiny/hypermask/seed_0/checkpoints"

    worker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(ckpts.glob("task_*.pt")) and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.02)
    worker.kill()
    worker.communicate()
    kept = sorted(ckpts.glob("task_*.pt"))
    assert len(kept) == 1 and kept[0].name != "task_002.pt", kept  # killed mid-trial, after a checkpoint
    assert [t.state for t in _study(res).get_trials()] == [TrialState.RUNNING]

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # the same command again
    assert second.returncode == 0, second.stderr[-2000:]
    err = second.stderr
    assert "waiting for running trials [0]" in err
    done = int(kept[0].stem.split("_")[1])
    assert f"resuming tiny/hypermask seed 0 after task {done}" in err  # not from task 0
    killed, retry = _study(res).get_trials()
    assert killed.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert RetryFailedTrialCallback.retried_trial_number(retry) == 0 and retry.params == killed.params
    assert [d.name for d in (sweep_dir(res, "tiny/hypermask") / "trials").iterdir()] == [
        "trial_0000"
    ]  # its directory
    assert [c.name for c in ckpts.glob("task_*.pt")] == ["task_002.pt"]

    # The same trial uninterrupted, in another results folder (a process of its own, like the
    # others: the same torch thread count, so the same sums).
    ref = tmp_path / "reference"
    subprocess.run([*cmd[:-1], str(ref)], check=True, capture_output=True, timeout=600)
    assert retry.value == _study(ref).get_trials()[0].value
    assert (sweep_dir(res, "tiny/hypermask") / "best_params.yaml").exists()


def test_a_class_incremental_study_maximises_the_validation_class_accuracy(tmp_path):
    """LwF (one head over all classes): each trial's value is its class-incremental accuracy on the
    validation samples (the figure its table row reports), never the task-id average; a study
    stored under another objective is refused, not mixed with new trials."""
    import json

    from hypermask.config import ConfigError

    suite = tiny_suite()
    suite["methods"]["lwf"] = {}
    suite["sweeps"]["spaces"] = {"lwf": {"lwf.lambda": {"low": 1e-2, "high": 1e2, "log": True}}}
    params = read_params(write_params(tmp_path / "params.yaml", suite))
    res = tmp_path / "results"
    run_sweep(params, "tiny/lwf", res, "cpu", None, n_trials=2)
    study = _study(res, "tiny/lwf")
    assert study.user_attrs["objective"] == "classil"
    for trial in study.get_trials():
        m = json.loads(
            (
                sweep_dir(res, "tiny/lwf")
                / f"trials/trial_{trial.number:04d}/runs/tiny/lwf/seed_0/metrics.json"
            ).read_text()
        )
        assert m["scored_on"] == "val" and trial.value == m["classil"]["final_class_accuracy"]
        assert trial.value != m["average_accuracy"]  # three permuted tasks: far apart without the task id
    best = (sweep_dir(res, "tiny/lwf") / "best_params.yaml").read_text().splitlines()[0]
    assert best.endswith(f"validation class-incremental accuracy {study.best_value:.4f}")
    study.set_user_attr("objective", "average_accuracy")
    with pytest.raises(ConfigError, match="scored on 'average_accuracy'; its objective is now 'classil'"):
        run_sweep(params, "tiny/lwf", res, "cpu", None, n_trials=3)
