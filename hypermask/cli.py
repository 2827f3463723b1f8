"""`hypermask` command line: train one (experiment, seed), check params.yaml, list experiments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, load_all, read_params


def _device(name: str | None):
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return name


def cmd_train(args: argparse.Namespace) -> int:
    params_path = Path(args.params)
    configs = load_all(params_path)  # every experiment checked before any work
    if args.experiment not in configs:
        raise ConfigError(f"{params_path}: unknown experiment {args.experiment!r} (known: {', '.join(sorted(configs))})")
    cfg = configs[args.experiment]
    if args.seed not in cfg.seeds and not args.any_seed:
        raise ConfigError(
            f"{params_path}: experiments.{cfg.name}.seeds: seed {args.seed} is not listed {cfg.seeds} "
            "(add it, or pass --any-seed)"
        )
    from .data import check_source_available

    check_source_available(cfg.data)
    device = _device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from .tracking import Tracker, default_tracking_uri
    from .train import run

    root = params_path.resolve().parent
    tracker = Tracker(enabled=not args.no_tracking, uri=args.tracking_uri or default_tracking_uri(root))
    out = run(
        cfg,
        args.seed,
        Path(args.results),
        device,
        tracker,
        force=args.force,
        quiet=args.quiet,
        stop_after_task=args.stop_after_task,
        repo_root=root,
    )
    if out is not None and not args.quiet:
        print(
            f"{cfg.name} seed {args.seed}: average accuracy {out['average_accuracy']:.2f}%  BWT {out['bwt']:.2f}  "
            f"FWT {out['fwt']:.2f}  forgetting {out['forgetting']:.2f}  "
            f"({out['seconds_per_iteration'] * 1000:.1f} ms/iteration, {out['wall_seconds']:.0f} s wall)"
        )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    configs = load_all(args.params)
    if args.data:
        from .data import check_source_available

        for cfg in configs.values():
            if args.experiment and cfg.name not in args.experiment:
                continue
            check_source_available(cfg.data)
    print(f"{args.params}: {len(configs)} experiments valid")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    params = read_params(args.params)
    configs = load_all(args.params)
    for name, cfg in configs.items():
        print(f"{name:28s} {cfg.method:10s} {cfg.data.source}/{cfg.data.scenario} x{cfg.data.n_tasks}  seeds {cfg.seeds}")
    for suite, names in params.suites.items():
        print(f"suite {suite}: {' '.join(names)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hypermask", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="the experiment file (default: ./params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one (experiment, seed); resumes; a finished run is left alone")
    t.add_argument("experiment")
    t.add_argument("--seed", type=int, required=True)
    t.add_argument("--results", default="results", help="output root (runs go to RESULTS/runs/EXP/seed_N)")
    t.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--force", action="store_true", help="train again even if the run finished")
    t.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    t.add_argument("--tracking-uri", default=None, help="MLflow URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-task lines")
    t.add_argument("--any-seed", action="store_true", help="allow a seed not listed in params.yaml")
    t.add_argument("--stop-after-task", type=int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("check", help="validate params.yaml (and with --data, that the raw data is there)")
    c.add_argument("--data", action="store_true")
    c.add_argument("--experiment", nargs="*", default=None)
    c.set_defaults(func=cmd_check)

    ls = sub.add_parser("list", help="list experiments and suites")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .train import TrainingError

    try:
        return args.func(args)
    except (ConfigError, TrainingError) as e:
        print(f"hypermask: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hypermask: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
