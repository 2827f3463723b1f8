"""The shared pieces of a side-by-side verification against a method's official code (issue 41).

A verification script (bench/verify/verify_METHOD.py) runs the authors' code from a checkout the
user names on the command line and `hypermask train` on the same configuration, 3 seeds a side
by default, and writes one JSON under bench/results/ (verify_METHOD.json) that `hypermask docs`
renders into docs/methods.md ("Verified against the authors' code"). Nothing of the official
code is committed here: a script copies the checkout into a work folder, applies its listed
edits there (compatibility and configuration only, each an exact text replacement that must
match once) and runs the copy.

The pieces:
- `check_checkout(path, commit)`: the checkout's HEAD is the pinned commit (or the files the
  run uses have that commit's blob ids, for a checkout without .git), else a clear exit;
- `Edit` and `copy_with_edits`: the edited copy and the list of edits for the JSON;
- `run_ours(benchmark, method, seed, overrides)`: `hypermask train` in a temporary results folder
  (no MLflow), its final average accuracy, BWT and accuracy matrix;
- `summary_of(runs)`: mean and sample std of a side's seeds;
- `verdict(official, ours)`: Welch's two-sided t-test on the seeds' final average accuracies
  (scipy); the two agree when p >= 0.05, i.e. the means differ by no more than the seeds'
  spread explains;
- `write_result(path, record)`: the JSON, written atomically.

The JSON (one per method):
{"method": "hnet", "official": {"repo": "owner/name", "commit": "...", "paper": "..."},
 "status": "verified" | "not_run", "why": "... (not_run only)",
 "edits": [{"file": ..., "why": ...}, ...],
 "rows": [{"benchmark": "fmnist_permuted", "configuration": "one line", "differences": ["...", ...],
           "official": {"seeds": [...], "average_accuracy": [...], "bwt": [...]},
           "ours": {"seeds": [...], "average_accuracy": [...], "bwt": [...], "overrides": {...}},
           "verdict": {...}}],
 "machine": {...}, "command": "..."}
Accuracies in percent (0-100), as metrics.json has them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
ALPHA = 0.05


def fail(message: str) -> None:
    """A clear message and exit status 2 (bad input: a checkout, a path)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def git_head(path: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def git_blob(path: Path) -> str:
    out = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def check_checkout(
    path: str | Path, commit: str, blobs: dict[str, str] | None = None, allow_modified: bool = False
) -> Path:
    """The checkout at `path` is the official code at `commit` (a prefix of its sha): its git HEAD,
    or, without .git, the blob ids of `blobs` (relative path -> blob sha). Exits 2 otherwise."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        fail(f"official checkout {root} is not a directory")
    head = git_head(root)
    if head is not None and not head.startswith(commit) and not allow_modified:
        fail(f"official checkout {root} is at {head[:10]}, not {commit} (--allow-modified runs it anyway)")
    if head is None and not allow_modified:
        if not blobs:
            fail(f"official checkout {root} is not a git checkout and no blob ids are known to check it")
        for rel, sha in blobs.items():
            f = root / rel
            if not f.is_file():
                fail(f"official checkout {root}: {rel} is missing")
            if git_blob(f) != sha:
                fail(
                    f"official checkout {root}: {rel} differs from {commit}'s (--allow-modified runs it anyway)"
                )
    return root


@dataclass(frozen=True)
class Edit:
    """An exact text replacement in one file of the copy, with its reason (compatibility or
    configuration); `old` must occur exactly `count` times."""

    file: str
    old: str
    new: str
    why: str
    count: int = 1


def copy_with_edits(src: Path, dst: Path, edits: list[Edit]) -> list[dict]:
    """A fresh copy of the checkout (without .git) at dst with the edits applied; their list
    for the JSON. Exits 2 where an edit does not match (another commit's file)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git"))
    done = []
    for e in edits:
        f = dst / e.file
        text = f.read_text()
        n = text.count(e.old)
        if n != e.count:
            fail(f"edit of {e.file} ({e.why}): its text occurs {n} times, expected {e.count}")
        f.write_text(text.replace(e.old, e.new))
        done.append({"file": e.file, "why": e.why, "old": e.old, "new": e.new})
    return done


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run_ours(
    benchmark: str,
    method: str,
    seed: int,
    overrides: dict | None = None,
    threads: int = 1,
    log: Path | None = None,
) -> dict:
    """`hypermask train BENCHMARK --method METHOD --seed SEED` with the overrides (dotted keys, e.g.
    {"hnet.beta": 0.05, "train.iterations": 200}) in an --override file, in a temporary results
    folder without tracking; the run's final figures."""
    hypermask = Path(sys.executable).parent / "hypermask"
    if not hypermask.exists():  # another interpreter (an environment layered on the project's)
        hypermask = Path(shutil.which("hypermask") or ROOT / ".venv" / "bin" / "hypermask")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(hypermask),
            "train",
            benchmark,
            "--method",
            method,
            "--seed",
            str(seed),
            "--quiet",
            "--threads",
            str(threads),
            "--results",
            tmp,
            "--no-tracking",
        ]
        if overrides:
            (Path(tmp) / "override.yaml").write_text(json.dumps(overrides))  # JSON is YAML
            cmd += ["--override", str(Path(tmp) / "override.yaml")]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=thread_env(threads))
        wall = time.perf_counter() - t0
        if log is not None:
            with open(log, "a") as fh:
                fh.write(f"$ {' '.join(cmd)}\n{out.stdout}\n{out.stderr}\n")
        if out.returncode != 0:
            raise SystemExit(f"hypermask train failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
        m = json.loads(
            (Path(tmp) / "runs" / benchmark / method / f"seed_{seed}" / "metrics.json").read_text()
        )
    return {
        "seed": seed,
        "average_accuracy": m["average_accuracy"],
        "bwt": m["bwt"],
        "accuracy_matrix": m["accuracy_matrix"],
        "classil": m.get("classil"),
        "wall_seconds": round(wall, 1),
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std


def summary_of(runs: list[dict]) -> dict:
    """A side's record: its seeds, their final average accuracies and BWTs, mean and sample std."""
    acc = [r["average_accuracy"] for r in runs]
    bwt = [r["bwt"] for r in runs if r.get("bwt") is not None]
    m, s = mean_std(acc)
    out = {"seeds": [r["seed"] for r in runs], "average_accuracy": acc, "bwt": bwt, "mean": m, "std": s}
    if bwt:
        out["bwt_mean"], out["bwt_std"] = mean_std(bwt)
    return out


def verdict(official: list[float], ours: list[float]) -> dict:
    """Welch's two-sided t-test of the two sides' final average accuracies over their seeds: they
    agree when p >= ALPHA. With identical values on both sides the test is undefined: agree."""
    from scipy import stats

    mo, so = mean_std(official)
    mu, su = mean_std(ours)
    if len(official) < 2 or len(ours) < 2:
        p = float("nan")
    elif so == 0 and su == 0:
        p = 1.0 if mo == mu else 0.0
    else:
        p = float(stats.ttest_ind(official, ours, equal_var=False).pvalue)
    agree = bool(p >= ALPHA) if not math.isnan(p) else None
    return {
        "test": "Welch's two-sided t-test over seeds (scipy.stats.ttest_ind, equal_var=False)",
        "alpha": ALPHA,
        "difference": mu - mo,
        "p": p,
        "agree": agree,
    }


def write_result(path: str | Path, record: dict) -> None:
    """The JSON at path, written atomically (a temporary file in the same folder, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def emit(record: dict, out: str | Path | None) -> None:
    """The record written atomically to `out` (said on stderr), or printed where out is None."""
    if out:
        write_result(out, record)
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(json.dumps(record, indent=2))


def machine() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from machine import describe

    return describe(probe_mkl=False)
