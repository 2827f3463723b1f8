"""Staged outputs (records/staging.py): adopted whole, metrics.json last, nothing else moved;
staged again as links; copies of the current outputs dropped, fresh ones kept; the files a staged run holds are the files a run's job declares."""

import os
import subprocess
import sys
from pathlib import Path

from hypermask.records.runs import RUN_FILES, RunPaths
from hypermask.records.staging import OUTPUTS, STAGED, adopt_staged, drop_copies_of_current, stage_copy


def test_a_staged_run_holds_what_a_runs_job_declares():
    assert sorted(OUTPUTS) == sorted(RUN_FILES) and OUTPUTS[-1] == "metrics.json"
    paths = RunPaths(Path("r"))
    assert paths.staged().metrics.parent.name == STAGED and paths.staged().checkpoints == paths.checkpoints
    assert paths.staged().finished == paths.finished  # one marker and one lock per run


def test_adopt_moves_the_outputs_into_place_and_leaves_anything_else(tmp_path):
    staged = tmp_path / STAGED
    staged.mkdir()
    for name in OUTPUTS:
        (staged / name).write_text(f"new {name}")
    (tmp_path / "metrics.json").write_text("old")
    assert adopt_staged(tmp_path)
    assert all((tmp_path / n).read_text() == f"new {n}" for n in OUTPUTS) and not staged.exists()
    assert not adopt_staged(tmp_path)  # nothing staged: the caller trains
    staged.mkdir()
    (staged / "accuracy_matrix.csv").write_text("half")  # no metrics.json: an unfinished staging
    (staged / "notes.txt").write_text("mine")
    assert (
        not adopt_staged(tmp_path)
        and (tmp_path / "accuracy_matrix.csv").read_text() == "new accuracy_matrix.csv"
    )
    (staged / "metrics.json").write_text("m")
    assert adopt_staged(tmp_path) and (staged / "notes.txt").read_text() == "mine"  # left, with its folder


def test_stage_copy_links_the_current_outputs(tmp_path):
    for name in OUTPUTS:
        (tmp_path / name).write_text(name)
    stage_copy(tmp_path)
    assert all(os.path.samefile(tmp_path / n, tmp_path / STAGED / n) for n in OUTPUTS)
    stage_copy(tmp_path)  # again: replaced, not refused
    assert adopt_staged(tmp_path) and all((tmp_path / n).read_text() == n for n in OUTPUTS)


def test_only_copies_of_the_current_outputs_are_dropped(tmp_path):
    for name in OUTPUTS:
        (tmp_path / name).write_text(name)
    stage_copy(tmp_path)
    assert drop_copies_of_current(tmp_path) and not (tmp_path / STAGED).exists()
    assert all((tmp_path / n).read_text() == n for n in OUTPUTS)  # the outputs themselves stay
    stage_copy(tmp_path)
    (tmp_path / STAGED / "metrics.json").unlink()
    (tmp_path / STAGED / "metrics.json").write_text("metrics.json")  # a copy, not a link: equal bytes
    assert drop_copies_of_current(tmp_path) and not (tmp_path / STAGED).exists()
    stage_copy(tmp_path)
    (tmp_path / STAGED / "metrics.json").unlink()
    (tmp_path / STAGED / "metrics.json").write_text("trained again")  # fresh outputs, not adopted yet
    assert not drop_copies_of_current(tmp_path) and adopt_staged(tmp_path)
    assert (tmp_path / "metrics.json").read_text() == "trained again"
    stage_copy(tmp_path)
    (tmp_path / "metrics.json").unlink()  # the output removed (a forced rerun): the caller decides
    assert not drop_copies_of_current(tmp_path) and (tmp_path / STAGED / "metrics.json").exists()


def test_the_adopting_process_says_what_it_did_by_its_exit_status(tmp_path):
    cmd = [sys.executable, "-m", "hypermask.records.staging", str(tmp_path)]
    assert subprocess.run(cmd, capture_output=True).returncode == 1
    (tmp_path / STAGED).mkdir()
    (tmp_path / STAGED / "metrics.json").write_text("{}")
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0 and "adopted" in out.stdout and (tmp_path / "metrics.json").exists()
