"""The software stack is locked: the README's commands and CI install requirements.lock, conda
users get the same pins, and every run records which lock produced it."""

import hashlib
import re
from importlib import metadata

import yaml

from conftest import ROOT

LOCK = ROOT / "requirements.lock"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _cluster_only() -> set[str]:
    """Pins of the [cluster] extra (and their own plugins, which share the name as a prefix):
    installed by .ci/slurm and the cluster recipe (docs/clusters.md), not by the test command."""
    block = re.search(r"^cluster = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M)
    names = [re.sub(r"[-_.]+", "-", n).lower() for n in re.findall(r'"([A-Za-z0-9_.\-]+)', block.group(1))]
    return {p for p in _pins() if any(p.startswith(n) for n in names)}


def _cuda_only() -> set[str]:
    """Pins that only PyPI's CUDA build of torch pulls in (its CUDA libraries, triton): absent
    where PyTorch's CPU build is installed instead (docs/performance.md, "Memory")."""
    return {p for p in _pins() if p.startswith(("nvidia-", "cuda-")) or p == "triton"}


def _same_release(got: str | None, locked: str) -> bool:
    """pip's `==` as the constraint applies it: a local label (torch 2.14.1+cpu) matches 2.14.1."""
    from packaging.specifiers import SpecifierSet

    return got is not None and got in SpecifierSet(f"=={locked}")


def test_the_installed_stack_is_the_locked_one():
    pins = _pins()
    optional = _cluster_only()
    assert "snakemake-executor-plugin-slurm" in optional and "psycopg2-binary" in optional
    if "+cpu" in metadata.version("torch"):
        optional |= _cuda_only()
    wrong = {}
    for name, version in pins.items():
        try:
            got = metadata.version(name)
        except metadata.PackageNotFoundError:
            got = None
        if not _same_release(got, version) and not (got is None and name in optional):
            wrong[name] = (version, got)
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}"


def test_a_cpu_build_of_torch_satisfies_the_lock_as_pip_does():
    from packaging.specifiers import SpecifierSet

    assert _same_release("2.14.1+cpu", "2.14.1") and "2.14.1+cpu" in SpecifierSet("==2.14.1")
    assert not _same_release("2.13.0+cpu", "2.14.1") and "2.13.0+cpu" not in SpecifierSet("==2.14.1")
    assert not _same_release(None, "2.14.1")
    assert {"nvidia-cublas", "triton", "cuda-toolkit"} <= _cuda_only() and "torch" not in _cuda_only()


def test_every_dependency_is_locked_and_conda_uses_the_lock():
    pins = _pins()
    project = (ROOT / "pyproject.toml").read_text()
    deps = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)[<>=!~ ;\[]', project, re.M)
    missing = [d for d in deps if re.sub(r"[-_.]+", "-", d).lower() not in pins and d != "setuptools"]
    assert not missing, f"not in requirements.lock: {missing}"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c requirements.lock" in pip[0]  # the same pins for conda users
    assert "python=3.11" in env["dependencies"]
    ci = (ROOT / ".ci/run").read_text()
    assert ci.count("-c requirements.lock") == 2


def test_a_run_records_the_lock_it_was_made_with(tiny_params, tmp_path):
    import json

    from hypermask.cli.main import main

    assert (
        main(
            [
                "--params",
                str(tiny_params),
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path),
                "--no-tracking",
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
    # the params file's folder is the repository root here: no lock there
    assert m["environment_lock"] == "none" and m["cpu"]
    from hypermask.records.provenance import environment_lock

    assert environment_lock(ROOT) == hashlib.sha256(LOCK.read_bytes()).hexdigest()


def test_a_run_from_changed_code_says_so_and_the_tables_count_it(tmp_path):
    """uncommitted_code: the package's tracked files that differ from HEAD, in a real git
    repository (none when clean, None outside git); the tables' provenance line counts the runs
    made from such code, since their commit alone does not reproduce them."""
    import subprocess

    from hypermask.records.provenance import uncommitted_code
    from hypermask.reporting.tables import provenance

    assert uncommitted_code(tmp_path) is None
    (tmp_path / "hypermask").mkdir()
    (tmp_path / "hypermask" / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run(git + cmd, cwd=tmp_path, check=True)
    assert uncommitted_code(tmp_path) == []
    (tmp_path / "README.md").write_text("changed, but not the code\n")
    assert uncommitted_code(tmp_path) == []
    (tmp_path / "hypermask" / "a.py").write_text("x = 2\n")
    assert uncommitted_code(tmp_path) == ["hypermask/a.py"]
    run = {"cpu": "c", "device": "cpu", "torch_threads": 1, "git_commit": "abc"}
    clean = provenance({"e": [dict(run, uncommitted_code=[]), dict(run, uncommitted_code=None)]})
    assert "uncommitted" not in clean and clean.startswith("2 runs on c")
    dirty = provenance(
        {"e": [dict(run, uncommitted_code=[]), dict(run, uncommitted_code=["hypermask/a.py"])]}
    )
    assert "(1 of the runs with uncommitted changes to the code" in dirty
