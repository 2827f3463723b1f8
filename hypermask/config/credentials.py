"""Where passwords go, and where they never go.

params.yaml is committed to git, hashed by DVC and read by every job, and a command line is
visible to every user of a node (`ps`) and lands in job logs; so a URL that the project reads
(pipeline.tracking_uri, sweeps.storage, --tracking-uri, $MLFLOW_TRACKING_URI, Snakemake's
--config) never carries a password. Credentials come from the places their own clients read:

- PostgreSQL (the Optuna study, an MLflow backend): libpq's PGPASSWORD, the password file
  ~/.pgpass (or PGPASSFILE), or a service file (PGSERVICEFILE, with `?service=NAME` in the URL);
- an MLflow tracking server with authentication: MLFLOW_TRACKING_USERNAME and
  MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment of the process that
  starts the jobs (SLURM jobs inherit it: the executor submits with --export=ALL), or MLflow's
  credentials file ~/.mlflow/credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit

WHERE_PASSWORDS_GO = (
    "PostgreSQL reads it from PGPASSWORD, ~/.pgpass (or PGPASSFILE) or a service file (PGSERVICEFILE); "
    "an MLflow server from MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
    "in the environment, or ~/.mlflow/credentials"
)


def password_in_url(url: object) -> bool:
    """Whether `url` (any value) is a URL whose user part carries a password
    (`scheme://user:password@host...`)."""
    if not isinstance(url, str) or "://" not in url:
        return False
    try:
        return urlsplit(url).password is not None
    except ValueError:  # an unparseable netloc (a bad port): the part before '@' decides
        netloc = url.split("://", 1)[1].split("/", 1)[0]
        return "@" in netloc and ":" in netloc.rsplit("@", 1)[0]


def masked(url: str) -> str:
    """`url` with its password replaced by *** (messages and logs)."""
    if not password_in_url(url):
        return url
    scheme, rest = url.split("://", 1)
    netloc, sep, path = rest.partition("/")
    userinfo, _, host = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{sep}{path}"


def embedded_password_problem(where: str, url: object) -> str | None:
    """A message naming `where` when `url` carries a password, else None."""
    if not password_in_url(url):
        return None
    return (
        f"{where}: the URL carries a password ({masked(str(url))}); no URL the project reads may carry one "
        "(params.yaml is committed to git and hashed by DVC, command lines show in ps and job logs, "
        f"MLFLOW_TRACKING_URI is copied to every job): remove it from the URL; {WHERE_PASSWORDS_GO}"
    )
