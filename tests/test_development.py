"""The development checks (docs/development.md, "Code checks"): the pre-commit hooks run the
code checks of .ci/run, the same commands with the lock's tools, so the two cannot drift; the
coverage step of .ci/run measures the fast lane against pyproject.toml's floor."""

import os
import re
import shlex
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT

TOOLS = ("ruff", "mypy")  # the code checks: lint, format, types


def _ci_checks() -> set[str]:
    """The code-check commands of .ci/run: each `&&`-joined command that starts with a tool."""
    out = set()
    for line in (ROOT / ".ci/run").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        for cmd in line.split("&&"):
            if cmd.split()[:1] and cmd.split()[0] in TOOLS:
                out.add(shlex.join(shlex.split(cmd)))
    return out


def _hooks() -> list[dict]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [h for repo in config["repos"] for h in repo["hooks"]]


def _command(hook: dict) -> str:
    return shlex.join(shlex.split(hook["entry"]) + list(hook.get("args", [])))


def test_pre_commit_hooks_are_the_ci_code_checks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [r["repo"] for r in config["repos"]] == ["local"]  # the venv's tools, no download
    hooks = _hooks()
    for h in hooks:
        # the environment's executable, on the whole tree as CI runs it (no file list appended)
        assert h["language"] == "system" and h["pass_filenames"] is False, h["id"]
    commands = {_command(h) for h in hooks}
    ci = _ci_checks()
    assert ci, ".ci/run runs no code check"
    assert ci <= commands, f"in .ci/run but no pre-commit hook: {ci - commands}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # mypy's hook can run only once pyproject.toml configures what it checks; from then on it
    # must be a CI check too
    pending = set() if "mypy" in pyproject.get("tool", {}) else {"mypy"}
    assert commands - ci <= pending, f"pre-commit hooks that .ci/run does not run: {commands - ci - pending}"


def test_the_hooks_tools_are_the_locked_ones():
    lock = (ROOT / "requirements.lock").read_text()
    for h in _hooks():
        tool = shlex.split(h["entry"])[0]
        assert re.search(rf"^{tool}==\S+$", lock, re.M), (
            f"{tool} (hook {h['id']}) is not in requirements.lock"
        )


def test_the_coverage_step_runs_the_fast_lane_and_the_package_table():
    step = next(line for line in (ROOT / ".ci/run").read_text().splitlines() if "--cov" in line)
    assert '-m "not slow"' in step and step.endswith("&& python .ci/coverage_by_package.py")


PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "def f(x):\n    if x:\n        return 1\n    return 2\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": "Y = 2\n",
    "top.py": "import hypermask.pkg.sub.deep\n\nZ = 3\n",
    "never.py": "def g():\n    return 4\n",  # imported by no one: counted, at 0 %
}


def _own_env() -> dict[str, str]:
    """A measurement of its own, not a subprocess measured by an outer one (.ci/run's coverage step)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def _config(tmp_path, fail_under: float) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.coverage.run]\nsource_dirs = ["hypermask"]\nbranch = true\n'
        f"[tool.coverage.report]\nfail_under = {fail_under}\n"
    )


def _table(tmp_path, fail_under: float) -> subprocess.CompletedProcess:
    _config(tmp_path, fail_under)
    return subprocess.run(
        [sys.executable, str(ROOT / ".ci/coverage_by_package.py")],
        cwd=tmp_path,
        env=_own_env(),
        capture_output=True,
        text=True,
    )


def test_the_package_table_sums_coverages_files_per_package(tmp_path):
    """A namespace package like hypermask/ measured by coverage.py itself: one row per package
    (its sub-packages in it) and per top-level module, and coverage's own total."""
    for name, text in PACKAGE.items():
        (tmp_path / "hypermask" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "hypermask" / name).write_text(text)
    (tmp_path / "main.py").write_text("import hypermask.top\nfrom hypermask.pkg.mod import f\n\nf(1)\n")
    env = _own_env()
    _config(tmp_path, 0)
    subprocess.run([sys.executable, "-m", "coverage", "run", "main.py"], cwd=tmp_path, env=env, check=True)
    total = subprocess.run(
        [sys.executable, "-m", "coverage", "report", "--precision=1", "--format=total"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    out = _table(tmp_path, 0)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line[:1].isalnum()}
    assert list(rows) == ["package", "pkg", "never.py", "top.py", "TOTAL", "floor"]
    assert rows["pkg"] == ["4", "5", "1", "2", "1", "71.4%"]  # files, stmts, miss, branch, part, cover
    assert rows["never.py"][:3] == ["1", "2", "2"] and rows["never.py"][-1] == "0.0%"
    assert rows["TOTAL"][:3] == ["6", "9", "3"] and rows["TOTAL"][-1] == f"{total}%"
    under = _table(tmp_path, 80)
    assert under.returncode == 2 and f"coverage {total}% is under the floor of 80%" in under.stdout
