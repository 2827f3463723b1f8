# Shared state of the workflow: params.yaml validated (JSON schema, then hypermask's own
# checks of every experiment), and the plan of jobs, files and commands.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from hypermask.config import ConfigError, load_yaml, refuse_passwords
from hypermask.pipeline.plan import Plan
from hypermask.tracking.store import TrackingError

min_version("9.0")

PARAMS_FILE = config.get("params", "params.yaml")
try:
    refuse_passwords(dict(config), "--config")  # a password on the command line reaches ps and logs
    _RAW = load_yaml(PARAMS_FILE)  # read once per DAG build (duplicated keys refused)
    refuse_passwords(_RAW, PARAMS_FILE)  # before the schema, whose messages quote values
    validate(_RAW, schema="../schemas/params.schema.json")
    PLAN = Plan.from_file(PARAMS_FILE, config.get("suite"), raw=_RAW)  # every experiment checked
    # One tracking store for every job (and every node of a cluster), said once with its source.
    from hypermask.tracking.store import uri_source

    _STORE_SOURCE = uri_source(None, PLAN.params.pipeline.tracking_uri)
    os.environ.setdefault("MLFLOW_TRACKING_URI", PLAN.tracking_uri())
except (ConfigError, TrackingError) as _e:
    raise WorkflowError(str(_e))


envvars:
    "MLFLOW_TRACKING_URI",


wildcard_constraints:
    exp=r"[A-Za-z0-9_]+/[A-Za-z0-9_]+",  # BENCHMARK/METHOD
    seed=r"\d+",
    source=r"[a-z_0-9]+",
    worker=r"\d+",


# The staged copies of current outputs that no seed's job adopted (their seed was not a target)
# are dropped when Snakemake ends, and again before the first job of the next Snakemake (a
# killed Snakemake runs no handler): left, a later forced rerun of that seed would adopt the
# copy instead of training (hypermask.records.staging). Jobs run with --no-hooks (SLURM) never
# call this.
def _drop_unadopted_copies():
    from hypermask.records.staging import drop_copies_of_current

    for exp, seed in PLAN.runs():
        if PLAN.seeds_in_one_job(exp):
            drop_copies_of_current(PLAN.run_dir(exp, seed))


# Before the first job: sbatch where the SLURM executor needs it, the MLflow server answering,
# the sweeps' database accepting connections (hypermask.pipeline.preflight); the copies a
# killed Snakemake left staged dropped.
onstart:
    from hypermask.pipeline.preflight import problems

    print(f"hypermask: every job logs to the MLflow store {os.environ['MLFLOW_TRACKING_URI']} (from {_STORE_SOURCE})",
          file=sys.stderr)
    try:
        _cores = workflow.cores  # --cores N (WorkflowError where none was given, as on a cluster)
    except WorkflowError:
        _cores = None
    if workflow.executor_plugin.name == "local" and isinstance(_cores, int) and PLAN.params.pipeline.threads > _cores:
        print(f"hypermask: warning: pipeline.threads is {PLAN.params.pipeline.threads} but --cores {_cores}: each "
              f"job runs with {_cores} threads (Snakemake gives a job at most --cores; `hypermask train` takes at "
              "most the cores it may use)", file=sys.stderr)
    _found = problems(workflow.executor_plugin.name, os.environ["MLFLOW_TRACKING_URI"], PLAN.params.sweeps.storage)
    if _found:
        raise WorkflowError("\n".join(_found))
    _drop_unadopted_copies()


onsuccess:
    _drop_unadopted_copies()


onerror:
    _drop_unadopted_copies()
