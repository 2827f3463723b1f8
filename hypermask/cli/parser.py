"""The `hypermask` command's arguments: one subcommand per command of commands.py."""

from __future__ import annotations

import argparse

from hypermask.cli.commands import (
    cmd_check,
    cmd_claims,
    cmd_docs,
    cmd_dvc_yaml,
    cmd_evaluate,
    cmd_list,
    cmd_prepare,
    cmd_readme,
    cmd_schema,
    cmd_sweep,
    cmd_tables,
    cmd_train,
)
from hypermask.config import (
    MAX_SEED,
)
from hypermask.evaluation.settings import SETTINGS


def _count(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum] (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is above {maximum}")
        return value

    return parse


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Where results go, on which device, and where they are tracked (train, evaluate, sweep)."""
    p.add_argument("--results", default=None, help="output root (default: pipeline.results in params.yaml)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument(
        "--tracking-uri", default=None, help="MLflow URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hypermask", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="the experiment file (default: ./params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train", help="train one (benchmark, method, seed); resumes; a finished run is left alone"
    )
    t.add_argument("experiment", metavar="BENCHMARK", help="a benchmark (or BENCHMARK/METHOD)")
    t.add_argument("--method", default=None, help="the method (default: hypermask)")
    t.add_argument(
        "--seed",
        type=_count(0, MAX_SEED),
        required=True,
        nargs="+",
        help="one seed, or several trained one after another in this process",
    )
    _add_run_options(t)
    t.add_argument("--threads", type=_count(1), default=None, help="torch CPU threads")
    t.add_argument("--force", action="store_true", help="train again even if the run finished")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-task lines")
    t.add_argument("--any-seed", action="store_true", help="allow a seed not listed in params.yaml")
    t.add_argument(
        "--override", default=None, help="YAML of dotted keys to set (e.g. a sweep's best_params.yaml)"
    )
    t.add_argument(
        "--restart-on-change",
        action="store_true",
        help="checkpoints of other settings are set aside and training starts over (pipelines)",
    )
    t.add_argument(
        "--stage",
        action="store_true",
        help="pipelines: write each seed's outputs under seed_N/staged/ for that seed's own job to "
        "adopt, and skip a seed whose outputs (final or staged) hold the current settings",
    )
    t.add_argument(
        "--stage-current",
        action="store_true",
        help="with --stage: also stage (as hard links) the outputs of a seed that holds the current "
        "settings, for a pipeline that reruns every seed's job after this one",
    )
    t.add_argument("--stop-after-task", type=_count(1), default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a finished run's checkpoints in a setting (no retraining)")
    ev.add_argument("experiment", metavar="BENCHMARK", help="a benchmark (or BENCHMARK/METHOD)")
    ev.add_argument("--method", default=None, help="the method (default: hypermask)")
    ev.add_argument("--seed", type=_count(0, MAX_SEED), required=True)
    ev.add_argument("--setting", choices=list(SETTINGS), required=True)
    _add_run_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("prepare", help="verify an experiment's raw data and write its prepared cache")
    pr.add_argument("experiment", metavar="BENCHMARK", help="a benchmark (or BENCHMARK/METHOD)")
    pr.add_argument("--method", default=None, help="the method (default: hypermask)")
    pr.set_defaults(func=cmd_prepare)

    sw = sub.add_parser("sweep", help="run (or resume) the Optuna study of an experiment")
    sw.add_argument("experiment", metavar="BENCHMARK", help="a benchmark (or BENCHMARK/METHOD)")
    sw.add_argument("--method", default=None, help="the method (default: hypermask)")
    sw.add_argument("--n-trials", type=_count(1), default=None, help="override the budget (sweeps.n_trials)")
    sw.add_argument(
        "--worker",
        action="store_true",
        help="one of several processes sharing the study: run trials until the budget is taken, "
        "write no outputs (a later call without --worker writes them)",
    )
    _add_run_options(sw)
    sw.set_defaults(func=cmd_sweep)

    tb = sub.add_parser("tables", help="aggregate a suite's runs into tables and figures")
    tb.add_argument("suite", nargs="*", help="default: the params file's `suite`")
    tb.add_argument("--results", default=None)
    tb.add_argument(
        "--no-tracking",
        action="store_true",
        help="write no parent runs to MLflow (the tables and figures only)",
    )
    tb.add_argument(
        "--tracking-uri", default=None, help="MLflow URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    tb.set_defaults(func=cmd_tables)

    cl = sub.add_parser("claims", help="check a comparison suite's table against what the methods guarantee")
    cl.add_argument("suite")
    cl.add_argument("--results", default=None)
    cl.set_defaults(func=cmd_claims)

    dc = sub.add_parser("docs", help="render the generated blocks of README.md and docs/ (or --check them)")
    dc.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    dc.add_argument(
        "--suite", nargs="*", default=[], help="also these suites' result blocks (results/tables/)"
    )
    dc.add_argument("--results", default=None)
    dc.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="largest difference of a suite's mean, in percentage points (default 1.0)",
    )
    dc.set_defaults(func=cmd_docs)

    rd = sub.add_parser(
        "readme", help="copy a suite's table into README.md and docs/ (or --check that they agree)"
    )
    rd.add_argument("suite")
    rd.add_argument(
        "--readme", default=None, help="one page (default: README.md and docs/*.md beside params.yaml)"
    )
    rd.add_argument("--results", default=None)
    rd.add_argument("--check", action="store_true", help="compare instead of copying; exit 1 on a difference")
    rd.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="largest difference of a mean, in percentage points (default 1.0)",
    )
    rd.set_defaults(func=cmd_readme)

    dv = sub.add_parser("dvc-yaml", help="write dvc.yaml for a suite from params.yaml")
    dv.add_argument("--suite", default=None)
    dv.add_argument("--output", "-o", default=None)
    dv.add_argument(
        "--studies",
        action="store_true",
        help="the suite's Optuna studies instead (workflow/studies/dvc.yaml: `dvc repro` leaves them alone)",
    )
    dv.set_defaults(func=cmd_dvc_yaml)

    sc = sub.add_parser("schema", help="print the JSON schema of params.yaml")
    sc.set_defaults(func=cmd_schema)

    c = sub.add_parser("check", help="validate params.yaml (and with --data, that the raw data is there)")
    c.add_argument("--data", action="store_true")
    c.add_argument("--experiment", nargs="*", default=None)
    c.add_argument(
        "--override",
        default=None,
        help="also check this overrides file (as `train --override`) against the experiments (--experiment)",
    )
    c.add_argument(
        "--connect",
        action="store_true",
        help="also connect to the MLflow store and the sweeps' database with this environment's credentials",
    )
    c.set_defaults(func=cmd_check)

    ls = sub.add_parser("list", help="list benchmarks, methods and suites")
    ls.set_defaults(func=cmd_list)
    return p
