"""The input surface, by class: strict types (no coercion), bounds the code and its libraries can
take, `hypermask check` rejecting what a later command would, the tracking store said with its
source; and a property test that mutates a valid params.yaml at random (Hypothesis,
derandomised): every example is either refused by `check` with exit 2, a message naming the
key and no traceback, or trains."""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main


def _params(tmp_path, edit) -> str:
    p = copy.deepcopy(TINY)
    p["sweeps"] = {
        "benchmarks": ["tiny"],
        "spaces": {"hypermask": {"hypermask.beta": {"low": 1e-4, "high": 1e-1, "log": True}}},
    }
    edit(p)
    return str(write_params(tmp_path / "params.yaml", p))


def _refused(capsys, argv, *needles) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(n in err for n in needles), err
    return err


def _set(path: str, value):
    def edit(p):
        node = p
        *parents, leaf = path.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value

    return edit


# ------------------------------------------------------------------ strict types and bounds
@pytest.mark.parametrize(
    "key, value",
    [
        ("benchmarks.tiny.seeds", [True, 2]),  # a YAML boolean is not a seed
        ("benchmarks.tiny.train.iterations", True),
        ("benchmarks.tiny.data.n_tasks", "3"),  # a string is not a count
        ("benchmarks.tiny.train.lr", "0.1"),  # nor a learning rate
        ("benchmarks.tiny.seeds", [2**32]),  # beyond numpy's and Optuna's seeds
        ("benchmarks.tiny.seeds", [-1]),
        ("sweeps.seed", 2**40),
        ("benchmarks.tiny.train.batch_size", 1.5),
    ],
)
def test_loose_types_and_out_of_range_values_are_refused_by_key(tmp_path, capsys, key, value):
    params = _params(tmp_path, _set(key, value))
    _refused(capsys, ["--params", params, "check"], key.split(".")[-1])


def test_yaml_1_2_floats_are_numbers(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(TINY, sort_keys=False).replace("lr: 0.001", "lr: 1e-3")
    )
    assert "lr: 1e-3" in (tmp_path / "params.yaml").read_text()
    assert main(["--params", str(tmp_path / "params.yaml"), "check"]) == 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--seed", str(2**64)], "--seed"),
        (["--seed", "1", "--device", "tpu"], "--device tpu"),
        (["--seed", "1", "--device", "cuda:7"], "--device cuda:7"),
        (["--seed", "1", "--threads", "0"], "--threads"),
    ],
)
def test_command_line_values_the_code_cannot_take_are_refused(tmp_path, capsys, argv, needle):
    params = _params(tmp_path, lambda p: None)
    capsys.readouterr()
    try:
        rc = main(["--params", params, "train", "tiny", "--results", str(tmp_path / "r"), *argv])
    except SystemExit as e:  # argparse's own refusal (exit 2, the option named)
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_more_threads_than_cores_is_warned_about(tmp_path, capsys):

    params = _params(tmp_path, _set("benchmarks.tiny.train.iterations", 2))
    n = len(os.sched_getaffinity(0)) + 1
    assert (
        main(
            [
                "--params",
                params,
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path / "r"),
                "--no-tracking",
                "--quiet",
                "--threads",
                str(n),
            ]
        )
        == 0
    )
    cores = len(os.sched_getaffinity(0))
    assert f"--threads {n} is more than the {cores} cores this process may use" in capsys.readouterr().err
    # capped: no oversubscription (pipeline.threads 8 under snakemake --cores 2 ran 8 threads on 2 cores)
    assert (
        json.loads((tmp_path / "r/runs/tiny/hypermask/seed_1/metrics.json").read_text())["torch_threads"]
        == cores
    )


def test_a_batch_larger_than_a_task_is_warned_about(tmp_path, capsys):
    params = _params(
        tmp_path, lambda p: p["benchmarks"]["tiny"]["train"].update(iterations=2, batch_size=5000)
    )
    assert (
        main(
            [
                "--params",
                params,
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path / "r"),
                "--no-tracking",
                "--quiet",
            ]
        )
        == 0
    )
    assert "train.batch_size 5000 exceeds the" in capsys.readouterr().err


