"""Checks of the cluster path before any job starts (the workflow's onstart handler).

A missing `sbatch`, an MLflow server that does not answer, an Optuna database that refuses
the connection: each is found before the first job, with the setting to change, instead of
as one failure per job after hours in a queue.
"""

from __future__ import annotations

import base64
import os
import shutil
import urllib.error
import urllib.request

from hypermask.config.credentials import (
    WHERE_PASSWORDS_GO,
    embedded_password_problem,
    masked,
)


def executor_problem(executor: str) -> str | None:
    if executor == "slurm" and shutil.which("sbatch") is None:
        return (
            "sbatch: not found on PATH, and the SLURM executor (profiles/slurm) submits every job with it: "
            "run snakemake on a login node of the cluster (or `module load slurm`), or run locally with "
            "`snakemake --cores N`"
        )
    return None


def _get(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """(HTTP status, or None when nothing answered; the reason when it was not 200)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, "" if r.status == 200 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return e.code, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e))


def client_credentials() -> tuple[dict[str, str], str]:
    """The Authorization header an MLflow client sends from this environment (MLflow's own
    reader: MLFLOW_TRACKING_USERNAME/PASSWORD, else ~/.mlflow/credentials; basic auth before a
    token, as its REST client does), and in words where it came from (no secret)."""
    from mlflow.utils.credentials import read_mlflow_creds

    user, password = read_mlflow_creds()
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        where = (
            "MLFLOW_TRACKING_PASSWORD"
            if os.environ.get("MLFLOW_TRACKING_PASSWORD")
            else "~/.mlflow/credentials"
        )
        return {"Authorization": f"Basic {token}"}, f"user {user!r}, password (***) from {where}"
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {
            "Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        }, "the token in MLFLOW_TRACKING_TOKEN"
    return {}, "no credentials: neither MLFLOW_TRACKING_USERNAME/PASSWORD nor ~/.mlflow/credentials"


def tracking_problem(uri: str, timeout: float = 10.0) -> str | None:
    """An http(s) tracking URI must answer MLflow's /health and accept this environment's
    credentials (an authenticated server refuses a request without them); file and database
    stores are checked by each job when it opens the store."""
    problem = embedded_password_problem("the tracking URI", uri)
    if problem:
        return problem
    if not uri.startswith(("http://", "https://")):
        return None
    base = uri.rstrip("/")
    status, why = _get(base + "/health", timeout)
    if status != 200:
        return (
            f"MLflow tracking server {uri}: unreachable ({why}); start it (`mlflow server ...`, "
            "docs/clusters.md) or change pipeline.tracking_uri in params.yaml (or MLFLOW_TRACKING_URI)"
        )
    headers, source = client_credentials()
    status, why = _get(base + "/api/2.0/mlflow/experiments/search?max_results=1", timeout, headers)
    if status == 200:
        return None
    if status in (401, 403):
        what = "refused the credentials" if headers else "asks for credentials"
        return (
            f"MLflow tracking server {uri}: {what} ({why}; {source}); give a user of the server "
            "(with permission to create experiments) to every job: MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD in the environment that starts the jobs, or ~/.mlflow/credentials "
            "(mode 600), never params.yaml"
        )
    return (
        f"MLflow tracking server {uri}: answers /health but not MLflow's API ({why}); is it an MLflow server?"
    )


def storage_problem(storage: str | None, timeout: int = 10) -> str | None:
    """A database URL in sweeps.storage must accept a connection (SQLite and journal files are
    created by the sweep itself)."""
    if storage in (None, "journal") or storage.startswith("sqlite"):
        return None
    import sqlalchemy

    try:
        args = {"connect_timeout": timeout} if storage.startswith(("postgresql", "mysql")) else {}
        engine = sqlalchemy.create_engine(storage, connect_args=args)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if "password" in first.lower():  # libpq: "password authentication failed", "no password supplied"
            return (
                f"sweeps.storage in params.yaml: {masked(storage)} refused the login ({first[:300]}); "
                f"give the database user's password where its client reads it, never in the URL: "
                f"{WHERE_PASSWORDS_GO}"
            )
        return (
            f"sweeps.storage in params.yaml: cannot connect to {masked(storage)} ({first[:300]}); "
            "check the URL, that the database exists and the server is reachable from this node, and that "
            "its driver is installed (PostgreSQL: pip install -e '.[cluster]')"
        )


def problems(executor: str, tracking_uri: str, storage: str | None) -> list[str]:
    return [
        p for p in (executor_problem(executor), tracking_problem(tracking_uri), storage_problem(storage)) if p
    ]
