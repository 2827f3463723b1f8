"""Derived results know what they were derived under, and every persisted format has one
guarded reader: a post-hoc evaluation records the settings' digest; `evaluate` refuses a run
trained under other settings than params.yaml gives now; `tables` ignores, with a warning, an
evaluation made under other settings; a truncated or foreign checkpoint is named (with the way
out), never a traceback."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main


@pytest.fixture
def trained(tmp_path):
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["seeds"] = [1]
    p["benchmarks"]["tiny"]["train"]["iterations"] = 20
    params = write_params(tmp_path / "params.yaml", p)
    base = ["--params", str(params)]
    assert (
        main(
            [
                *base,
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path / "r"),
                "--no-tracking",
                "--quiet",
            ]
        )
        == 0
    )
    return tmp_path, params, base


def _evaluate(base, tmp_path, setting="entropy"):
    return main(
        [
            *base,
            "evaluate",
            "tiny",
            "--seed",
            "1",
            "--setting",
            setting,
            "--results",
            str(tmp_path / "r"),
            "--no-tracking",
        ]
    )


def test_evaluation_records_its_settings_and_tables_use_only_matching_ones(trained, capsys):
    tmp_path, params, base = trained
    assert _evaluate(base, tmp_path) == 0
    ev_path = tmp_path / "r/runs/tiny/hypermask/seed_1/eval_entropy.json"
    ev = json.loads(ev_path.read_text())
    assert len(ev["settings_sha256"]) == 64
    tables = [*base, "tables", "demo", "--results", str(tmp_path / "r")]
    assert main(tables) == 0
    df = pd.read_csv(tmp_path / "r/tables/demo.csv")
    assert df["entropy_task_mean"].notna().all()
    # the same file, as if computed under other settings: ignored, by name, with the command to redo it
    ev["settings_sha256"] = "0" * 64
    ev_path.write_text(json.dumps(ev))
    capsys.readouterr()
    assert main(tables) == 0
    err = capsys.readouterr().err
    assert f"{ev_path}: evaluated under other settings than params.yaml gives now" in err
    assert "hypermask evaluate tiny --method hypermask --seed 1 --setting entropy" in err
    df = pd.read_csv(tmp_path / "r/tables/demo.csv")
    assert df["entropy_task_mean"].isna().all()


def test_evaluate_refuses_a_run_trained_under_other_settings(trained, capsys):
    tmp_path, params, base = trained
    p = yaml.safe_load(params.read_text())
    p["methods"]["hypermask"]["settings"]["hypermask"]["beta"] = 0.5
    params.write_text(yaml.safe_dump(p))
    capsys.readouterr()
    assert _evaluate(base, tmp_path) == 2
    err = capsys.readouterr().err
    assert (
        "trained under other settings than params.yaml gives now (hypermask.beta)" in err
        and "Traceback" not in err
    )
    assert not (tmp_path / "r/runs/tiny/hypermask/seed_1/eval_entropy.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "foreign", "wrong_keys"])
def test_a_damaged_checkpoint_is_named_by_evaluate_and_skipped_by_resume(trained, capsys, damage):
    import torch

    tmp_path, params, base = trained
    ckpt = tmp_path / "r/runs/tiny/hypermask/seed_1/checkpoints/task_001.pt"
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "foreign":
        ckpt.write_text("not a checkpoint\n")
    else:
        torch.save({"weights": torch.zeros(3)}, ckpt)
    capsys.readouterr()
    assert _evaluate(base, tmp_path) == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "Traceback" not in err and "--force" in err
    # resume (after the run's end is undone) falls back to the checkpoint before it, by name
    run = tmp_path / "r/runs/tiny/hypermask/seed_1"
    for f in ("metrics.json", ".finished"):
        (run / f).unlink()
    (run / "checkpoints/task_002.pt").unlink()
    assert (
        main(
            [
                *base,
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path / "r"),
                "--no-tracking",
                "--quiet",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"{ckpt}: " in err and "falling back to the one before" in err
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


def test_a_set_of_files_is_replaced_together(tmp_path):
    """storage.FileSet: killed before its journal, the old set stays whole (and the staged files
    are cleared by the next writer); killed after it, mid-renames, the next reader finishes the
    renames, so no reader sees a new csv beside an old md."""
    import os

    from hypermask.records.storage import FileSet, atomic_write_json, complete_pending

    d = tmp_path / "tables"
    d.mkdir()
    names = ["s.csv", "s.md", "s.tex"]
    for n in names:
        (d / n).write_text("old")
    journal = d / ".s.set.json"
    files = FileSet(journal)  # killed after staging, before the journal
    for n in names:
        files.add(d / n, "new")
    assert [(d / n).read_text() for n in names] == ["old"] * 3
    files = FileSet(journal)  # the next writer: stale staged files go
    files.add(d / "s.csv", "newer")
    assert len(list(d.glob(".s.csv.*.set.tmp"))) == 1
    files.abort()
    files = FileSet(journal)  # killed after the journal, after one rename of three
    for n in names:
        files.add(d / n, "new")
    atomic_write_json(journal, {"renames": [[str(a), str(b)] for a, b in files.staged]})
    os.replace(*files.staged[0])
    assert [(d / n).read_text() for n in names] == ["new", "old", "old"]  # mixed on disk, journal present
    complete_pending(journal)  # what every reader of the set does first
    assert [(d / n).read_text() for n in names] == ["new"] * 3 and not journal.exists()
    assert not list(d.glob("*.tmp"))


def test_tables_write_their_set_through_a_journal(trained):
    tmp_path, params, base = trained
    assert main([*base, "tables", "demo", "--results", str(tmp_path / "r")]) == 0
    tables = tmp_path / "r/tables"
    assert {p.name for p in tables.iterdir()} == {
        "demo.csv",
        "demo.md",
        "demo.tex",
        "demo.html",
    }  # no journal, no staged file
    assert list((tmp_path / "r/figures/demo").glob("*.png"))
    assert not list((tmp_path / "r/figures/demo").glob(".*"))
