"""Adding a method is its implementation, its record and its params.yaml block, nothing else:
the template of docs/methods.md ("Adding a method"), taken from the page itself, is added to a
copy of the package, and the new method is checked, listed, trained through the command line
and run through the method contract with no other file edited."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys

import yaml

from conftest import ROOT, TINY, write_params


def _template() -> tuple[str, str, dict]:
    page = (ROOT / "docs/methods.md").read_text()
    section = page[page.index("## Adding a method") :]
    code = re.findall(r"```python\n(.*?)```", section, re.S)
    block = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", section, re.S)[0])
    return code[0], code[1], block


def test_the_documented_template_is_a_whole_method(tmp_path):
    implementation, record, block = _template()
    package = tmp_path / "copy" / "hypermask"
    shutil.copytree(ROOT / "hypermask", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "methods" / "l2.py").write_text(implementation)
    (package / "methods" / "specs" / "l2.py").write_text(record)
    params = copy.deepcopy(TINY)
    params["methods"].update(block)
    params["suites"]["demo"]["methods"].append("l2")
    p = write_params(tmp_path / "params.yaml", params)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(package.parent), str(ROOT / "tests"), str(ROOT / "tests" / "methods")]
        ),
    }

    def hypermask(*args: str) -> str:
        code = "import sys; from hypermask.cli import main; sys.exit(main(sys.argv[1:]))"
        out = subprocess.run(
            [sys.executable, "-c", code, "--params", str(p), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    assert "3 methods, 2 experiments" in hypermask(
        "check"
    )  # declared: hypermask, finetune, l2; suite: hypermask, l2
    assert "method    l2" in hypermask("list")
    hypermask(
        "train", "tiny/l2", "--seed", "1", "--results", str(tmp_path / "results"), "--no-tracking", "--quiet"
    )
    import json

    metrics = json.loads(
        (tmp_path / "results" / "runs" / "tiny" / "l2" / "seed_1" / "metrics.json").read_text()
    )
    assert metrics["method"] == "l2" and metrics["config"]["l2"] == {"strength": 0.01}
    assert len(metrics["accuracy_matrix"]) == 3
    contract = (
        "import hypermask.methods as m, test_method_contract as c; assert m.__file__.startswith(sys.argv[1]); "
        "assert m.METHODS['l2'].block == 'l2'; "
        "[c.test_method_contract('l2', s) for s in ('permuted', 'split')]"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import sys; " + contract, str(package)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
