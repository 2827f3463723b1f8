"""The `hypermask` subcommands, one function each (cmd_NAME), and what they share: which
experiment, device, MLflow store and results folder a command means.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hypermask.config import (
    ConfigError,
    experiment_config,
    experiment_name,
    read_params,
    split_name,
)


def experiment_of(args: argparse.Namespace) -> str:
    """BENCHMARK [--method M] (or BENCHMARK/METHOD) -> BENCHMARK/METHOD; HyperMask by default."""
    benchmark, method = split_name(args.experiment)
    given = getattr(args, "method", None)
    if given and "/" in args.experiment and given != method:
        raise ConfigError(f"{args.experiment}: names method {method!r} but --method says {given!r}")
    return experiment_name(benchmark, given or method)


def _device(name: str | None):
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name}: not a device name (cpu, cuda or cuda:N)") from None
    if dev.type == "cpu":
        return name
    if dev.type != "cuda":
        raise ConfigError(f"--device {name}: hypermask runs on cpu or cuda[:N], not {dev.type}")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    index: int | None = dev.index  # None for a bare "cuda" (torch types it int)
    if index is not None and index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        )
    return name


def _tracking_uri(args: argparse.Namespace, params) -> str | None:
    """The run's MLflow store (tracking.resolve_uri's order), said on stderr with its source."""
    from hypermask.tracking.store import resolve_uri, uri_source

    if getattr(args, "no_tracking", False):
        return None
    uri = resolve_uri(args.tracking_uri, params.pipeline.tracking_uri, Path(args.params).resolve().parent)
    print(
        f"hypermask: MLflow store {uri} (from {uri_source(args.tracking_uri, params.pipeline.tracking_uri)})",
        file=sys.stderr,
    )
    return uri


def _results(args: argparse.Namespace, params) -> Path:
    """--results as given (relative to the working directory, as any command-line path), else
    params.yaml's pipeline.results, relative to params.yaml's folder; either checked as a path."""
    return _output_folder(args, params, "results", "--results", args.results)


def _data_cache(args: argparse.Namespace, params) -> Path:
    """params.yaml's pipeline.data_cache, relative to params.yaml's folder."""
    return _output_folder(args, params, "data_cache", None, None)


def _output_folder(args: argparse.Namespace, params, key: str, flag: str | None, given: str | None) -> Path:
    from pydantic import TypeAdapter, ValidationError

    from hypermask.typed import OutputFolder, resolve_setting_path

    if given is not None:
        try:
            return Path(TypeAdapter(OutputFolder).validate_python(given))
        except ValidationError as e:
            raise ConfigError(f"{flag}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return Path(resolve_setting_path(getattr(params.pipeline, key), Path(args.params).resolve().parent))


def cmd_train(args: argparse.Namespace) -> int:
    params_path = Path(args.params)
    params = read_params(params_path)  # every experiment checked before any work
    overrides = None
    if args.override:
        from hypermask.config import read_overrides

        overrides = read_overrides(args.override)
    cfg = experiment_config(params, experiment_of(args), params_path, overrides, where=args.override)
    seeds = list(dict.fromkeys(args.seed))  # in the order given, each once
    unlisted = [s for s in seeds if s not in cfg.seeds]
    if unlisted and not args.any_seed:
        raise ConfigError(
            f"{params_path}: benchmarks.{cfg.benchmark}.seeds: seed {', '.join(map(str, unlisted))} is not listed "
            f"{cfg.seeds} (add it, or pass --any-seed)"
        )
    results = _results(args, params)
    if args.stage_current and not args.stage:
        raise ConfigError("--stage-current: only with --stage")
    if args.stage and not args.force:
        seeds = [s for s in seeds if not _staged_or_current(results, cfg, s, args.stage_current)]
        if not seeds:
            return 0  # before torch and MLflow are loaded
    from hypermask.data.sources import check_source_available

    check_source_available(cfg.data)
    device = _device(args.device)
    if args.threads:
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = args.threads
        if cores and threads > cores:  # results do not change with the threads; oversubscribed, only slower
            threads = cores
            print(
                f"hypermask: warning: --threads {args.threads} is more than the {cores} cores this process may "
                f"use (threads sharing a core each wait on the slowest): running with {cores}",
                file=sys.stderr,
            )
        torch.set_num_threads(threads)

    from hypermask.engine.run import run
    from hypermask.evaluation.metrics import shown
    from hypermask.tracking.tracker import Tracker

    uri = _tracking_uri(args, params)
    tracker = Tracker(enabled=uri is not None, uri=uri)
    suites = tuple(s for s in params.suites if cfg.name in params.suite_experiments(s))
    for seed in seeds:
        out = run(
            cfg,
            seed,
            results,
            device,
            tracker,
            force=args.force,
            quiet=args.quiet,
            stop_after_task=args.stop_after_task,
            repo_root=params_path.resolve().parent,
            data_cache=_data_cache(args, params),
            restart_on_change=args.restart_on_change,
            suites=suites,
            stage=args.stage,
        )
        if out is not None and not args.quiet:
            print(
                f"{cfg.name} seed {seed}: average accuracy {out['average_accuracy']:.2f}%  BWT {shown(out['bwt'])}  "
                f"FWT {shown(out['fwt'])}  forgetting {shown(out['forgetting'])}  "
                f"({out['seconds_per_iteration'] * 1000:.1f} ms/iteration, {out['wall_seconds']:.0f} s wall)"
            )
    return 0


def _staged_or_current(results: Path, cfg, seed: int, stage_current: bool) -> bool:
    """`train --stage`: whether a seed has nothing to train, its outputs (final or staged)
    holding the settings `cfg` gives now; with `stage_current`, final outputs are staged too,
    as hard links (records/staging.py says when). Staged outputs of other settings are removed
    (the seed trains again; the final ones are its own job's to replace)."""
    import shutil

    from hypermask.records.runs import read_metrics, run_dir, stale_keys
    from hypermask.records.staging import stage_copy

    paths = run_dir(results, cfg.name, seed)
    for where in (paths.staged(), paths):
        metrics, _ = read_metrics(where, cfg.name, seed)
        if metrics is not None and not stale_keys(metrics, cfg):
            if where == paths and stage_current:
                stage_copy(paths.root)
            print(
                f"{where.metrics}: finished with these settings; nothing to do"
                + (" (staged again for its job)" if where == paths and stage_current else "")
            )
            return True
    if paths.staged().out.exists():
        shutil.rmtree(paths.staged().out)
    return False


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hypermask.engine.posthoc import evaluate_run
    from hypermask.tracking.tracker import Tracker

    params = read_params(args.params)
    cfg = experiment_config(params, experiment_of(args), args.params)
    uri = _tracking_uri(args, params)
    out = evaluate_run(
        cfg,
        args.seed,
        _results(args, params),
        _device(args.device),
        args.setting,
        Tracker(uri is not None, uri),
        _data_cache(args, params),
    )
    if args.setting == "til":
        print(
            f"{cfg.name} seed {args.seed}: TIL rows after tasks {out['after_task']}; largest difference to "
            f"metrics.json {out['max_abs_difference_to_metrics_json']:.4f}"
        )
    else:
        finals = {k: v for k, v in out.items() if k.startswith("final_")}
        print(
            f"{cfg.name} seed {args.seed} {args.setting}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in finals.items())
        )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from hypermask.data.prepared import prepare

    params = read_params(args.params)  # the pipeline's first job: every experiment checked
    cfg = experiment_config(params, experiment_of(args), args.params)
    from hypermask.data.sources import check_source_available

    check_source_available(cfg.data)
    out = prepare(cfg.data, _data_cache(args, params))
    print(f"{cfg.data.source}: prepared {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from hypermask.sweep import run_sweep

    params = read_params(args.params)
    res = run_sweep(
        params,
        experiment_of(args),
        _results(args, params),
        _device(args.device),
        _tracking_uri(args, params),
        n_trials=args.n_trials,
        quiet=True,
        data_cache=_data_cache(args, params),
        outputs=not args.worker,
    )
    if args.worker:
        print(f"{experiment_of(args)}: the study holds its budget of trials ({res['n_finished']} finished)")
        return 0
    print(
        f"{experiment_of(args)}: best validation accuracy {res['best_value']:.2f}% with {res['best_params']} "
        f"({res['n_complete']} complete trials)"
    )
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from hypermask.reporting.tables import write_suite

    params = read_params(args.params)
    suites = args.suite or ([params.suite] if params.suite else [])
    for suite in suites:
        if suite not in params.suites:
            raise ConfigError(f"{args.params}: suites: unknown suite {suite!r}")
        df = write_suite(params, suite, _results(args, params), _tracking_uri(args, params))
        print(
            f"{suite}: {len(df)} experiments -> {_results(args, params) / 'tables' / suite}.{{csv,md,tex,html}}"
        )
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from hypermask.reporting.claims import check
    from hypermask.reporting.tables import read_suite_csv

    params = read_params(args.params)
    csv = _results(args, params) / "tables" / f"{args.suite}.csv"
    try:
        df = read_suite_csv(_results(args, params), args.suite)
    except (OSError, ValueError):
        raise ConfigError(
            f"{csv}: no table; run `hypermask tables {args.suite}` (or the pipeline) first"
        ) from None
    permuted = {  # the axes' derived benchmarks included
        b
        for b in params.benchmark_names()
        if (params.benchmark_settings(b).get("data") or {}).get("scenario") == "permuted"
    }
    results = check(df, permuted)
    for ok, what in results:
        print(f"{'note' if ok is None else 'ok  ' if ok else 'FAIL'} {what}")
    claims = [ok for ok, _ in results if ok is not None]
    failed = sum(not ok for ok in claims)
    print(f"{csv}: {len(claims) - failed} of {len(claims)} claims hold")
    return 1 if failed else 0


def cmd_readme(args: argparse.Namespace) -> int:
    from hypermask.reporting import readme

    params = read_params(args.params)
    results = _results(args, params)
    paths = [Path(args.readme)] if args.readme else readme.pages(Path(args.params).resolve().parent)
    if not args.check:
        for page in readme.update(paths, args.suite, results):
            print(f"{page}: the {args.suite} blocks now hold {results / 'tables' / args.suite}.md")
        return 0
    problems = readme.check(paths, args.suite, results, args.tolerance)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(
            f"hypermask: error: the pages do not say what the {args.suite} suite produced here (tolerance "
            f"{args.tolerance} points); if this machine is right, run `hypermask readme {args.suite}`",
            file=sys.stderr,
        )
        return 1
    print(
        f"{', '.join(str(p) for p, _ in readme.blocks(paths, args.suite))}: the {args.suite} blocks agree with "
        f"{results / 'tables' / args.suite}.csv (within {args.tolerance} points)"
    )
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Every generated block of README.md and docs/*.md: the methods table (the registry), the
    speed and timing blocks (bench/results/*.json), and with --suite a suite's result blocks
    (results/tables/SUITE.*). --check: exit 1 where a page differs from its sources."""
    from hypermask.records.storage import atomic_write_text
    from hypermask.reporting import readme

    params = read_params(args.params)
    paths = readme.pages(Path(args.params).resolve().parent)
    new = readme.render_pages(paths, params)
    stale = [p for p, text in new.items() if text != p.read_text()]
    problems = []
    for suite in args.suite:
        if args.check:
            problems += readme.check(paths, suite, _results(args, params), args.tolerance)
        else:
            readme.update(paths, suite, _results(args, params))
    if args.check:
        for p in stale:
            print(f"{p}: a generated block differs from its source (run `hypermask docs`)", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        if stale or problems:
            return 1
        print(f"{len(paths)} pages: every generated block agrees with its source")
        return 0
    for p in stale:
        atomic_write_text(p, new[p])
        print(f"{p}: generated blocks rewritten")
    return 0


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    from hypermask.pipeline.plan import Plan

    out_dir = os.path.dirname(os.path.abspath(args.output)) if args.output else "."
    if args.studies:  # its jobs run where params.yaml is (the repository), whatever the file's folder
        root = os.path.dirname(os.path.abspath(args.params))
        plan = Plan.from_file(args.params, args.suite, jobs_dir=root)
        text = plan.dvc_yaml(studies=True, wdir=os.path.relpath(root, out_dir))
    else:
        text = Plan.from_file(args.params, args.suite, jobs_dir=out_dir).dvc_yaml()
    if args.output:
        from hypermask.records.storage import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from hypermask.config import ParamsFile

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "params.yaml of hypermask (generated by `hypermask schema` from hypermask/config/)",
        **ParamsFile.model_json_schema(by_alias=True),
    }
    sys.stdout.write(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    params = read_params(args.params)
    names = params.experiments()
    configs = {n: experiment_config(params, n, args.params) for n in names}
    if args.override:  # as `train --override` reads it: the experiments named, else every one
        from hypermask.config import read_overrides

        overrides = read_overrides(args.override)
        for n in args.experiment or names:
            name = n if "/" in n else experiment_name(n, "hypermask")
            experiment_config(params, name, args.params, overrides, where=args.override)
    if args.data:
        from hypermask.data.sources import check_source_available

        for cfg in configs.values():
            if args.experiment and cfg.benchmark not in args.experiment and cfg.name not in args.experiment:
                continue
            check_source_available(cfg.data)
    print(
        f"{args.params}: {len(params.benchmarks)} benchmarks"
        + (f" (and {len(params.axis_points)} points of suite axes)" if params.axis_points else "")
        + f", {len(params.methods)} methods, "
        f"{len(configs)} experiments of {len(params.suites)} suites valid"
    )
    if args.connect:
        from hypermask.pipeline.preflight import storage_problem, tracking_problem
        from hypermask.tracking.store import resolve_uri

        uri = resolve_uri(None, params.pipeline.tracking_uri, Path(args.params).resolve().parent)
        found = [p for p in (tracking_problem(uri), storage_problem(params.sweeps.storage)) if p]
        if found:
            raise ConfigError("\n".join(found))
        print(
            f"MLflow store {uri} and sweeps.storage {params.sweeps.storage or '(SQLite per study)'}: connected"
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    params = read_params(args.params)
    for name in params.benchmarks:
        cfg = experiment_config(params, name, args.params)
        print(
            f"benchmark {name:28s} {cfg.data.source}/{cfg.data.scenario} x{cfg.data.n_tasks} {cfg.target.kind}  "
            f"seeds {cfg.seeds}"
        )
    for name, m in params.methods.items():
        print(f"method    {name:28s} {m.description}")
    for suite, s in params.suites.items():
        print(
            f"suite     {suite:28s} {' '.join(s.benchmarks)} x {' '.join(s.methods)}"
            + (f" (without {' '.join(s.exclude)})" if s.exclude else "")
            + (
                f" (not implemented for their targets: {' '.join(params.unsupported(suite))})"
                if params.unsupported(suite)
                else ""
            )
        )
    return 0
