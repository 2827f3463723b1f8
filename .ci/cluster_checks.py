"""The checks of .ci/slurm (the pipeline on a real single-node SLURM cluster).

    configure PARAMS --tracking-uri URL --storage URL --workers N
        the lines a lab edits in params.yaml (pipeline.tracking_uri, sweeps.storage, sweeps.workers)
    cancel-when CHECKPOINT COMMENT
        wait for CHECKPOINT (a task's checkpoint of a running job), then scancel the SLURM job
        whose comment (the plugin's "rule_train_wildcards_...") is COMMENT; --while-pid: the
        snakemake process, whose end stops the wait
    check --local REPO --lab CLONE ...
        every job ran under SLURM and completed, the tables equal the local run's, the cancelled
        job resumed from its checkpoint with the local run's metrics, MLflow holds one run per
        (experiment, seed) with the local store's metric rows and artifacts, and the shared
        study holds exactly its budget of trials, run by several workers.
    check-user --tracking-uri URL --user NAME
        the server is authenticated (an anonymous API request gets 401) and every run on it
        (training runs, studies, nested trials) was logged as NAME
    no-secrets --env NAME... --paths PATH... --tracking-uri URL --exclude PATH...
        the values of the environment variables NAME (passwords, a token) appear in no file
        under PATHs (Snakemake and job logs, results, DVC files, MLflow artifacts, daemon logs)
        and in no param, tag or experiment tag the server holds

Prints what it measured; exits 1 with the reason on the first failed check.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

TIMING = {"seconds_per_iteration", "wall_seconds"}  # metrics that differ between two runs


def fail(msg: str) -> None:
    print(f"cluster check failed: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg: str) -> None:
    print(f"ok: {msg}")


# ------------------------------------------------------------------ configure
def configure(a) -> None:
    path = Path(a.params)
    text = path.read_text()
    edits = [
        (r"^(  tracking_uri: )null\b", a.tracking_uri),
        (r"^(  storage: )null\b", a.storage),
        (r"^(  workers: )1\b", str(a.workers)),
    ]
    for pattern, value in edits:
        text, n = re.subn(pattern, lambda m, value=value: m.group(1) + value, text, flags=re.M)
        if n != 1:
            fail(f"{path}: expected one line matching {pattern!r}, found {n}")
    path.write_text(text)
    ok(f"{path}: tracking_uri {a.tracking_uri}, sweeps.storage {a.storage}, sweeps.workers {a.workers}")


# ------------------------------------------------------------------ cancel-when
def cancel_when(a) -> None:
    import os

    ckpt = Path(a.checkpoint)
    deadline = time.time() + 900
    while not ckpt.exists():
        try:
            os.kill(a.while_pid, 0)
        except ProcessLookupError:
            fail(f"snakemake (pid {a.while_pid}) ended before {ckpt} appeared")
        if time.time() > deadline:
            fail(f"{ckpt} did not appear in 15 min")
        time.sleep(0.2)
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True, check=True
    ).stdout
    jobs = [line.split("|") for line in out.splitlines() if line.split("|")[1] == a.comment]
    if len(jobs) != 1 or jobs[0][2] != "RUNNING":
        fail(f"expected one running SLURM job with comment {a.comment}, squeue shows {jobs}")
    subprocess.run(["scancel", jobs[0][0]], check=True)
    done = sorted(p.name for p in ckpt.parent.glob("task_*.pt"))
    ok(f"scancel {jobs[0][0]} ({a.comment}) with checkpoints {done} written")


# ------------------------------------------------------------------ check
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
LOGFILE_DUMP = re.compile(r"^Logfile [^\n]*:\n(=+)\n.*?\n\1$", re.M | re.S)  # snakemake.logging.show_logs


def check_jobs(a) -> dict[str, str]:
    """Every job of every call went to SLURM and ended COMPLETED (the cancelled one CANCELLED)."""
    submitted: dict[str, str] = {}  # SLURM job id -> rule
    for log in a.snakemake_logs:
        text = Path(log).read_text()
        # A failed (here: the cancelled) job's own SLURM log, which Snakemake prints into its log
        # (show-failed-logs, the workflow profile), holds the job step's "localrule" header: not
        # a local job of this call.
        own = LOGFILE_DUMP.sub("", text)
        local = set(re.findall(r"^localrule (\w+):", own, flags=re.M)) - {"all_tables"}
        if local:
            fail(f"{log}: rules run outside SLURM: {sorted(local)}")
        for jobid, path in SUBMITTED.findall(text):
            rule = re.search(r"/rule_(\w+)/", path)
            submitted[jobid] = rule.group(1) if rule else "?"
    states: dict[str, str] = {}
    for line in Path(a.jobcomp).read_text().splitlines():  # slurmctld's job completion log
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        states[fields["JobId"]] = fields["JobState"]
    missing = [j for j in submitted if j not in states]
    if missing:
        fail(f"SLURM jobs submitted but not in the job completion log: {missing}")
    cancelled = [j for j in submitted if states[j] == "CANCELLED"]
    bad = {j: states[j] for j in submitted if states[j] not in ("COMPLETED", "CANCELLED")}
    if bad or len(cancelled) != 1:
        fail(f"job states: {bad or 'none failed'}; cancelled: {cancelled} (expected exactly one)")
    counts = Counter(submitted.values())
    ok(
        f"{len(submitted)} SLURM jobs, all COMPLETED but the one cancelled ({cancelled[0]}): {dict(sorted(counts.items()))}"
    )
    return submitted


def table_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path) as f:
        return {(r["benchmark"], r["method"]): r for r in csv.DictReader(f)}


def check_tables(a) -> None:
    local = table_rows(Path(a.local) / f"results/tables/{a.suite}.csv")
    lab = table_rows(Path(a.lab) / f"results/tables/{a.suite}.csv")
    if local.keys() != lab.keys():
        fail(f"table rows differ: local {sorted(local)} vs cluster {sorted(lab)}")
    compared = 0
    for key, row in local.items():
        for col, value in row.items():
            if col.startswith(("ms_per_iteration", "seconds_per_iteration", "wall")):
                continue
            if lab[key][col] != value:
                fail(f"{a.suite}.csv {key} {col}: local {value!r} vs cluster {lab[key][col]!r}")
            compared += 1
    ok(
        f"results/tables/{a.suite}.csv: {len(local)} rows, {compared} values equal to the local run's (timings excluded)"
    )


def check_resume(a) -> None:
    log = Path(a.lab) / "logs/train" / Path(a.resumed).relative_to("results/runs").with_suffix(".log")
    if log.read_text().count("outputs adopted"):  # trained by the experiment's seeds job (seeds_in_one_job)
        log = log.with_name("seeds.log")
    m = re.search(r"resuming \S+ seed \d+ after task (\d+)", log.read_text())
    if not m:
        fail(f"{log}: the resubmitted job did not resume from a checkpoint:\n{log.read_text()[-2000:]}")
    local = json.loads((Path(a.local) / a.resumed / "metrics.json").read_text())
    lab = json.loads((Path(a.lab) / a.resumed / "metrics.json").read_text())
    if local["accuracy_matrix"] != lab["accuracy_matrix"]:
        fail(f"{a.resumed}: the resumed run's accuracy matrix differs from the local run's")
    ok(
        f"{a.resumed}: resubmitted, resumed after task {m[1]} (restarted at task {int(m[1]) + 1}, not 0); "
        f"accuracy matrix equal to the local run's (average accuracy {lab['average_accuracy']:.2f})"
    )


def _runs_by_dir(client, experiment: str) -> dict[str, list]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    out: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        d = r.data.tags.get("hypermask.run_dir", "")
        out.setdefault("/".join(Path(d).parts[-3:]), []).append(r)
    return out


def _history(client, run) -> dict[str, list[tuple[int, float | None]]]:
    return {
        k: sorted(
            (m.step, None if k in TIMING else m.value) for m in client.get_metric_history(run.info.run_id, k)
        )
        for k in run.data.metrics
    }


def lab_params(a):
    from hypermask.config import read_params

    return read_params(Path(a.lab) / "params.yaml")


def check_mlflow(a) -> None:
    from mlflow.tracking import MlflowClient

    from hypermask.config import experiment_config

    params = lab_params(a)
    server = MlflowClient(tracking_uri=a.tracking_uri)
    local = MlflowClient(tracking_uri=f"sqlite:///{Path(a.local).resolve() / 'mlflow.db'}")
    n_runs = n_rows = 0
    for exp in params.suite_experiments(a.suite):
        runs = _runs_by_dir(server, exp.split("/")[0])  # one MLflow experiment per benchmark
        local_runs = _runs_by_dir(local, exp.split("/")[0])
        for seed in experiment_config(params, exp).seeds:
            key = f"{exp}/seed_{seed}"
            found = runs.get(key, [])
            if len(found) != 1 or found[0].info.status != "FINISHED":
                fail(
                    f"MLflow {a.tracking_uri}: {key}: expected one FINISHED run, found "
                    f"{[(r.info.run_id, r.info.status) for r in found]}"
                )
            run = found[0]
            if not {f.path for f in server.list_artifacts(run.info.run_id)} >= {
                "metrics.json",
                "accuracy_matrix.csv",
            }:
                fail(
                    f"MLflow {key}: artifacts missing ({[f.path for f in server.list_artifacts(run.info.run_id)]})"
                )
            mine = _history(server, run)
            for k, rows in mine.items():
                if len({s for s, _ in rows}) != len(rows):
                    fail(f"MLflow {key}: metric {k} has duplicated steps")
            ref = [r for r in local_runs.get(key, []) if r.info.status == "FINISHED"]
            if not ref:
                fail(f"local store: no finished run of {key} to compare with")
            theirs = _history(local, max(ref, key=lambda r: r.info.start_time))
            if mine != theirs:
                diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
                fail(f"MLflow {key}: metric rows differ from the local store's in {diff[:5]}")
            n_runs += 1
            n_rows += sum(len(v) for v in mine.values())
    ok(
        f"MLflow server: {n_runs} runs, one per (experiment, seed), FINISHED, artifacts present; "
        f"{n_rows} metric rows, none lost or duplicated (equal to the local store's, timing values aside)"
    )


def check_study(a) -> None:
    import optuna
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=a.study, storage=a.storage)
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    benchmark, method = a.study.split("/")
    budget = lab_params(a).sweeps.study(benchmark, method).n_trials
    finished = states["COMPLETE"] + states["PRUNED"]
    if finished != budget or states["RUNNING"] or states["WAITING"]:
        fail(f"study {a.study}: {dict(states)}; expected exactly {budget} complete or pruned trials")
    if sorted(t.number for t in trials) != list(range(len(trials))):
        fail(f"study {a.study}: trial numbers not unique and contiguous")
    no_reports = [
        t.number
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.intermediate_values
    ]
    if no_reports:
        fail(f"study {a.study}: trials {no_reports} reported no intermediate value to the pruner")
    workers = Counter(t.user_attrs.get("worker") for t in trials)
    if len(workers) < 2 or None in workers:
        fail(f"study {a.study}: trials by workers {dict(workers)}; expected several SLURM jobs")
    with open(Path(a.lab) / f"results/sweeps/{a.study}/trials.csv") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(trials):
        fail(f"trials.csv has {len(rows)} rows, the study {len(trials)} trials")
    client = MlflowClient(tracking_uri=a.tracking_uri)
    exp = client.get_experiment_by_name(f"sweep_{a.study}")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    if (
        len(parents) != 1
        or len(children) != len(trials)
        or {r.data.tags["mlflow.parentRunId"] for r in children} != {parents[0].info.run_id}
    ):
        fail(
            f"MLflow sweep_{a.study}: {len(parents)} parent runs, {len(children)} nested runs for {len(trials)} trials"
        )
    ok(
        f"study {a.study} on PostgreSQL: {dict(states)} = the budget of {budget}, no trial lost or duplicated, "
        f"every trial reported to the pruner; run by {len(workers)} workers {dict(workers)}; "
        f"MLflow: 1 parent run, {len(children)} nested runs"
    )


def _all_runs(client):
    exps = client.search_experiments(max_results=1000)
    runs = [r for e in exps for r in client.search_runs([e.experiment_id], max_results=5000)]
    return exps, runs


def check_user(a) -> None:
    import urllib.error
    import urllib.request

    from mlflow.tracking import MlflowClient

    try:
        urllib.request.urlopen(
            a.tracking_uri + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=30
        )
        fail(f"{a.tracking_uri}: an unauthenticated API request was answered")
    except urllib.error.HTTPError as e:
        if e.code != 401:
            fail(f"{a.tracking_uri}: an unauthenticated API request got HTTP {e.code}, not 401")
    _, runs = _all_runs(MlflowClient(tracking_uri=a.tracking_uri))
    users = Counter(r.info.user_id for r in runs)
    if not runs or set(users) != {a.user}:
        fail(f"{a.tracking_uri}: runs by users {dict(users)}; expected every run by {a.user!r}")
    # What the server itself recorded: the authenticated creator of an experiment manages it.
    import os

    from mlflow.server import get_app_client

    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": os.environ["ADMIN_SECRET"]}
    saved = {k: os.environ.get(k) for k in admin}
    os.environ.update(admin)
    try:
        auth = get_app_client("basic-auth", tracking_uri=a.tracking_uri)
        owned = {
            e: auth.get_user_permission(a.user, "experiment", e).permission
            for e in {r.info.experiment_id for r in runs}
        }
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    if set(owned.values()) != {"MANAGE"}:
        fail(
            f"{a.tracking_uri}: {a.user!r} holds {owned} on the runs' experiments; expected MANAGE (their creator)"
        )
    ok(
        f"MLflow server authenticated: an anonymous request gets 401; all {len(runs)} runs logged as {a.user!r}, "
        f"whom the server records as the creator (MANAGE) of all {len(owned)} of their experiments"
    )


def no_secrets(a) -> None:
    import os

    from mlflow.tracking import MlflowClient

    secrets = {n: os.environ[n] for n in a.env if os.environ.get(n)}
    if len(secrets) != len(a.env):
        fail(f"no-secrets: environment variables {sorted(set(a.env) - set(secrets))} are not set")
    if any(len(v) < 12 for v in secrets.values()):
        fail("no-secrets: every secret must have at least 12 characters (no accidental matches)")
    needles = {n: v.encode() for n, v in secrets.items()}
    excluded = [Path(p).resolve() for p in a.exclude]
    n_files = n_bytes = 0
    outside: dict[Path, tuple[set[Path], set[str]]] = {}  # excluded store -> (its files, the secrets) held
    for root in a.paths:
        for path in sorted(Path(root).rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            hits = [name for name, needle in needles.items() if needle in data]
            store = next((x for x in excluded if path.resolve().is_relative_to(x)), None)
            if store is not None:
                if hits:
                    files, names = outside.setdefault(store, (set(), set()))
                    files.add(path)
                    names.update(hits)
                continue
            n_files += 1
            n_bytes += len(data)
            if hits:
                fail(f"the value of ${hits[0]} was written to {path}")
    client = MlflowClient(tracking_uri=a.tracking_uri)
    exps, runs = _all_runs(client)
    texts = [str(e.tags) for e in exps] + [str(r.data.params) + str(r.data.tags) for r in runs]
    for name, value in secrets.items():
        if any(value in t for t in texts):
            fail(f"the value of ${name} is in a param or tag on the MLflow server")
    ok(
        f"no secret ({', '.join(sorted(secrets))}) in {n_files} files ({n_bytes / 1e6:.1f} MB) under "
        f"{' '.join(a.paths)}, nor in the params and tags of {len(runs)} runs and {len(exps)} experiments on the server"
        + (
            "; held only by the stores excluded on purpose: "
            + "; ".join(
                f"{x} ({len(f)} files: {', '.join('$' + n for n in sorted(ns))})"
                for x, (f, ns) in sorted(outside.items())
            )
            if outside
            else ""
        )
    )


def check(a) -> None:
    check_jobs(a)
    check_tables(a)
    check_resume(a)
    check_mlflow(a)
    check_study(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("configure")
    c.add_argument("params")
    c.add_argument("--tracking-uri", required=True)
    c.add_argument("--storage", required=True)
    c.add_argument("--workers", type=int, required=True)
    w = sub.add_parser("cancel-when")
    w.add_argument("checkpoint")
    w.add_argument("comment")
    w.add_argument("--while-pid", type=int, required=True, help="stop waiting when this process ends")
    k = sub.add_parser("check")
    for opt in (
        "--local",
        "--lab",
        "--suite",
        "--resumed",
        "--study",
        "--tracking-uri",
        "--storage",
        "--jobcomp",
    ):
        k.add_argument(opt, required=True)
    k.add_argument("--snakemake-logs", nargs="+", required=True)
    u = sub.add_parser("check-user")
    u.add_argument("--tracking-uri", required=True)
    u.add_argument("--user", required=True)
    n = sub.add_parser("no-secrets")
    n.add_argument("--env", nargs="+", required=True, help="names of the variables holding the secrets")
    n.add_argument("--paths", nargs="+", required=True)
    n.add_argument("--exclude", nargs="*", default=[], help="the secrets' own stores (a password file)")
    n.add_argument("--tracking-uri", required=True)
    a = ap.parse_args()
    {
        "configure": configure,
        "cancel-when": cancel_when,
        "check": check,
        "check-user": check_user,
        "no-secrets": no_secrets,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
