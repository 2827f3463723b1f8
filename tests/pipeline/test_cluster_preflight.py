"""The cluster path's preflight: a missing sbatch, an unreachable MLflow server, a sweeps
database that refuses connections each stop Snakemake before its first job, naming the setting.
(The cluster itself runs in .ci/slurm: a real SLURM, PostgreSQL and MLflow server.)"""

import copy
import importlib.util
import os
import shutil
import socket
from pathlib import Path

import pytest
from test_pipeline import BIN, project, sh

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.pipeline.preflight import storage_problem, tracking_problem

pytestmark = pytest.mark.slow  # real Snakemake runs


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_health(url: str, seconds: float) -> None:
    """Until an MLflow server at `url` answers /health (at most `seconds`)."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return
        except OSError:
            time.sleep(0.2)


def suite() -> dict:
    p = copy.deepcopy(TINY)
    p["suites"] = {"demo": {"benchmarks": ["tiny"], "methods": ["hypermask"]}}
    p["sweeps"] = {
        "n_trials": 2,
        "benchmarks": ["tiny"],
        "spaces": {"hypermask": {"hypermask.beta": {"low": 1e-4, "high": 1e-1, "log": True}}},
    }
    return p


def nothing_ran(d: Path) -> bool:
    return not (d / "results").exists() and not (d / "data" / "prepared").exists()


def test_unreachable_tracking_server_stops_before_any_job(tmp_path):
    p = suite()
    url = f"http://127.0.0.1:{closed_port()}"
    p["pipeline"] = {"tracking_uri": url}
    d = project(tmp_path, p)
    out = sh([str(BIN / "snakemake"), "--cores", "1", "all_tables"], d, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"MLflow tracking server {url}: unreachable" in text and "pipeline.tracking_uri" in text
    assert nothing_ran(d)


def test_sweeps_database_that_refuses_stops_before_any_job(tmp_path, capsys):
    p = suite()
    url = f"postgresql://lab@127.0.0.1:{closed_port()}/optuna"
    p["sweeps"]["storage"] = url
    d = project(tmp_path, p)
    out = sh([str(BIN / "snakemake"), "--cores", "1", "all_sweeps"], d, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"sweeps.storage in params.yaml: cannot connect to {url}" in text
    assert nothing_ran(d)
    # the sweep command alone says the same, without a traceback
    write_params(tmp_path / "params.yaml", p)
    capsys.readouterr()
    assert (
        main(["--params", str(tmp_path / "params.yaml"), "sweep", "tiny", "--results", str(tmp_path / "r")])
        != 0
    )
    err = capsys.readouterr().err
    assert "sweeps.storage in params.yaml: cannot connect" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="the SLURM executor plugin is the [cluster] extra (.ci/slurm runs this test with it)",
)
def test_slurm_profile_without_sbatch_stops_before_any_job(tmp_path):
    d = project(tmp_path, suite())
    tools = tmp_path / "bin"  # the commands snakemake needs, and no sbatch
    tools.mkdir()
    for tool in ("bash", "sh", "env", "uname", "cat", "which", "git"):
        if shutil.which(tool):
            (tools / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": f"{BIN}:{tools}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    import subprocess

    out = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "profiles/slurm", "all_tables"],
        cwd=d,
        capture_output=True,
        text=True,
        env=env,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "sbatch: not found on PATH" in text and "Traceback" not in text
    assert nothing_ran(d)


def test_password_in_params_or_snakemake_config_stops_the_workflow_before_any_job(tmp_path):
    """The workflow's start refuses a password in params.yaml (before its schema check, whose
    messages quote values) and in Snakemake's --config (a command line: ps, logs)."""
    p = suite()
    p["sweeps"]["storage"] = "postgresql://lab:s3cr3t-Pa55@127.0.0.1/optuna"
    d = project(tmp_path, p)
    out = sh([str(BIN / "snakemake"), "--cores", "1", "all_tables"], d, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "params.yaml.sweeps.storage: the URL carries a password" in text
    assert "s3cr3t-Pa55" not in text and nothing_ran(d)
    write_params(d / "params.yaml", suite())
    out = sh(
        [
            str(BIN / "snakemake"),
            "--cores",
            "1",
            "all_tables",
            "--config",
            "tracking=http://jobs:s3cr3t-Pa55@127.0.0.1:5000",
        ],
        d,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "--config.tracking: the URL carries a password" in text
    assert "s3cr3t-Pa55" not in text and nothing_ran(d)


@pytest.mark.skipif(
    importlib.util.find_spec("flask_wtf") is None,
    reason="MLflow's basic-auth app needs Flask-WTF, in the [cluster] extra (.ci/slurm runs this test)",
)
def test_authenticated_tracking_server_preflight(tmp_path, monkeypatch, capsys):
    """A real `mlflow server --app-name basic-auth`: without credentials, and with a wrong
    password, the preflight (and `hypermask check --connect`) names the variables to set and
    never prints the password; with a user's credentials it passes."""
    import subprocess
    import urllib.error
    import urllib.request

    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path}/auth.db\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-Pa55-word",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "k" * 32,
    }
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/srv.db",
            "--artifacts-destination",
            str(tmp_path / "art"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_health(url, 120)
        # the server itself refuses an unauthenticated API request
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(k, raising=False)
        none = tracking_problem(url)
        assert "asks for credentials" in none and "MLFLOW_TRACKING_USERNAME" in none
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-Pa55-word")
        wrong = tracking_problem(url)
        assert (
            "refused the credentials" in wrong and "user 'admin'" in wrong and "wrong-Pa55-word" not in wrong
        )
        p = suite()
        p["pipeline"] = {"tracking_uri": url}
        write_params(tmp_path / "params.yaml", p)
        capsys.readouterr()
        assert main(["--params", str(tmp_path / "params.yaml"), "check", "--connect"]) == 2
        err = capsys.readouterr().err
        assert "refused the credentials" in err and "wrong-Pa55-word" not in err and "Traceback" not in err
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "admin-Pa55-word")
        assert tracking_problem(url) is None
        assert main(["--params", str(tmp_path / "params.yaml"), "check", "--connect"]) == 0
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_preflight_messages_by_hand():
    assert tracking_problem("sqlite:///x.db") is None and tracking_problem("file:///tmp/mlruns") is None
    assert storage_problem(None) is None and storage_problem("journal") is None
    assert storage_problem("sqlite:////tmp/x.db") is None
    bad = storage_problem("nosuchdialect://h/db")
    assert bad is not None and "sweeps.storage" in bad