# ------------------------------------------------------------------ check rejects what a later command would
@pytest.mark.parametrize(
    "edit, needles",
    [
        (
            _set("sweeps.spaces.hypermask", {"wsn.capacity": {"low": 3, "high": 90}}),
            ["sweeps.spaces.hypermask.wsn.capacity", "every trial would score the same"],
        ),
        (
            _set("sweeps.sampler", {"seed": 0, "n_startup_trials": 4, "bogus": 1}),
            ["sweeps.sampler.bogus", "TPESampler"],
        ),
        (
            _set("sweeps.sampler", {"seed": 0, "n_startup_trials": 4, "multivariate": "yes"}),
            ["sweeps.sampler.multivariate", "TPESampler"],
        ),
        (
            _set("sweeps.sampler", {"seed": 0, "n_startup_trials": -4}),
            ["sweeps.sampler.n_startup_trials", "count"],
        ),
        (_set("sweeps.pruner", {"n_warmup_step": 1}), ["sweeps.pruner.n_warmup_step", "MedianPruner"]),
        (_set("sweeps.pruner", {"n_startup_trials": -3}), ["sweeps.pruner", "MedianPruner"]),
        (
            _set("suites.demo.exclude", ["tiny/hypermask"]),
            ["suites.demo.exclude", "no (benchmark, method) pair"],
        ),
        (_set("suites.demo.methods", ["hypermask", "hypermask"]), ["suites.demo.methods", "listed twice"]),
        (
            _set("sweeps.storage", "sqlite:////nonexistent-folder/study.db"),
            ["sweeps.storage", "/nonexistent-folder"],
        ),
    ],
)
def test_check_rejects_what_a_later_command_would(tmp_path, capsys, edit, needles):
    _refused(capsys, ["--params", _params(tmp_path, edit), "check"], *needles)


def test_each_run_says_which_mlflow_store_and_why(tmp_path, capsys, monkeypatch):
    params = _params(tmp_path, _set("benchmarks.tiny.train.iterations", 2))
    base = ["--params", params, "train", "tiny", "--seed", "1", "--quiet", "--results"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    assert main([*base, str(tmp_path / "r1"), "--tracking-uri", uri]) == 0
    assert f"MLflow store {uri} (from --tracking-uri)" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'b.db'}")
    assert main([*base, str(tmp_path / "r2")]) == 0
    assert "(from $MLFLOW_TRACKING_URI)" in capsys.readouterr().err


# ------------------------------------------------------------------ the property test
def _mutations():
    from hypothesis import strategies as st

    keys = [
        "benchmarks.tiny.seeds",
        "benchmarks.tiny.train.iterations",
        "benchmarks.tiny.train.batch_size",
        "benchmarks.tiny.train.lr",
        "benchmarks.tiny.data.n_tasks",
        "benchmarks.tiny.data.validation_size",
        "benchmarks.tiny.target.hidden",
        "benchmarks.tiny.target.kind",
        "methods.hypermask.settings.hypermask.beta",
        "methods.hypermask.settings.hypermask.sparsity",
        "suites.demo.methods",
        "suites.demo.exclude",
        "sweeps.n_trials",
        "sweeps.spaces.hypermask",
        "suite",
        "benchmarks.tiny.unknown_key",
    ]
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.sampled_from([0, 1, 2**31, 2**32, 2**63, -(2**63)]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["", "x", "1", "1e-3", "mlp", "../x"]),
        st.lists(st.integers(-1, 3), max_size=3),
        st.lists(st.sampled_from(["hypermask", "finetune", "nope"]), max_size=3),
        st.dictionaries(
            st.sampled_from(["low", "high", "log", "hypermask.beta"]), st.integers(-1, 2), max_size=2
        ),
    )
    return st.lists(
        st.tuples(st.sampled_from(keys), st.one_of(values, st.just("__delete__"))), min_size=1, max_size=3
    )


def test_property_every_mutated_params_file_is_refused_by_name_or_trains(tmp_path_factory):
    """Up to 60 random mutations (types, out-of-range and boundary values, deleted and unknown
    keys, degenerate suites and spaces), derandomised: `check` refuses with exit 2, a message
    naming a key and no traceback, or the mutated file trains (2 iterations a task)."""
    import contextlib
    import io

    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(_mutations())
    def prop(mutations):
        p = copy.deepcopy(TINY)
        p["benchmarks"]["tiny"]["train"]["iterations"] = 2
        p["sweeps"] = {
            "benchmarks": ["tiny"],
            "spaces": {"hypermask": {"hypermask.beta": {"low": 1e-4, "high": 0.1}}},
        }
        for key, value in mutations:
            node = p
            *parents, leaf = key.split(".")
            for k in parents:
                node = node.setdefault(k, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                if value == "__delete__":
                    node.pop(leaf, None)
                else:
                    node[leaf] = value
        d = tmp_path_factory.mktemp("p")
        params = str(write_params(d / "params.yaml", p))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["--params", params, "check"])
        text = err.getvalue()
        assert "Traceback" not in text
        if rc != 0:
            assert rc == 2 and "params.yaml" in text, (mutations, text)
            return
        with contextlib.redirect_stderr(io.StringIO()) as e2, contextlib.redirect_stdout(io.StringIO()):
            rc = main(
                [
                    "--params",
                    params,
                    "train",
                    "tiny",
                    "--seed",
                    str(p["benchmarks"]["tiny"]["seeds"][0]),
                    "--results",
                    str(d / "r"),
                    "--no-tracking",
                    "--quiet",
                ]
            )
        assert rc == 0, (mutations, e2.getvalue())

    prop()
