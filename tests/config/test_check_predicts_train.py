"""`check` predicts `train`: a differential property test (Hypothesis, derandomised). Each
example mutates several keys of a valid params.yaml at once, across fields that constrain each
other (task counts and class counts, batch and validation sizes, threads, paths, method
capacities and task counts, sweep ranges, the suite's methods), and may add an overrides file
(keys of the run's own method, of another method, of nothing; YAML that is no mapping; bytes
that are not UTF-8). Then:

- `check` (with `--override` where there is a file) refuses: exit 2, a message that names a key
  or the file, no traceback; or
- `check` accepts: every method the suite lists trains 2 iterations a task with no traceback,
  exit 0, and its metrics.json holds only defined numbers (finite; BWT, FWT and forgetting
  null exactly when there is one task); where a sweep space was set, HyperMask's study (2
  trials) finishes too.

The counterexamples it found became the regular tests of their class (test_declared_limits.py,
test_path_settings.py, test_process_environment.py, and the overrides cases below).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import pytest

from conftest import TINY, write_params
from hypermask.cli.main import main

METHODS_SAMPLED = ["hypermask", "finetune", "wsn", "packnet", "supsup", "er", "hnet", "gpm", "hat", "si"]

# (dotted key, values): every value is tried alone and beside the others' values
MUTATIONS: dict[str, list] = {
    "benchmarks.tiny.data.n_tasks": [1, 2, 3, 5, 6, 11, 256, 0],
    "benchmarks.tiny.data.scenario": ["permuted", "split"],
    "benchmarks.tiny.data.classes_per_task": [None, 1, 2, 3, [5, 5], [2, 2, 2, 2, 2], [9, 1]],
    "benchmarks.tiny.data.validation_size": [0, 10, 50, 1500],
    "benchmarks.tiny.train.batch_size": [1, 32, 5000],
    "benchmarks.tiny.train.selection": ["last", "best_val"],
    "benchmarks.tiny.train.epochs": [None, 1],
    "benchmarks.tiny.evaluation.settings": [
        ["til"],
        ["til", "entropy"],
        ["til", "fecam"],
        ["til", "oneshot"],
    ],
    "benchmarks.tiny.target.hidden": [[32], [4], [32, 16], []],
    "pipeline.threads": [1, 2, 8],
    "pipeline.results": ["r", "", ".", " r", "../elsewhere"],
    "pipeline.data_cache": ["cache", "", "/"],
    "methods.wsn.settings.wsn.capacity": [1.0, 50.0, 100.0, 0.0],
    "methods.supsup.settings.supsup.keep": [1.0, 50.0, 100.0],
    "methods.hypermask.settings.hypermask.sparsity": [0.0, 50.0, 99.0, 100.0],
    "methods.packnet.settings.packnet.prune": [0.0, 75.0, 99.9],
    "methods.er.settings.er.per_class": [0, 1, 1000],
    "methods.gpm.settings.gpm.samples": [1, 300],
    "sweeps.spaces.hypermask": [
        {"hypermask.embedding_dim": {"type": "int", "low": 1.5, "high": 1.9}},
        {"hypermask.embedding_dim": {"type": "int", "low": 2, "high": 4}},
        {"hypermask.sparsity": {"type": "categorical", "choices": [0.0, 50.0]}},
        {"hypermask.sparsity": {"type": "categorical", "choices": [0.0, 150.0]}},  # once accepted
        {"hypermask.sparsity": {"low": 0.0, "high": 100.0}},  # 100 is a value Optuna may draw
        {"wsn.capacity": {"low": 1.0, "high": 60.0}},
    ],
}

OVERRIDES: list[tuple[str, bytes]] = [
    ("own key", b"train.lr: 0.01\n"),
    ("own method key", b"hypermask.beta: 0.01\n"),
    ("another method's key", b"wsn.capacity: 10.0\n"),
    ("no such key", b"train.nope: 1\n"),
    ("a list", b"- train.lr\n"),
    ("empty", b""),
    ("latin-1", "train.lr: 0.01  # café\n".encode("latin-1")),
    ("utf-8 with a BOM", b"\xef\xbb\xbftrain.lr: 0.01\n"),
    ("a value out of range", b"train.batch_size: 0\n"),
]


def _mutated(mutations: list[tuple[str, object]], methods: list[str]) -> dict:
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"]["iterations"] = 2
    p["benchmarks"]["tiny"]["seeds"] = [1]
    p["suites"]["demo"]["methods"] = methods
    for m in methods:
        p["methods"].setdefault(m, {})
    p["sweeps"] = {"n_trials": 2, "benchmarks": ["tiny"], "spaces": {}}
    for key, value in mutations:
        *parents, leaf = key.split(".")
        node = p
        for k in parents:
            node = node.setdefault(k, {})
        if key.startswith("benchmarks.tiny.train.epochs") and value is not None:
            node.pop("iterations", None)
        node[leaf] = value
    return p


def _defined_numbers(m: dict, n_tasks: int) -> list[str]:
    """The metrics.json numbers that are not defined numbers (NaN, inf), and the transfer
    metrics stored where undefined or missing where defined."""
    bad = []

    def walk(x, where):
        if isinstance(x, float) and not math.isfinite(x):
            bad.append(where)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{where}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")

    walk(m, "metrics")
    for k in ("bwt", "fwt", "forgetting"):
        if (m[k] is None) != (n_tasks == 1):
            bad.append(f"{k}={m[k]} with {n_tasks} task(s)")
    return bad


def _call(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code if isinstance(e.code, int) else 2
    return rc, err.getvalue()


def _differential(d: Path, p: dict, override: tuple[str, bytes] | None) -> str:
    """ "refused" or "trained" (asserting the verdict's contract)."""
    params = str(write_params(d / "params.yaml", p))
    extra = []
    if override is not None:
        (d / "override.yaml").write_bytes(override[1])
        extra = ["--override", str(d / "override.yaml")]
    methods = p["suites"]["demo"]["methods"]
    rc, text = _call(["--params", params, "check", *extra, "--experiment", *[f"tiny/{m}" for m in methods]])
    assert "Traceback" not in text, text
    if rc != 0:
        assert rc == 2, text
        assert "params.yaml" in text or "override.yaml" in text, text
        return "refused"
    n_tasks = p["benchmarks"]["tiny"]["data"]["n_tasks"]
    for m in methods:
        argv = ["--params", params, "train", "tiny", "--method", m, "--seed", "1", "--no-tracking", "--quiet"]
        rc, text = _call([*argv, "--results", str(d / "r"), *extra])
        assert rc == 0 and "Traceback" not in text, (m, text)
        metrics = json.loads((d / "r" / "runs" / "tiny" / m / "seed_1" / "metrics.json").read_text())
        assert not _defined_numbers(metrics, n_tasks), (m, _defined_numbers(metrics, n_tasks))
    if p["sweeps"]["spaces"]:  # a study's trials take every value of the space check accepted
        argv = ["--params", params, "sweep", "tiny", "--method", "hypermask", "--no-tracking"]
        rc, text = _call([*argv, "--results", str(d / "r")])
        assert rc == 0 and "Traceback" not in text, text
    return "trained"


@pytest.mark.slow
def test_check_predicts_train_differential(tmp_path_factory):
    """80 derandomised examples, 2 to 5 keys mutated at once, a third with an overrides file;
    1 to 3 methods of ten listed and trained for each accepted example."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    mutation = st.sampled_from(sorted(MUTATIONS)).flatmap(
        lambda k: st.tuples(st.just(k), st.sampled_from(MUTATIONS[k]))
    )
    example = st.tuples(
        st.lists(mutation, min_size=2, max_size=5, unique_by=lambda kv: kv[0]),
        st.lists(st.sampled_from(METHODS_SAMPLED), min_size=1, max_size=3, unique=True),
        st.one_of(st.none(), st.none(), st.sampled_from(OVERRIDES)),
    )

    verdicts: list[str] = []

    @settings(
        max_examples=80,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(example)
    def prop(ex):
        mutations, methods, override = ex
        verdicts.append(_differential(tmp_path_factory.mktemp("p"), _mutated(mutations, methods), override))

    prop()
    # both sides of the contract were exercised, not only refusals
    print(f"differential: {verdicts.count('refused')} refused, {verdicts.count('trained')} trained")
    assert verdicts.count("trained") >= 8 and verdicts.count("refused") >= 8, verdicts


@pytest.mark.parametrize("name,content", OVERRIDES, ids=[o[0] for o in OVERRIDES])
def test_check_and_train_agree_on_every_kind_of_overrides_file(tmp_path, name, content):
    """Each kind of overrides file: `check --override` and `train --override` give the same
    verdict; the refused ones are named (the file, the key) and exit 2."""
    p = _mutated([], ["hypermask"])
    params = str(write_params(tmp_path / "params.yaml", p))
    f = tmp_path / "override.yaml"
    f.write_bytes(content)
    rc_check, err_check = _call(["--params", params, "check", "--override", str(f), "--experiment", "tiny"])
    argv = ["--params", params, "train", "tiny", "--seed", "1", "--no-tracking", "--quiet"]
    rc_train, err_train = _call([*argv, "--results", str(tmp_path / "r"), "--override", str(f)])
    assert rc_check == rc_train, (err_check, err_train)
    refused = {"another method's key", "no such key", "a list", "latin-1", "a value out of range", "empty"}
    assert rc_check == (2 if name in refused else 0), err_check
    if rc_check:
        assert str(f) in err_check and "Traceback" not in err_check + err_train
    if name == "another method's key":
        assert "wsn.capacity: settings of method 'wsn', which a hypermask run does not read" in err_check
    if name == "latin-1":
        assert "not UTF-8 text (byte 0xe9" in err_check


# The counterexamples the differential test found, each now refused by `check` with its key
# (before: `check` passed and the command after it failed, with a traceback for the third).
COUNTEREXAMPLES = [
    (
        "a validation split larger than the training images",
        [("benchmarks.tiny.data.validation_size", 1500)],
        "data.validation_size: 1500 >= the 1347 training images of digits",
    ),
    (
        "a validation split no 2-class task can hold",
        [
            ("benchmarks.tiny.data.scenario", "split"),
            ("benchmarks.tiny.data.classes_per_task", 2),
            ("benchmarks.tiny.data.validation_size", 270),
        ],
        "validation_size: 270 validation images for a task of 2 classes, which may have only 266",
    ),
    (
        "a categorical space without the experiment's own value (Optuna's ValueError at the first trial)",
        [
            (
                "sweeps.spaces.hypermask",
                {"hypermask.sparsity": {"type": "categorical", "choices": [0.0, 50.0]}},
            )
        ],
        "sweeps.spaces.hypermask.hypermask.sparsity: the experiment's own value 20.0",
    ),
    (
        "an invalid own value hidden by the space's probe (the study's first trial failed)",
        [
            ("methods.hypermask.settings.hypermask.sparsity", 100.0),
            (
                "sweeps.spaces.hypermask",
                {"hypermask.sparsity": {"type": "categorical", "choices": [0.0, 50.0]}},
            ),
        ],
        "hypermask.sparsity: Input should be less than 100",
    ),
    (
        "a choice outside the setting's range",
        [
            (
                "sweeps.spaces.hypermask",
                {"hypermask.sparsity": {"type": "categorical", "choices": [20.0, 150.0]}},
            )
        ],
        "(a trial with hypermask.sparsity = 150.0)",
    ),
]


@pytest.mark.parametrize("name,mutations,needle", COUNTEREXAMPLES, ids=[c[0] for c in COUNTEREXAMPLES])
def test_each_counterexample_is_refused_by_check(tmp_path, name, mutations, needle):
    p = _mutated(mutations, ["finetune"])
    rc, err = _call(["--params", str(write_params(tmp_path / "params.yaml", p)), "check"])
    assert rc == 2 and needle in err and "Traceback" not in err, err