def test_tracking_server_gone_mid_run_loses_no_result(tmp_path):
    """metrics.json and the checkpoints are the record: a server that dies during a run costs
    MLflow rows, reported by count, never the run. With MLflow's own retry count (7) each
    write to the dead server would wait about 4 minutes; the command's default (3, recorded
    in metrics.json) is what this run uses."""
    import subprocess
    import time

    port = closed_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/srv.db",
            "--artifacts-destination",
            str(tmp_path / "art"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, 60)
        p = copy.deepcopy(TINY)
        p["benchmarks"]["tiny"]["train"]["iterations"] = 300
        write_params(tmp_path / "params.yaml", p)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_")}
        train = subprocess.Popen(
            [
                str(BIN / "hypermask"),
                "--params",
                str(tmp_path / "params.yaml"),
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path),
                "--tracking-uri",
                url,
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        first = tmp_path / "runs/tiny/hypermask/seed_1/checkpoints/task_000.pt"
        while not first.exists() and train.poll() is None:
            time.sleep(0.05)
        os.killpg(server.pid, 9)  # the server goes away during task 1
        server.wait()
        out, err = train.communicate(timeout=600)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 9)
    assert train.returncode == 0, err[-2000:]
    import json

    m = json.loads((tmp_path / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
    assert m["status"] == "finished" and len(m["accuracy_matrix"]) == len(m["accuracy_matrix"][0])
    assert m["process_settings"]["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert "could not log metrics" in err and "metric rows of run" in err and "were not logged" in err
    assert "Traceback" not in err
