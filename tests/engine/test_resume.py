"""What a run does when it finds its folder as an earlier process left it (engine/run.py): the
finished marker missing, metrics.json removed after the run finished (a forced rerun) or before
(a process stopped after its last checkpoint), checkpoints of other settings under
--restart-on-change, only the last checkpoint kept, outputs staged by a job that trained several
seeds. Each keeps what was there or sets it aside by name; none trains what is already trained.
(Resuming from a checkpoint and refusing other settings: test_training.py; torn files:
tests/records/test_faults.py.)"""

import copy
import json
import shutil

import pytest
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main

RUN = "runs/tiny/hypermask/seed_1"


def _params(path, **train):
    raw = copy.deepcopy(TINY)
    raw["benchmarks"]["tiny"]["train"].update(iterations=20, **train)  # 3 tasks: seconds
    return write_params(path, raw)


def _train(params, results, *extra, quiet=True):
    return main(
        ["--params", str(params), "train", "tiny", "--seed", "1", "--results", str(results), "--no-tracking"]
        + (["--quiet"] if quiet else [])
        + list(extra)
    )


def _metrics(results) -> dict:
    return json.loads((results / RUN / "metrics.json").read_text())


def _stamps(folder) -> dict:
    """name -> (inode, size, mtime) of every file under folder: unchanged means not written again
    (every write of a run's files is a new file renamed into place)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run (params, results), trained once for the module; tests work on copies."""
    root = tmp_path_factory.mktemp("finished")
    params = _params(root / "params.yaml")
    assert _train(params, root / "results") == 0
    return params, root / "results"


@pytest.fixture
def run_copy(finished, tmp_path):
    params, results = finished
    shutil.copytree(results, tmp_path / "results")
    return params, tmp_path / "results", tmp_path / "results" / RUN


def test_a_run_stopped_after_metrics_json_gets_its_marker_and_trains_nothing(run_copy, capsys):
    """Stopped after metrics.json, before .finished (during MLflow's uploads): the next process
    writes the marker and nothing else."""
    params, results, run = run_copy
    (run / ".finished").unlink()
    before = _stamps(run)
    assert _train(params, results, quiet=False) == 0
    assert "run already finished; nothing to do" in capsys.readouterr().out
    assert (run / ".finished").is_file()
    assert {k: v for k, v in _stamps(run).items() if k != ".finished"} == before


def test_metrics_json_removed_after_the_run_finished_trains_it_again(run_copy, capsys):
    """A pipeline tool removed the outputs of a finished run (snakemake --forcerun, dvc repro -f):
    the checkpoints are set aside, not reused, and the run is trained again from task 0."""
    params, results, run = run_copy
    first = _metrics(results)
    old = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    for name in ("metrics.json", "accuracy_matrix.csv", "accuracy_matrix.png"):
        (run / name).unlink()
    assert _train(params, results) == 0
    err = capsys.readouterr().err
    assert f"{run / 'checkpoints'}: complete but metrics.json was removed (a forced rerun); moved to" in err
    assert "training from task 0" in err and "resuming" not in err
    assert {p.name: p.read_bytes() for p in (run / "checkpoints.stale").iterdir()} == old  # kept, aside
    # trained again: every task's checkpoint written anew, in place of those set aside
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(old)
    assert _metrics(results)["accuracy_matrix"] == first["accuracy_matrix"]  # the same run, trained again
    assert (run / ".finished").is_file()


def test_metrics_json_missing_after_the_last_checkpoint_is_rebuilt_not_trained(run_copy, capsys):
    """Stopped between the last checkpoint and metrics.json (.finished never written): the
    outputs are written from the last checkpoint; no task is trained, nothing is set aside."""
    params, results, run = run_copy
    first = _metrics(results)
    for name in ("metrics.json", "accuracy_matrix.csv", "accuracy_matrix.png", ".finished"):
        (run / name).unlink()
    checkpoints = _stamps(run / "checkpoints")
    assert _train(params, results) == 0
    assert "missing after the last task's checkpoint; rebuilding it" in capsys.readouterr().err
    again = _metrics(results)
    assert again["accuracy_matrix"] == first["accuracy_matrix"] and again["per_task"] == first["per_task"]
    assert _stamps(run / "checkpoints") == checkpoints and not (run / "checkpoints.stale").exists()
    assert (run / "accuracy_matrix.csv").is_file() and (run / ".finished").is_file()


