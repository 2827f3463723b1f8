"""Things break on purpose: killed processes, torn and garbled files, NaN losses, a second
process on the same run, failing writes. Nothing finished is lost or silently reused."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main

BIN = Path(sys.executable).parent


def _params(tmp_path: Path, iterations: int = 60, **train) -> Path:
    p = json.loads(json.dumps(TINY))
    p["benchmarks"]["tiny"]["train"].update(iterations=iterations, **train)
    return write_params(tmp_path / "params.yaml", p)


def _train(params: Path, results: Path, *extra: str) -> int:
    return main(
        [
            "--params",
            str(params),
            "train",
            "tiny",
            "--seed",
            "1",
            "--results",
            str(results),
            "--quiet",
            *extra,
        ]
    )


def _metrics(results: Path) -> dict:
    return json.loads((results / "runs/tiny/hypermask/seed_1/metrics.json").read_text())


@pytest.fixture
def reference(tmp_path):
    params = _params(tmp_path, iterations=1500)
    assert _train(params, tmp_path / "ref", "--no-tracking") == 0
    return params, _metrics(tmp_path / "ref")


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_the_same_metrics_and_one_mlflow_run(tmp_path):
    # Same thread count for both runs: float reductions, hence results, depend on it.
    params = _params(tmp_path, iterations=3000)
    base = [
        str(BIN / "hypermask"),
        "--params",
        str(params),
        "train",
        "tiny",
        "--seed",
        "1",
        "--quiet",
        "--threads",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert (
        subprocess.run([*base, "--results", str(tmp_path / "ref"), "--no-tracking"], env=env).returncode == 0
    )
    ref = _metrics(tmp_path / "ref")
    results = tmp_path / "killed"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [*base, "--results", str(results), "--tracking-uri", uri]
    rng = random.Random(0)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(3.5, 7.0))  # start-up, a task, a checkpoint, an evaluation...
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 0
    out = _metrics(results)
    assert kills >= 1
    assert out["accuracy_matrix"] == ref["accuracy_matrix"]
    for k in ("average_accuracy", "bwt", "fwt", "forgetting"):
        assert out[k] == ref[k]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 1
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "test_accuracy_task_0")]
    assert steps == [0, 1, 2]  # one row per task: none lost, none duplicated


@pytest.mark.slow
def test_torn_and_garbled_checkpoints_are_reported_and_skipped(reference, tmp_path, capsys):
    params, ref = reference
    results = tmp_path / "torn"
    assert _train(params, results, "--no-tracking", "--stop-after-task", "2") == 0
    ck = results / "runs/tiny/hypermask/seed_1/checkpoints"
    (ck / ".task_002.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # a write killed mid-way
    good = (ck / "task_000.pt").read_bytes()
    (ck / "task_001.pt").write_bytes((ck / "task_001.pt").read_bytes()[:1000])  # truncated
    assert _train(params, results, "--no-tracking") == 0
    err = capsys.readouterr().err
    assert (
        f"{ck / 'task_001.pt'}: not a readable checkpoint" in err and "falling back to the one before" in err
    )
    assert _metrics(results)["accuracy_matrix"] == ref["accuracy_matrix"]  # redone from task_000
    assert (ck / "task_000.pt").read_bytes() == good


def test_checkpoints_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    from hypermask.records.storage import safe_torch_load

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        safe_torch_load(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_garbled_metrics_json_is_reported_and_rebuilt_from_checkpoints(reference, tmp_path, capsys):
    params, ref = reference
    results = tmp_path / "garbled"
    assert _train(params, results, "--no-tracking") == 0
    m = results / "runs/tiny/hypermask/seed_1/metrics.json"
    m.write_text('{"status": "finis')
    assert _train(params, results, "--no-tracking") == 0
    assert f"{m}: unreadable (" in capsys.readouterr().err
    assert _metrics(results)["accuracy_matrix"] == ref["accuracy_matrix"]
    assert (m.parent / "metrics.json.corrupt").read_text() == '{"status": "finis'


@pytest.mark.slow
def test_killed_after_the_last_checkpoint_rebuilds_outputs_and_trains_nothing(tmp_path, capsys):
    """A process killed between its last checkpoint and metrics.json: the next one writes the
    outputs from that checkpoint into the same MLflow run, training nothing again. Once the
    run has finished (.finished), a removed metrics.json is a forced rerun instead (pipeline
    tests)."""
    params = _params(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "late"
    assert _train(params, results, "--tracking-uri", uri) == 0
    first = _metrics(results)
    run = results / "runs/tiny/hypermask/seed_1"
    for name in ("metrics.json", "accuracy_matrix.csv", "accuracy_matrix.png", ".finished"):
        (run / name).unlink()  # as if killed before any output was written
    capsys.readouterr()
    assert _train(params, results, "--tracking-uri", uri) == 0
    assert "missing after the last task's checkpoint; rebuilding it" in capsys.readouterr().err
    again = _metrics(results)
    assert again["accuracy_matrix"] == first["accuracy_matrix"] and again["per_task"] == first["per_task"]
    assert not (run / "checkpoints.stale").exists() and (run / ".finished").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 1 and runs[0].info.run_id == first["mlflow_run_id"]
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "test_accuracy_task_0")] == [
        0,
        1,
        2,
    ]
    assert len(client.get_metric_history(runs[0].info.run_id, "average_accuracy")) == 1  # not logged twice


def test_corrupt_prepared_data_is_refused_by_path(tmp_path, capsys):
    params = _params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    raw["pipeline"] = {"data_cache": str(tmp_path / "cache")}
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "prepare", "tiny"]) == 0
    npz = tmp_path / "cache/digits.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert _train(params, tmp_path / "r", "--no-tracking") != 0
    assert f"{npz}: checksum mismatch" in capsys.readouterr().err
    assert not (tmp_path / "r/runs/tiny/hypermask/seed_1/metrics.json").exists()


def test_nan_loss_stops_with_task_and_iteration_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    from hypermask.methods.hypermask import HyperMask
    from hypermask.records.storage import safe_torch_load

    params = _params(tmp_path)  # 3 tasks x 60 iterations, loss checked every 20
    real = HyperMask.loss
    calls = {"n": 0}

    def poisoned(self, x, y, t, p):
        calls["n"] += 1
        loss, ce = real(self, x, y, t, p)
        return (loss * float("nan"), ce) if calls["n"] == 60 + 25 else (loss, ce)  # task 1, iteration 24

    monkeypatch.setattr(HyperMask, "loss", poisoned)
    assert _train(params, tmp_path, "--no-tracking") != 0
    assert "task 1, iteration 39: training loss is nan" in capsys.readouterr().err
    ck = tmp_path / "runs/tiny/hypermask/seed_1/checkpoints"
    assert [p.name for p in ck.iterdir()] == ["task_000.pt"]  # the last good one, intact
    state = safe_torch_load(ck / "task_000.pt")["learner"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert not (tmp_path / "runs/tiny/hypermask/seed_1/metrics.json").exists()


def test_diverging_run_saves_no_non_finite_weights(tmp_path, capsys):
    params = _params(tmp_path, lr=1e30)
    assert _train(params, tmp_path, "--no-tracking") != 0
    err = capsys.readouterr().err
    assert "task 0" in err and ("training loss is" in err or "non-finite weights" in err)
    assert not list((tmp_path / "runs/tiny/hypermask/seed_1").rglob("*.pt"))


def test_second_process_on_the_same_run_is_refused(tmp_path, capsys):
    params = _params(tmp_path)
    lock = tmp_path / "runs/tiny/hypermask/seed_1/.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getpid()))  # a live process holds the run
    assert _train(params, tmp_path, "--no-tracking") != 0
    assert f"{lock}: run is being trained by process {os.getpid()}" in capsys.readouterr().err
    lock.write_text("999999999")  # a dead process: the stale lock is taken over
    assert _train(params, tmp_path, "--no-tracking") == 0
    assert not lock.exists()


def test_failing_write_names_the_path_and_keeps_previous_files(tmp_path, capsys, monkeypatch):
    params = _params(tmp_path)
    assert _train(params, tmp_path, "--no-tracking", "--stop-after-task", "1") == 0
    ck = tmp_path / "runs/tiny/hypermask/seed_1/checkpoints/task_000.pt"
    before = ck.read_bytes()
    import hypermask.records.storage as storage

    real = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", full_disk)
    assert _train(params, tmp_path, "--no-tracking") != 0
    err = capsys.readouterr().err
    assert "task_001.pt: write failed (No space left on device)" in err
    monkeypatch.setattr(storage.os, "fsync", real)
    assert ck.read_bytes() == before
    assert not list(ck.parent.glob(".*.tmp"))  # no half-written file left behind
    assert not (tmp_path / "runs/tiny/hypermask/seed_1/metrics.json").exists()
    assert _train(params, tmp_path, "--no-tracking") == 0  # and the run then finishes


# --------------------------------------------------------------------------- round two
RACE = """
import multiprocessing as mp, sys
import mlflow  # imported once; the jobs fork from here and start together
from hypermask.tracking.tracker import Tracker

