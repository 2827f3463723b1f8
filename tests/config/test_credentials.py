"""No password in a URL the project reads: params.yaml (any key), --tracking-uri and
$MLFLOW_TRACKING_URI are refused with the key named, the password masked and no traceback.
(Snakemake's --config and the authenticated server: tests/pipeline/test_cluster_preflight.py.)"""

import copy

import pytest

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config.credentials import masked, password_in_url

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "url, has",
    [
        ("postgresql://lab:pw@db:5432/optuna", True),
        ("postgresql://lab@db/optuna", False),
        ("postgresql:///optuna?service=lab", False),
        ("http://u:p@mlflow.lab:5000", True),
        ("http://mlflow.lab:5000", False),
        ("https://u:@host", True),  # an empty password is still a password field
        ("sqlite:////tmp/x.db", False),
        ("journal", False),
        ("postgresql://u:pw@host:notaport/db", True),  # unparseable port: still found
        (5, False),
    ],
)
def test_password_in_url_by_hand(url, has):
    assert password_in_url(url) is has


def test_masked_by_hand():
    assert masked("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert masked("http://u:p@a:b@h/x") == "http://u:***@h/x"  # the last '@' ends the user part
    assert masked("http://h:5000") == "http://h:5000"


def _refused(capsys, argv, key):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert key in err and "carries a password" in err and "PGPASSWORD" in err
    assert SECRET not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("where", ["sweeps.storage", "pipeline.tracking_uri", "benchmarks.tiny.data.root"])
def test_password_in_params_yaml_is_refused_by_check(tmp_path, capsys, where):
    p = copy.deepcopy(TINY)
    node = p
    *parents, leaf = where.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[leaf] = f"postgresql://lab:{SECRET}@db.lab/optuna"
    write_params(tmp_path / "params.yaml", p)
    err = _refused(capsys, ["--params", str(tmp_path / "params.yaml"), "check"], f"params.yaml.{where}")
    assert "postgresql://lab:***@db.lab/optuna" in err


def test_password_on_the_command_line_or_in_the_environment_is_refused(tmp_path, capsys, monkeypatch):
    write_params(tmp_path / "params.yaml", TINY)
    base = [
        "--params",
        str(tmp_path / "params.yaml"),
        "train",
        "tiny",
        "--seed",
        "1",
        "--results",
        str(tmp_path / "r"),
    ]
    _refused(capsys, base + ["--tracking-uri", f"http://jobs:{SECRET}@127.0.0.1:5000"], "--tracking-uri")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql://jobs:{SECRET}@127.0.0.1/mlflow")
    _refused(capsys, base, "$MLFLOW_TRACKING_URI")
    _refused(
        capsys, ["--params", str(tmp_path / "params.yaml"), "check", "--connect"], "$MLFLOW_TRACKING_URI"
    )
    assert not (tmp_path / "r").exists()  # refused before any output
