"""`hypermask` command line: train one (benchmark, method, seed), sweep, aggregate tables, check
params.yaml, list benchmarks, methods and suites (commands.py; arguments: parser.py; the
process: process.py). `main` runs one command and turns input and environment problems into
one message and exit 2.
"""

from __future__ import annotations

import sys

from hypermask.cli.parser import build_parser
from hypermask.config import (
    ConfigError,
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hypermask.engine.loop import TrainingError
    from hypermask.records.runs import RunLockError
    from hypermask.records.storage import StorageError
    from hypermask.tracking.store import TrackingError

    try:
        from hypermask.environment import read_environment

        read_environment()  # the HYPERMASK_* variables, as params.yaml: exit 2 naming a bad one
        return args.func(args)
    except (ConfigError, TrainingError, StorageError, TrackingError, RunLockError) as e:
        print(f"hypermask: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an unwritable results folder, a full disk: name the path, no traceback
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f) or "a file"
        print(f"hypermask: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hypermask: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