def job(uri, i, barrier, q):
    try:
        barrier.wait()
        tr = Tracker(True, uri)
        tr.start("race", f"seed_{i}", {"seed": str(i)}, {"a": "1"}, None)
        tr.metric("m", float(i), 0)
        tr.end()
        q.put(None)
    except BaseException as e:
        q.put(repr(e)[:300])

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    uri, n = sys.argv[1], int(sys.argv[2])
    b, q = ctx.Barrier(n), ctx.Queue()
    ps = [ctx.Process(target=job, args=(uri, i, b, q)) for i in range(n)]
    [p.start() for p in ps]
    errors = [e for e in (q.get() for _ in ps) if e]
    [p.join() for p in ps]
    print("\\n".join(errors))
    sys.exit(1 if errors else 0)
"""


@pytest.mark.slow
def test_jobs_started_together_on_a_fresh_mlflow_store_all_succeed(tmp_path):
    """4 jobs open a store that does not exist yet, at the same instant, 10 times: no failure,
    one run each, and the store works afterwards (MLflow's own migration is not safe for it)."""
    script = tmp_path / "race.py"
    script.write_text(RACE)
    failures = []
    for rep in range(10):
        db = tmp_path / f"rep{rep}" / "mlflow.db"
        uri = f"sqlite:///{db}"
        out = subprocess.run([sys.executable, str(script), uri, "4"], capture_output=True, text=True)
        if out.returncode != 0:
            failures.append(out.stdout + out.stderr[-500:])
            continue
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("race").experiment_id])
        assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2", "3"]
    assert not failures, failures[0]


