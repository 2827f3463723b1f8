"""Where a run's numbers came from: the commit, the locked software stack and the CPU (results
depend on all of them), recorded in every metrics.json and printed by the tables."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


CODE = "hypermask"  # the package whose source a run's numbers depend on


def uncommitted_code(root: Path) -> list[str] | None:
    """The package's tracked files that differ from the commit (the run's code is then not the
    commit's: its numbers cannot be reproduced from git_commit alone); None outside a git
    checkout."""
    try:
        out = subprocess.run(
            ["git", "diff", "--name-only", "HEAD", "--", CODE],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 else None


LOCK_FILE = "requirements.lock"  # the exact package versions the tests passed with


def environment_lock(root: Path) -> str:
    """SHA-256 of the repository's lock file (which software stack produced a run), or "none"."""
    import hashlib

    try:
        return hashlib.sha256((root / LOCK_FILE).read_bytes()).hexdigest()
    except OSError:
        return "none"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
