"""Path settings are paths (typed.PathSetting, OutputFolder): never empty, never padded, never
the repository itself; a relative one is read from the folder of params.yaml, whatever the
working directory (an empty pipeline.results once made the pipeline plan /runs/... and /tables/...
at the filesystem root, and `train` write ./runs into the repository, all with exit 0)."""

import copy
import json
import subprocess

import pytest

from conftest import TINY, write_params
from hypermask.cli.main import main

BAD = [
    ("results", "", "an empty path"),
    ("results", "  ", "an empty path"),
    ("results", " results", "leading or trailing spaces"),
    ("results", ".", "would put the outputs beside the code"),
    ("results", "./", "would put the outputs beside the code"),
    ("results", "/", "would put the outputs beside the code"),
    ("data_cache", "", "an empty path"),
    ("data_cache", ".", "would put the outputs beside the code"),
]


@pytest.mark.parametrize("key,value,why", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_check_refuses_a_path_setting_that_is_no_folder(tmp_path, capsys, key, value, why):
    p = copy.deepcopy(TINY)
    p["pipeline"] = {key: value}
    params = write_params(tmp_path / "params.yaml", p)
    assert main(["--params", str(params), "check"]) == 2
    err = capsys.readouterr().err
    assert f"pipeline.{key}: " in err and why in err


def test_the_folder_of_params_yaml_itself_is_refused_however_written(tmp_path, capsys):
    for value in (str(tmp_path), f"../{tmp_path.name}", f"{tmp_path}/sub/.."):
        p = copy.deepcopy(TINY)
        p["pipeline"] = {"results": value}
        params = write_params(tmp_path / "params.yaml", p)
        assert main(["--params", str(params), "check"]) == 2
        assert "is the folder of params.yaml itself" in capsys.readouterr().err


def test_data_root_is_a_path_too(tmp_path, capsys):
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["data"]["root"] = ""
    params = write_params(tmp_path / "params.yaml", p)
    assert main(["--params", str(params), "check"]) == 2
    assert "benchmarks.tiny with methods.hypermask.data.root: an empty path" in capsys.readouterr().err


def test_an_empty_results_flag_is_refused(tiny_params, capsys):
    assert main(["--params", str(tiny_params), "tables", "demo", "--results", ""]) == 2
    assert "--results: an empty path" in capsys.readouterr().err


@pytest.mark.slow
def test_a_relative_results_folder_is_read_from_params_yaml_folder(tmp_path):
    """`hypermask train` started elsewhere writes under params.yaml's folder, as the pipeline
    (which runs in the repository) plans it, never under the working directory."""
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    elsewhere.mkdir()
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"]["iterations"] = 10
    p["pipeline"] = {"results": "out", "data_cache": "cache"}
    params = write_params(repo / "params.yaml", p)
    r = subprocess.run(
        ["hypermask", "--params", str(params), "train", "tiny", "--seed", "1", "--no-tracking", "--quiet"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((repo / "out/runs/tiny/hypermask/seed_1/metrics.json").read_text())["seed"] == 1
    assert not any(elsewhere.iterdir())
