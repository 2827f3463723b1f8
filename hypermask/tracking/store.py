"""Which MLflow store a run writes to (--tracking-uri, params.yaml, $MLFLOW_TRACKING_URI, the
repository's SQLite file; no password in any of them), the SQLite store built once under a
lock, and the user runs are recorded under.
"""

from __future__ import annotations

import os
from pathlib import Path


class TrackingError(RuntimeError):
    """The tracking store cannot be opened or written before training starts; names the URI."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local SQLite URI (sqlite:///rel or sqlite:////abs), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def _build_sqlite_store(db: Path) -> None:
    """A new store built in a temporary file and renamed into place: a process killed during
    MLflow's schema creation (seconds of migrations) leaves no half-built store behind."""
    import uuid

    from mlflow.tracking import MlflowClient

    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.tmp")  # a new name: MLflow caches stores by URI
    try:
        MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
        _dispose_engines(f"sqlite:///{tmp}")
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def _dispose_engines(uri: str) -> None:
    """Close the SQLite connections MLflow caches for `uri` before its file is renamed (two
    open paths to one SQLite file in one process can drop each other's POSIX locks). MLflow
    has no public call for this; where its private cache moved, the connections stay open
    to a file no writer uses, which is harmless."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store

        _get_store(uri).engine.dispose()
    except Exception:
        pass


def prepare_store(uri: str):
    """An MlflowClient on `uri`, with the store created or migrated first by exactly one process.

    MLflow creates and migrates an SQLite store on first use; processes that start together
    on a missing file all run the migration on it and leave it half-migrated (every later
    run then fails). Creating the store under a file lock beside the database makes the first
    process build it and the others find it built."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    try:
        if db is None:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # a server that is down fails here, not mid-run
            return client
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".init.lock", timeout=600):
            if not db.exists():
                _build_sqlite_store(db)
                _dispose_engines(uri)  # this process may hold connections to a removed file
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # migrates an older schema, under the lock
            return client
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrackingError(
            f"MLflow store {uri}: cannot be opened ({msg[:300]}); fix it, point MLFLOW_TRACKING_URI "
            "(or pipeline.tracking_uri, --tracking-uri) elsewhere, or pass --no-tracking"
        ) from None


def run_user() -> str:
    """Who a run belongs to, as MLflow's fluent API records it: the tracking user (a server's
    login, MLFLOW_TRACKING_USERNAME or ~/.mlflow/credentials), else the account's name."""
    import getpass

    from mlflow.utils.credentials import read_mlflow_creds

    try:
        return read_mlflow_creds().username or getpass.getuser()
    except Exception:  # no account name (a container without a passwd entry)
        return "unknown"


def uri_source(given: str | None, configured: str | None) -> str:
    """Where resolve_uri's choice came from, in words (printed by each run and the workflow)."""
    if given:
        return "--tracking-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    return (
        "pipeline.tracking_uri in params.yaml"
        if configured
        else "the default: mlflow.db at the repository root"
    )


def resolve_uri(given: str | None, configured: str | None, root: Path) -> str:
    """The MLflow store, in this order: --tracking-uri, $MLFLOW_TRACKING_URI (the pipeline exports
    one to every job), params.yaml's pipeline.tracking_uri, an SQLite file at the repository root
    (as an absolute path, so every job and node names the same store)."""
    from hypermask.config.credentials import embedded_password_problem

    env = os.environ.get("MLFLOW_TRACKING_URI")
    for where, uri in (("--tracking-uri", given), ("$MLFLOW_TRACKING_URI", env)):
        problem = embedded_password_problem(where, uri)
        if problem:
            raise TrackingError(problem)
    return given or env or configured or f"sqlite:///{(root / 'mlflow.db').resolve()}"
