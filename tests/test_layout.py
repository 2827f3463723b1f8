"""The code's shape where it matters to users: building tables or the pipeline plan does not
load the training stack, and params.yaml is read once per command."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def test_tables_plan_and_run_layout_do_not_import_torch_or_mlflow():
    code = (
        "import sys, hypermask.reporting.tables, hypermask.pipeline.plan, hypermask.records.runs, hypermask.reporting.readme, hypermask.config; "
        "print(sorted(m for m in ('torch', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_params_file_is_read_once_per_command(tiny_params, monkeypatch, capsys):
    import hypermask.config.params as config
    import hypermask.pipeline.plan as pipeline
    from hypermask.cli.main import main

    reads = []
    real_load, real_parse = pipeline.load_yaml, config.parse_yaml

    def loaded(path):
        reads.append(str(path))
        return real_load(path)

    def parsed(text, path):
        reads.append(str(path))
        return real_parse(text, path)

    monkeypatch.setattr(config, "parse_yaml", parsed)
    monkeypatch.setattr(pipeline, "load_yaml", loaded)
    for cmd in (["check"], ["list"], ["dvc-yaml"]):
        config._LAST_READ.clear()
        reads.clear()
        assert main(["--params", str(tiny_params), *cmd]) == 0
        assert reads == [str(tiny_params)], (cmd, reads)
    # read again unchanged (the command's process reads it before main()): the same validation
    reads.clear()
    assert config.read_params(tiny_params) is config.read_params(tiny_params) and reads == [str(tiny_params)]
    tiny_params.write_text(tiny_params.read_text() + "\n")  # changed: read again
    config.read_params(tiny_params)
    assert reads == [str(tiny_params)] * 2


def test_every_method_file_is_registered_and_implements_the_contract():
    from hypermask.config import ExperimentConfig
    from hypermask.methods import METHODS, Method, build_method
    from hypermask.nets import build_target

    shared = {
        "__init__",
        "record",
    }  # the contract and registry, the record type (shared code: methods/shared/)
    files = {p.stem for p in (ROOT / "hypermask/methods").glob("*.py")} - shared
    assert files == {r.implementation.split(":")[0] for r in METHODS.values()}
    specs = {p.stem for p in (ROOT / "hypermask/methods/specs").glob("*.py")} - {"__init__"}
    assert specs == set(METHODS)  # one record per method, named after it
    for name in METHODS:
        cfg = ExperimentConfig.model_validate(
            {
                "name": "x",
                "seeds": [1],
                "method": name,
                "data": {"source": "digits", "scenario": "permuted", "n_tasks": 2},
                "target": {"kind": "mlp", "hidden": [8]},
                "train": {"iterations": 1},
            }
        )
        m = build_method(cfg, build_target(cfg.target, (64,), 10, 2))
        assert isinstance(m, Method), name
        assert hasattr(m, "all_task_outputs") == METHODS[name].task_inference, name


def test_docs_generated_blocks_are_their_sources():
    """The README's and the docs' generated blocks (the methods table from the registry, the
    speed and timing blocks from bench/results/*.json) are what `hypermask docs` renders now:
    never typed, never stale."""
    out = subprocess.run(
        [sys.executable, "-m", "hypermask.cli", "docs", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    from hypermask.methods import METHODS

    methods = readme[readme.index("<!-- methods -->") : readme.index("<!-- end methods -->")]
    assert all(f"| `{m}` |" in methods for m in METHODS)


def test_docs_site_builds_strict(tmp_path):
    """The MkDocs site builds with --strict: no broken link, no page missing from the nav."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    out = subprocess.run(
        [str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "methods" / "index.html").is_file()
    # offline: no page loads a script, style or font from another site; code highlighted at build
    pages = sorted((tmp_path / "site").rglob("*.html"))
    loads = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["'](?:https?:)?//""")
    assert pages and not [p for p in pages if loads.search(p.read_text())]
    assert 'class="highlight"' in (tmp_path / "site" / "running" / "index.html").read_text()


def test_every_method_settings_block_is_registered_and_only_its_own_enters_the_fingerprint():
    """A settings block on ExperimentConfig that the registry does not name would enter every
    other method's fingerprint (an edit of it would make every experiment stale)."""
    import json

    from pydantic import BaseModel

    from hypermask.config import METHOD_BLOCKS, ExperimentConfig, training_fingerprint
    from hypermask.methods import METHODS

    shared = {"data", "target", "train", "evaluation"}
    blocks = {
        n
        for n, f in ExperimentConfig.model_fields.items()
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
    } - shared
    assert blocks == set(METHOD_BLOCKS) == {e.block for e in METHODS.values() if e.block}
    for name, entry in METHODS.items():
        cfg = ExperimentConfig.model_validate(
            {
                "name": "x",
                "seeds": [1],
                "method": name,
                "data": {"source": "digits", "scenario": "permuted", "n_tasks": 2},
                "target": {"kind": "mlp", "hidden": [8]},
                "train": {"iterations": 1},
            }
        )
        kept = set(json.loads(training_fingerprint(cfg))) & blocks
        assert kept == ({entry.block} if entry.block else set()), name


def test_evaluation_settings_have_one_registry():
    """hypermask/evaluation/settings.py is the only list of evaluation settings: the schema, the command
    line, metrics.json's keys, the tables' columns and the capability checks read it."""
    import typing

    from hypermask.cli.parser import build_parser
    from hypermask.config import EvaluationConfig
    from hypermask.evaluation.settings import SETTINGS, supported
    from hypermask.methods import METHODS
    from hypermask.records.runs import SETTING_METRICS
    from hypermask.reporting.tables import SETTING_COLUMNS

    literal = typing.get_args(typing.get_args(EvaluationConfig.model_fields["settings"].annotation)[0])
    assert literal == tuple(SETTINGS)
    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    assert next(a.choices for a in evaluate._actions if a.dest == "setting") == list(SETTINGS)
    assert set(SETTING_METRICS) == {n for n, s in SETTINGS.items() if s.metrics}
    assert {c for _, _, c, _ in SETTING_COLUMNS} == {c for s in SETTINGS.values() for _, c, _ in s.columns}
    assert [m for m, e in METHODS.items() if supported("oneshot", e)] == ["supsup"]
    assert all(supported("til", e) for e in METHODS.values())


def _imports(path: Path, lazy: bool, modules: set[str]) -> set[str]:
    """The package's modules `path` imports at load time (lazy: also inside functions), without
    the imports only a type checker reads."""
    import ast

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if not lazy and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            yield child
            yield from walk(child)

    out = set()
    for n in walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("hypermask"):
            out |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
        elif isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
    return out & modules


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(u):
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return path[path.index(v) :] + [v]
            if not state.get(v) and (found := visit(v)):
                return found
        path.pop()
        state[u] = 2
        return None

    return next((c for u in sorted(graph) if not state.get(u) and (c := visit(u))), None)


@pytest.mark.parametrize("lazy", [False, True], ids=["at import", "with imports inside functions"])
def test_no_import_circle_between_modules_or_folders(lazy):
    """The package's modules, and its folders taken as units, import each other one way only."""
    files = {}
    for f in (ROOT / "hypermask").rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {m: _imports(f, lazy, set(files)) - {m} for m, f in files.items()}
    assert _cycle(graph) is None, _cycle(graph)

    def folder(m: str) -> str:  # hypermask.engine.run -> hypermask.engine; hypermask.cli -> itself
        parts = m.split(".")
        return ".".join(parts[:2]) if (ROOT / "hypermask" / parts[1]).is_dir() else m if len(parts) > 1 else m

    folders: dict[str, set[str]] = {}
    for m, deps in graph.items():
        if m != "hypermask":
            folders.setdefault(folder(m), set()).update(folder(d) for d in deps if folder(d) != folder(m))
    assert _cycle(folders) is None, _cycle(folders)
