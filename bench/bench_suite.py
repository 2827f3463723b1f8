"""A suite from nothing, as a new user runs it: a fresh `git clone` of the committed HEAD, its
own virtual environment, then `snakemake --cores N all_tables --config suite=S`, timed; as JSON.

The clone gets the README's setup (`python3 -m venv .venv`, `pip install -c requirements.lock
-e .`), timed apart; the wall time is the pipeline's alone, from data preparation to the
tables. The JSON adds each run's own wall time and seconds per iteration (its metrics.json)
and the suite's table, so a figure can be traced to the runs behind it.

    python bench/bench_suite.py --suite fmnist --cores 2 > bench/results/speed_suite.json

`--start-up REV`: the start-up share of the default suite (issue: suites not dominated by
process start-up), side by side: the suite from nothing in a clone of REV, then in a clone of
HEAD, one after the other; for each, the runs' own seconds (metrics.json's wall_seconds, from
the data loaded to the outputs written) against the cores' wall time, and the processes the
pipeline started:

    python bench/bench_suite.py --start-up 761b8d7 --cores 2 > bench/results/speed_startup.json

`--readme`: the README's two commands instead. The setup installs `.[test]`, the pipeline is
`snakemake --cores N all_tables` (params.yaml's suite), then the tests (`python -m pytest -q`)
and the fast lane (`-m "not slow"`) run in the clone, each timed (the README's two-commands
section renders this file):

    python bench/bench_suite.py --readme --cores 2 > bench/results/readme_commands.json

Nothing else should run meanwhile (two CPU-bound processes on 2 cores slow each other down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command; its wall seconds and output; on failure exit with the end of its output."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {out.returncode}\n{out.stdout[-3000:]}")
    return time.perf_counter() - t0, out.stdout


def pytest_summary(output: str) -> str:
    """pytest's last line, e.g. "177 passed, 4 skipped, 2 warnings in 666.39s (0:11:06)"."""
    return output.strip().splitlines()[-1].strip("= ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="fmnist")
    ap.add_argument(
        "--readme", action="store_true", help="the README's two commands (see above); --suite is ignored"
    )
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR", help="clone into DIR and keep it (default: a temporary folder)")
    ap.add_argument("--start-up", metavar="REV", help="the default suite at REV, then at HEAD (see above)")
    a = ap.parse_args()
    if a.start_up:
        return start_up(a.start_up, a.cores)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(a.keep) if a.keep else Path(tmp) / "clone"
        if clone.exists():
            sys.exit(f"--keep: {clone} exists; give a new folder")
        sh(["git", "clone", "-q", str(ROOT), str(clone)], cwd=ROOT)
        venv = clone / ".venv" / "bin"
        setup = sh([sys.executable, "-m", "venv", ".venv"], cwd=clone)[0]
        setup += sh(
            [
                str(venv / "pip"),
                "install",
                "-q",
                "-c",
                "requirements.lock",
                "-e",
                ".[test]" if a.readme else ".",
            ],
            cwd=clone,
        )[0]
        env = {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("VIRTUAL_ENV", None)
        params = yaml.safe_load((clone / "params.yaml").read_text())
        suite = params["suite"] if a.readme else a.suite
        cmd = ["snakemake", "--cores", str(a.cores), "all_tables"] + (
            [] if a.readme else ["--config", f"suite={suite}"]
        )
        wall = sh([str(venv / "snakemake"), *cmd[1:]], cwd=clone, env=env)[0]
        runs = defaultdict(list)
        for f in sorted((clone / "results" / "runs").glob("*/*/seed_*/metrics.json")):
            m = json.loads(f.read_text())
            bench, method, seed = f.parts[-4:-1]
            runs[f"{bench}/{method}"].append(
                {
                    "seed": int(seed.removeprefix("seed_")),
                    "wall_seconds": m["wall_seconds"],
                    "seconds_per_iteration": m["seconds_per_iteration"],
                }
            )
        table = (clone / "results" / "tables" / f"{suite}.md").read_text()
        tests = {}  # after the pipeline's outputs are read
        if a.readme:
            for name, extra, shown in (
                ("tests", [], "python -m pytest -q"),
                ("fast_lane", ["-m", "not slow"], 'python -m pytest -q -m "not slow"'),
            ):
                seconds, output = sh([str(venv / "python"), "-m", "pytest", "-q", *extra], cwd=clone, env=env)
                tests[name] = {
                    "command": shown,
                    "wall_seconds": round(seconds, 1),
                    "summary": pytest_summary(output),
                }
    print(
        json.dumps(
            {
                "machine": describe(),
                "commit": commit,
                "suite": suite,
                "setup_seconds": round(setup, 1),
                "command": " ".join(cmd),
                "pipeline_threads": params["pipeline"]["threads"],
                "wall_seconds": round(wall, 1),
                **({"tests": tests} if tests else {}),
                "runs": dict(runs),
                "job_seconds": {k: round(sum(r["wall_seconds"] for r in v), 1) for k, v in runs.items()},
                "table": table,
            },
            indent=2,
        )
    )


def suite_from_nothing(rev: str, cores: int, tmp: Path) -> dict:
    """The default suite (`snakemake --cores N all_tables`) in a fresh clone of `rev`, with its own
    environment (not timed); the pipeline's wall time, the runs' own seconds and the jobs."""
    clone = tmp / rev
    sh(["git", "clone", "-q", str(ROOT), str(clone)], cwd=ROOT)
    sh(["git", "checkout", "-q", rev], cwd=clone)
    commit = sh(["git", "rev-parse", "HEAD"], cwd=clone)[1].strip()
    venv = clone / ".venv" / "bin"
    sh([sys.executable, "-m", "venv", ".venv"], cwd=clone)
    sh([str(venv / "pip"), "install", "-q", "-c", "requirements.lock", "-e", "."], cwd=clone)
    env = {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    wall = sh([str(venv / "snakemake"), "--cores", str(cores), "all_tables"], cwd=clone, env=env)[0]
    runs = [
        json.loads(f.read_text())
        for f in sorted((clone / "results" / "runs").glob("*/*/seed_*/metrics.json"))
    ]
    run_seconds = sum(m["wall_seconds"] for m in runs)
    jobs = defaultdict(int)
    for f in (clone / "benchmarks").rglob("*.tsv"):
        jobs[f.relative_to(clone / "benchmarks").parts[0] + ("_seeds" if f.name == "seeds.tsv" else "")] += 1
    return {
        "commit": commit,
        "wall_seconds": round(wall, 1),
        "runs": len(runs),
        "run_seconds": round(run_seconds, 1),
        "in_run_share": round(run_seconds / (cores * wall), 3),
        "jobs": dict(sorted(jobs.items())),
        "seed_jobs_adopting": sum(
            1 for f in (clone / "logs" / "train").rglob("seed_*.log") if "outputs adopted" in f.read_text()
        ),
    }


def start_up(rev: str, cores: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    with tempfile.TemporaryDirectory() as tmp:
        sides = [suite_from_nothing(r, cores, Path(tmp)) for r in (rev, "HEAD")]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    print(
        json.dumps(
            {
                "machine": describe(),
                "suite": params["suite"],
                "cores": cores,
                "command": f"snakemake --cores {cores} all_tables",
                "before": sides[0],
                "after": sides[1],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