@pytest.mark.slow
def test_resume_after_the_mlflow_store_was_removed_continues_in_a_new_run(tmp_path, capsys):
    """metrics.json and the checkpoints are the record: the checkpoint's MLflow run is gone, so
    the run goes on in a new one, tagged with the old id, holding every task's rows once."""
    from mlflow.tracking import MlflowClient

    from hypermask.tracking.tracker import PREVIOUS_RUN_TAG

    params = _params(tmp_path)
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert _train(params, tmp_path, "--tracking-uri", uri, "--stop-after-task", "2") == 0
    old_id = json.loads((tmp_path / "runs/tiny/hypermask/seed_1/mlflow.json").read_text())["run_id"]
    db.unlink()  # the store is removed (or replaced by another one)
    capsys.readouterr()
    assert _train(params, tmp_path, "--tracking-uri", uri) == 0
    assert f"MLflow run {old_id} of this checkpoint is not in" in capsys.readouterr().err
    m = _metrics(tmp_path)
    assert m["status"] == "finished" and m["mlflow_run_id"] != old_id
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags[PREVIOUS_RUN_TAG] == old_id
    assert [x.step for x in client.get_metric_history(m["mlflow_run_id"], "test_accuracy_task_0")] == [
        0,
        1,
        2,
    ]
    assert [x.step for x in client.get_metric_history(m["mlflow_run_id"], "tasks_completed")] == [0, 1, 2]


def _junk(m: dict) -> dict:
    return {**m, "average_accuracy": 1e9}


BAD_METRICS = [
    ("a JSON list", lambda m: [m]),
    ("finished with junk values", _junk),
    ("finished with a summary that does not follow from the matrix", lambda m: {**m, "bwt": m["bwt"] + 5}),
    ("finished with a ragged matrix", lambda m: {**m, "accuracy_matrix": m["accuracy_matrix"][:-1]}),
    ("finished but of another seed", lambda m: {**m, "seed": 2}),
    ("finished without its matrix", lambda m: {k: v for k, v in m.items() if k != "accuracy_matrix"}),
]


@pytest.mark.parametrize("name,mangle", BAD_METRICS, ids=[b[0] for b in BAD_METRICS])
def test_metrics_json_of_the_wrong_shape_is_never_taken_for_a_finished_run(tmp_path, capsys, name, mangle):
    params = _params(tmp_path)
    assert _train(params, tmp_path, "--no-tracking") == 0
    good = _metrics(tmp_path)
    m = tmp_path / "runs/tiny/hypermask/seed_1/metrics.json"
    m.write_text(json.dumps(mangle(good)))
    # tables: counted as a missing seed, with the file named; no traceback; with no other run
    # finished there is nothing to tabulate: an error naming the command that trains them
    assert main(["--params", str(params), "tables", "demo", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{m}: " in err and "no finished run of suite 'demo'" in err and "snakemake" in err
    assert not (tmp_path / "tables/demo.csv").exists()
    # train: moved aside and rebuilt from the checkpoints, not trained again
    assert _train(params, tmp_path, "--no-tracking") == 0
    err = capsys.readouterr().err
    assert f"{m}: " in err and "rebuilding it" in err
    assert _metrics(tmp_path)["accuracy_matrix"] == good["accuracy_matrix"]
    assert (m.parent / "metrics.json.corrupt").exists()


@pytest.mark.slow
def test_unwritable_places_are_named_without_a_traceback(tmp_path):
    """As root nothing under /tmp is unwritable, so places that cannot be created stand in."""
    params = _params(tmp_path)
    (tmp_path / "a_file").write_text("")
    exe = str(BIN / "hypermask")
    cases = [
        (["--results", str(tmp_path / "a_file/results"), "--no-tracking"], f"{tmp_path / 'a_file'}"),
        (["--results", "/proc/hypermask-results", "--no-tracking"], "/proc/hypermask-results"),
        (
            ["--results", str(tmp_path / "r"), "--tracking-uri", "sqlite:////proc/nope/mlflow.db"],
            "MLflow store sqlite:////proc/nope/mlflow.db",
        ),
        (
            ["--results", str(tmp_path / "r"), "--tracking-uri", "nosuchscheme://x"],
            "MLflow store nosuchscheme://x",
        ),
    ]
    for extra, fragment in cases:
        out = subprocess.run(
            [exe, "--params", str(params), "train", "tiny", "--seed", "1", "--quiet", *extra],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2, (extra, out.stderr)
        assert fragment in out.stderr and "Traceback" not in out.stderr, (extra, out.stderr)
