"""The readers of a run's files when a file is not what it should be: metrics.json
(read_metrics), a post-hoc evaluation (read_evaluation), a checkpoint (read_checkpoint), the run
lock, and a set of files written together (FileSet's journal). Each says why, naming the file
where it raises; none loses or mixes what was there."""

import json
import os

import numpy as np
import pytest
import torch

from hypermask.config import load_experiment
from hypermask.evaluation import metrics as M
from hypermask.records.runs import RunLock, read_evaluation, read_metrics, run_dir, settings_digest
from hypermask.records.storage import FileSet, StorageError, UnreadableFile, complete_pending, read_checkpoint

EXP = "tiny/hypermask"


def _finished(seed: int = 1) -> dict:
    """A metrics.json a finished 3-task run could have written: the summary follows from the matrix."""
    A = np.array([[90.0, 10.0, 12.0], [85.0, 91.0, 9.0], [80.0, 88.0, 93.0]])
    R = np.array([10.0, 11.0, 9.0])
    return {
        "experiment": EXP,
        "seed": seed,
        "status": "finished",
        "method": "hypermask",
        **M.summary(A, R),
        "accuracy_matrix": A.tolist(),
        "random_init_accuracy": R.tolist(),
    }


def _why(tmp_path, content: str | None, seed: int = 1) -> tuple[dict | None, str]:
    paths = run_dir(tmp_path, EXP, 1)
    if content is not None:
        paths.metrics.parent.mkdir(parents=True, exist_ok=True)
        paths.metrics.write_text(content)
    return read_metrics(paths, EXP, seed)


@pytest.mark.parametrize(
    "content,why",
    [
        (None, "missing"),
        ('{"status": "finis', "unreadable (Unterminated string"),
        ("", "unreadable (Expecting value"),
        ("[1, 2]", "not a JSON object but a list"),
        ('"finished"', "not a JSON object but a str"),
        ('{"status": "running", "experiment": "tiny/hypermask", "seed": 1}', "unfinished"),
        ("{}", "unfinished"),
    ],
    ids=["missing", "torn", "empty", "list", "string", "running", "no-status"],
)
def test_metrics_json_that_is_not_a_finished_run_says_why(tmp_path, content, why):
    run, reason = _why(tmp_path, content)
    assert run is None and reason.startswith(why), reason


def test_metrics_json_of_a_finished_run_is_checked_against_its_own_matrix(tmp_path):
    good = _finished()
    run, why = _why(tmp_path, json.dumps(good))
    assert run == good and why == ""
    run, why = _why(tmp_path, json.dumps({**good, "forgetting": good["forgetting"] + 1}))
    assert (
        run is None
        and why.startswith("invalid: forgetting:")
        and "does not follow from accuracy_matrix" in why
    )
    run, why = _why(tmp_path, json.dumps({**good, "average_accuracy": float("nan")}))
    assert run is None and why.startswith("invalid: average_accuracy:")
    run, why = _why(tmp_path, json.dumps(good), seed=2)  # copied from another seed's folder
    assert run is None and why == "belongs to tiny/hypermask seed 1"


def test_a_post_hoc_evaluation_is_used_only_under_the_settings_it_was_computed_under(tiny_params, tmp_path):
    cfg = load_experiment(tiny_params, EXP)
    path = tmp_path / "eval_entropy.json"
    assert read_evaluation(path, cfg) == (None, "missing")
    path.write_text('{"accuracy": [1')
    assert read_evaluation(path, cfg) == (None, "unreadable (JSONDecodeError)")
    path.write_text("[]")
    assert read_evaluation(path, cfg) == (None, "not an evaluation (no JSON object)")
    path.write_text(json.dumps({"accuracy": 50.0}))
    assert read_evaluation(path, cfg)[1].startswith("written without the settings")
    path.write_text(json.dumps({"accuracy": 50.0, "settings_sha256": "0" * 64}))
    assert read_evaluation(path, cfg) == (None, "evaluated under other settings than params.yaml gives now")
    ev = {"accuracy": 50.0, "settings_sha256": settings_digest(cfg)}
    path.write_text(json.dumps(ev))
    assert read_evaluation(path, cfg) == (ev, "")


