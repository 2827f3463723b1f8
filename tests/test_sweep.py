"""Optuna sweeps on real data: reference trial first, resumable budget, workers sharing a study."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import write_params
from test_pipeline import tiny_suite
from hypermask.config import read_params
from hypermask.sweep import run_sweep, storage_for, sweep_dir

pytestmark = pytest.mark.slow  # real Optuna studies of real training: minutes (the fast lane skips them)

BIN = Path(sys.executable).parent


def _study(results: Path, name: str = "tiny/hypermask") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_for(None, sweep_dir(results, name)))


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

    scored = json.loads((sweep_dir(res, "tiny/hypermask") / "trials/trial_0000/runs/tiny/hypermask/seed_1/metrics.json").read_text())
    assert scored["scored_on"] == "val" and trials[0].value == scored["average_accuracy"]  # never the test data
    assert "entropy" not in scored
    run_sweep(params, "tiny", res, "cpu", None, n_trials=2)  # nothing missing: nothing added
    assert len(_study(res).get_trials()) == 2
    out = run_sweep(params, "tiny", res, "cpu", None, n_trials=3)  # only the missing trial
    assert len(_study(res).get_trials()) == 3 and out["n_complete"] + sum(
        t.state == optuna.trial.TrialState.PRUNED for t in _study(res).get_trials()) == 3
    best = yaml.safe_load((sweep_dir(res, "tiny/hypermask") / "best_params.yaml").read_text())
    assert best["hypermask.beta"] == _study(res).best_params["hypermask.beta"]


def test_four_workers_share_one_study_without_losing_or_duplicating_trials(tmp_path):
    suite = tiny_suite()
    suite["sweeps"]["n_trials"] = 8
    p = write_params(tmp_path / "params.yaml", suite)
    cmd = [str(BIN / "hypermask"), "--params", str(p), "sweep", "tiny", "--no-tracking",
           "--results", str(tmp_path / "results")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    trials = _study(tmp_path / "results").get_trials()
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 8  # the budget, exactly
    assert len(trials) == 8  # no worker started a trial beyond the budget (none failed, none left)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    params_seen = [t.params["hypermask.beta"] for t in finished]
    assert len(set(params_seen)) == len(params_seen)  # no trial evaluated twice