def test_restart_on_change_sets_checkpoints_of_other_settings_aside(tmp_path, capsys):
    """The pipeline's jobs pass --restart-on-change: after an edit of params.yaml, the run's
    checkpoints go to checkpoints.stale/ (the previous ones replaced) and it trains anew."""
    params = _params(tmp_path / "params.yaml")
    assert _train(params, tmp_path, "--stop-after-task", "1") == 0
    run = tmp_path / RUN
    old = (run / "checkpoints/task_000.pt").read_bytes()
    (run / "checkpoints.stale").mkdir()
    (run / "checkpoints.stale/task_005.pt").write_text("from an even older edit")
    raw = yaml.safe_load(params.read_text())
    raw["methods"]["hypermask"]["settings"]["hypermask"]["beta"] = 0.05
    params.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    assert _train(params, tmp_path, "--restart-on-change") == 0
    err = capsys.readouterr().err
    assert f"{run / 'checkpoints'}: written with other settings; moved to {run / 'checkpoints.stale'}" in err
    assert "resuming" not in err
    assert [p.name for p in (run / "checkpoints.stale").iterdir()] == ["task_000.pt"]
    assert (run / "checkpoints.stale/task_000.pt").read_bytes() == old
    m = _metrics(tmp_path)
    assert m["config"]["hypermask"]["beta"] == 0.05 and len(m["accuracy_matrix"]) == 3


def test_a_run_keeping_only_its_last_checkpoint_resumes_from_it(finished, tmp_path, capsys):
    """train.keep_checkpoints: last (what `hypermask evaluate` cannot use, sweeps' trials): each
    task's checkpoint replaces the one before, and a stopped run resumes from the one left with
    the results of a run never stopped."""
    _, whole = finished
    params = _params(tmp_path / "params.yaml", keep_checkpoints="last")
    assert _train(params, tmp_path, "--stop-after-task", "2") == 0
    ck = tmp_path / RUN / "checkpoints"
    assert [p.name for p in ck.iterdir()] == ["task_001.pt"]
    assert _train(params, tmp_path) == 0
    assert f"resuming tiny/hypermask seed 1 after task 1 from {ck / 'task_001.pt'}" in capsys.readouterr().err
    assert [p.name for p in ck.iterdir()] == ["task_002.pt"]
    m, ref = _metrics(tmp_path), _metrics(whole)
    assert (
        m["accuracy_matrix"] == ref["accuracy_matrix"]
        and m["random_init_accuracy"] == ref["random_init_accuracy"]
    )


def test_outputs_staged_by_a_seeds_job_are_adopted_not_trained_again(finished, tmp_path, capsys):
    """pipeline.seeds_in_one_job: one process trains the seeds with --stage (outputs under
    seed_N/staged/); a later run of the seed moves them into place and trains nothing."""
    _, whole = finished
    params = _params(tmp_path / "params.yaml")
    assert _train(params, tmp_path, "--stage") == 0
    run = tmp_path / RUN
    staged = run / "staged"
    assert sorted(p.name for p in staged.iterdir()) == [
        "accuracy_matrix.csv",
        "accuracy_matrix.png",
        "metrics.json",
    ]
    assert not (run / "metrics.json").exists()
    content = (staged / "metrics.json").read_bytes()
    checkpoints = _stamps(run / "checkpoints")
    capsys.readouterr()
    assert _train(params, tmp_path, quiet=False) == 0
    out = capsys.readouterr().out
    assert f"{run / 'metrics.json'}: adopted from {staged}" in out and "run already finished" in out
    assert (run / "metrics.json").read_bytes() == content and not staged.exists()
    assert _stamps(run / "checkpoints") == checkpoints
    assert _metrics(tmp_path)["accuracy_matrix"] == _metrics(whole)["accuracy_matrix"]