def test_a_checkpoint_that_is_missing_torn_or_foreign_is_named(tmp_path):
    missing = tmp_path / "task_000.pt"
    with pytest.raises(UnreadableFile, match=f"^{missing}: no such checkpoint$"):
        read_checkpoint(missing)
    state = {"learner": {"w": torch.ones(3)}, "completed_tasks": 1, "config": "{}"}
    good = tmp_path / "task_001.pt"
    torch.save(state, good)
    assert read_checkpoint(good)["completed_tasks"] == 1
    torn = tmp_path / "task_002.pt"
    torn.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UnreadableFile, match=f"^{torn}: not a readable checkpoint .*truncated, damaged"):
        read_checkpoint(torn)
    foreign = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.ones(3)}}, foreign)
    with pytest.raises(UnreadableFile, match=f"{foreign}: not a hypermask checkpoint \\(it lacks learner"):
        read_checkpoint(foreign)


@pytest.mark.parametrize("content", ["", "not a pid\n", "12ab"], ids=["empty", "text", "garbled"])
def test_a_lock_file_that_holds_no_pid_is_taken_over(tmp_path, content):
    """A process killed between creating the lock and writing its pid leaves it empty."""
    lock = tmp_path / "run" / ".lock"
    lock.parent.mkdir()
    lock.write_text(content)
    with RunLock(lock):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def _set(tables, **files) -> FileSet:
    fs = FileSet(tables / ".demo.set.json")
    for name, text in files.items():
        fs.add(tables / name.replace("_", "."), text)
    return fs


def test_a_set_whose_write_fails_leaves_the_previous_files_whole(tmp_path):
    tables = tmp_path / "tables"
    _set(tables, demo_csv="old csv", demo_md="old md").commit()
    fs = _set(tables, demo_csv="new csv")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(StorageError, match=f"^{tmp_path / 'blocker' / 'demo.tex'}: write failed"):
        fs.add(tmp_path / "blocker" / "demo.tex", "new tex")
    assert (tables / "demo.csv").read_text() == "old csv" and (tables / "demo.md").read_text() == "old md"
    assert sorted(p.name for p in tables.iterdir()) == ["demo.csv", "demo.md"]  # the staged csv removed


def test_a_set_whose_journal_cannot_be_written_leaves_the_previous_files_whole(tmp_path):
    tables = tmp_path / "tables"
    _set(tables, demo_csv="old csv", demo_md="old md").commit()
    fs = _set(tables, demo_csv="new csv", demo_md="new md")
    (tables / ".demo.set.json").mkdir()  # the journal's place is taken: its rename fails
    (tables / ".demo.set.json" / "x").write_text("")
    with pytest.raises(StorageError, match="demo.set.json: write failed"):
        fs.commit()
    assert (tables / "demo.csv").read_text() == "old csv" and (tables / "demo.md").read_text() == "old md"
    assert sorted(p.name for p in tables.iterdir()) == [".demo.set.json", "demo.csv", "demo.md"]


@pytest.mark.parametrize(
    "journal", ['{"renames": [["a", ', "[]", '{"renamed": []}'], ids=["torn", "list", "key"]
)
def test_a_torn_journal_renames_nothing_and_is_removed(tmp_path, journal):
    """A journal cut mid-write never reached its place (it is written atomically); one that is not
    a journal is dropped the same way, and no file of the set is touched."""
    tables = tmp_path / "tables"
    _set(tables, demo_csv="old csv").commit()
    staged = tables / ".demo.csv.0123.set.tmp"
    staged.write_text("new csv")
    (tables / ".demo.set.json").write_text(journal)
    complete_pending(tables / ".demo.set.json")
    assert not (tables / ".demo.set.json").exists()
    assert (tables / "demo.csv").read_text() == "old csv" and staged.read_text() == "new csv"
    _set(tables, demo_csv="newer csv").commit()  # the next writer drops the stale staged file
    assert sorted(p.name for p in tables.iterdir()) == ["demo.csv"]
    assert (tables / "demo.csv").read_text() == "newer csv"
