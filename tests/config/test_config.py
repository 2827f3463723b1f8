"""Every bad input stops before any work with a message naming the key or path."""

import copy
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import FMNIST, ROOT, TINY, write_params
from hypermask.cli.main import main
from hypermask.config import load_experiment


def _set(d, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    if value is _DEL:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value


_DEL = object()
E = "benchmarks.tiny"
H = "methods.hypermask.settings.hypermask"

# (id, edits, expected fragment of the message)
BAD = [
    ("unknown key", [(f"{E}.train.iteratons", 5)], "train.iteratons: unknown key"),
    ("unknown top key", [("experiments", {})], "experiments: unknown key"),
    ("wrong type", [(f"{E}.train.batch_size", "big")], "train.batch_size"),
    ("negative budget", [(f"{E}.train.iterations", -5)], "train.iterations"),
    ("zero budget", [(f"{E}.train.iterations", 0)], "train.iterations"),
    ("both budgets", [(f"{E}.train.epochs", 2)], "train.iterations"),
    ("sparsity > 100", [(f"{H}.sparsity", 150)], "hypermask.sparsity"),
    ("sparsity < 0", [(f"{H}.sparsity", -1)], "hypermask.sparsity"),
    ("negative beta", [(f"{H}.beta", -0.1)], "hypermask.beta"),
    ("negative lr", [(f"{E}.train.lr", -1e-3)], "train.lr"),
    ("unknown target", [(f"{E}.target.kind", "vgg")], "target.kind"),
    ("unknown method", [("methods.icarl", {})], "methods.icarl: unknown method"),
    ("undeclared method in a suite", [("suites.demo.methods", ["ewc"])], "unknown method 'ewc'"),
    (
        "ewc on a conv target",
        [
            ("methods.ewc", {}),
            ("suites.demo.methods", ["ewc"]),
            (f"{E}.target.kind", "resnet20"),
            (f"{E}.data.source", "cifar100"),
            (f"{E}.data.root", "x"),
        ],
        "method",
    ),
    (
        "override of an unknown benchmark",
        [("methods.hypermask.benchmarks.nope", {})],
        "unknown benchmark 'nope'",
    ),
    ("exclude outside the suite", [("suites.demo.exclude", ["tiny/ewc"])], "suites.demo.exclude"),
    ("unknown source", [(f"{E}.data.source", "imagenet")], "data.source"),
    ("unknown scenario", [(f"{E}.data.scenario", "rotated")], "data.scenario"),
    ("empty suite", [("suites.demo.methods", [])], "suites.demo.methods"),
    ("suite with unknown benchmark", [("suites.demo.benchmarks", ["nope"])], "unknown benchmark 'nope'"),
    ("duplicate seeds", [(f"{E}.seeds", [1, 1])], "seeds: duplicated"),
    ("no seeds", [(f"{E}.seeds", [])], "seeds"),
    ("split without classes", [(f"{E}.data.scenario", "split")], "data.classes_per_task"),
    (
        "too many classes",
        [(f"{E}.data.scenario", "split"), (f"{E}.data.classes_per_task", 4)],
        "data.classes_per_task",
    ),
    (
        "bad class order",
        [
            (f"{E}.data.scenario", "split"),
            (f"{E}.data.classes_per_task", 2),
            (f"{E}.data.class_order", [0, 0, 1, 2, 3, 4]),
        ],
        "data.class_order",
    ),
    ("mnist without root", [(f"{E}.data.source", "mnist")], "data.root"),
    ("zenkenet on digits", [(f"{E}.target.kind", "zenkenet")], "target.kind"),
    (
        "best_val without validation",
        [(f"{E}.data.validation_size", 0), (f"{E}.train.selection", "best_val")],
        "train.selection",
    ),
    (
        "missing data directory",
        [(f"{E}.data.source", "mnist"), (f"{E}.data.root", "/nonexistent/mnist")],
        "/nonexistent/mnist",
    ),
    ("unknown suite", [("suite", "huge")], "suite: unknown suite"),
    ("validation bigger than the data", [(f"{E}.data.validation_size", 5000)], "data.validation_size"),
    (
        "grace period within a heartbeat",
        [("sweeps.heartbeat_interval", 120)],
        "sweeps.grace_period: 120 s must exceed",
    ),
    (
        "tuning on an evaluation seed",
        [
            ("sweeps.seed", 2),
            ("sweeps.benchmarks", ["tiny"]),
            ("sweeps.spaces", {"hypermask": {"hypermask.beta": {"low": 1e-4, "high": 1e-1}}}),
        ],
        "sweeps.seed: 2 is an evaluation seed of tiny/hypermask",
    ),
]


@pytest.mark.parametrize("name,edits,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_params_stop_with_the_key(tmp_path, capsys, name, edits, fragment):
    params = copy.deepcopy(TINY)
    for k, v in edits:
        _set(params, k, v)
    p = write_params(tmp_path / "params.yaml", params)
    rc = main(
        [
            "--params",
            str(p),
            "train",
            "tiny",
            "--seed",
            "1",
            "--results",
            str(tmp_path / "res"),
            "--no-tracking",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0
    assert fragment in err, err
    assert not list((tmp_path / "res").rglob("metrics.json"))


def test_yaml_syntax_error(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text("experiments:\n  tiny: {data: [unclosed\n")
    assert main(["--params", str(p), "train", "tiny", "--seed", "1", "--no-tracking"]) != 0
    assert "not valid YAML" in capsys.readouterr().err


def test_unknown_experiment_and_unlisted_seed(tiny_params, capsys):
    assert main(["--params", str(tiny_params), "train", "nope", "--seed", "1", "--no-tracking"]) != 0
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["--params", str(tiny_params), "train", "tiny", "--seed", "9", "--no-tracking"]) != 0
    assert "seeds: seed 9 is not listed" in capsys.readouterr().err


def test_missing_params_file(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "none.yaml"), "train", "tiny", "--seed", "1"]) != 0
    assert "none.yaml: no such file" in capsys.readouterr().err


def test_corrupt_data_file_is_named(tmp_path, capsys):
    """A truncated IDX file in the data directory is detected and named, before training."""
    if not FMNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    root = tmp_path / "fm"
    root.mkdir()
    for f in FMNIST.iterdir():
        (root / f.name).symlink_to(f)
    bad = root / "t10k-labels-idx1-ubyte.gz"
    bad.unlink()
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x01" * 100))  # header says 10000
    params = copy.deepcopy(TINY)
    _set(params, f"{E}.data.source", "fashion_mnist")
    _set(params, f"{E}.data.root", str(root))
    params["pipeline"] = {"data_cache": str(tmp_path / "cache")}  # not the checkout's prepared data
    p = write_params(tmp_path / "params.yaml", params)
    rc = main(
        [
            "--params",
            str(p),
            "train",
            "tiny",
            "--seed",
            "1",
            "--results",
            str(tmp_path / "res"),
            "--no-tracking",
            "--quiet",
        ]
    )
    assert rc != 0
    assert "t10k-labels-idx1-ubyte.gz: truncated or corrupt" in capsys.readouterr().err
    assert not list((tmp_path / "res").rglob("metrics.json"))


@pytest.mark.slow
def test_cli_exit_status_through_the_console_script(tmp_path):
    params = copy.deepcopy(TINY)
    _set(params, f"{H}.sparsity", 101)
    p = write_params(tmp_path / "params.yaml", params)
    out = subprocess.run(
        [sys.executable, "-m", "hypermask.cli", "--params", str(p), "train", "tiny", "--seed", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "methods.hypermask.hypermask.sparsity" in out.stderr


@pytest.mark.slow
def test_console_script_exit_codes_and_complete_output(tmp_path):
    """Exit codes and complete piped output through the installed console script."""
    exe = str(Path(sys.executable).parent / "hypermask")
    listed = subprocess.run([exe, "list"], capture_output=True, text=True, cwd=ROOT)
    assert listed.returncode == 0
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    lines = listed.stdout.splitlines()
    assert [line.split()[1] for line in lines[: len(params["benchmarks"])]] == list(params["benchmarks"])
    assert lines[-1].split()[:2] == ["suite", list(params["suites"])[-1]]  # the last line arrived
    assert subprocess.run([exe, "--help"], capture_output=True).returncode == 0
    usage = subprocess.run([exe, "train"], capture_output=True, text=True)  # argparse: --seed missing
    assert usage.returncode == 2 and "--seed" in usage.stderr
    missing = subprocess.run(
        [exe, "--params", str(tmp_path / "none.yaml"), "list"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "none.yaml" in missing.stderr


def test_repository_params_are_valid():
    from conftest import ROOT
    from hypermask.config import experiment_config, read_params

    params = read_params(ROOT / "params.yaml")
    configs = {n: experiment_config(params, n) for n in params.experiments()}
    assert {
        "digits_permuted/hypermask",
        "digits_split/wsn",
        "fmnist_permuted/joint",
        "permuted_mnist/hypermask",
    } <= set(configs)
    pm = configs["permuted_mnist/hypermask"]
    assert (pm.hypermask.beta, pm.hypermask.lambda_, pm.train.iterations) == (5e-4, 1e-3, 5000)
    # the values of the experiments before benchmarks x methods (the fine-tuning baseline included)
    ft = configs["digits_permuted/finetune"]
    assert (
        ft.method,
        ft.train.iterations,
        ft.train.batch_size,
        ft.target.hidden,
        ft.evaluation.settings,
    ) == ("finetune", 500, 128, [100, 100], ["til", "entropy", "fecam"])  # every method infers the task
    assert configs["digits_split/hypermask"].hypermask.sparsity == 30


def test_lambda_alias(tiny_params):
    cfg = load_experiment(tiny_params, "tiny")
    assert cfg.hypermask.lambda_ == 1e-2
    assert cfg.as_dict()["hypermask"]["lambda"] == 1e-2


def test_keep_freed_memory_sets_glibc_for_the_listed_experiments_jobs_only(tmp_path, capsys, monkeypatch):
    from hypermask.pipeline.plan import KEEP_FREED_MEMORY, Plan

    params = copy.deepcopy(TINY)
    params["benchmarks"]["other"] = copy.deepcopy(params["benchmarks"]["tiny"])
    params["suites"]["demo"]["benchmarks"] = ["tiny", "other"]
    params["pipeline"] = {"keep_freed_memory": ["tiny"]}
    params["sweeps"] = {
        "n_trials": 2,
        "benchmarks": ["tiny"],
        "spaces": {"hypermask": {"hypermask.beta": {"low": 0.001, "high": 0.1}}},
    }
    write_params(tmp_path / "params.yaml", params)
    monkeypatch.chdir(tmp_path)
    plan = Plan.from_file("params.yaml")
    assert plan.train_cmd("tiny/hypermask", 1).startswith(
        KEEP_FREED_MEMORY + " hypermask train tiny --method hypermask "
    )
    assert plan.sweep_cmd("tiny/hypermask").startswith(
        KEEP_FREED_MEMORY + " hypermask sweep tiny --method hypermask"
    )
    assert plan.train_cmd("other/hypermask", 1).startswith("hypermask train other --method hypermask ")
    params["pipeline"] = {"keep_freed_memory": ["nope"]}
    p = write_params(tmp_path / "params.yaml", params)
    assert main(["--params", str(p), "check"]) == 2
    assert "pipeline.keep_freed_memory: unknown benchmark 'nope'" in capsys.readouterr().err


def test_the_command_keeps_freed_memory_for_a_listed_benchmark_typed_by_hand(tmp_path):
    """`hypermask train` of a benchmark in pipeline.keep_freed_memory, typed without the
    pipeline's environment, runs with glibc's settings all the same (it starts itself again
    with them); another benchmark's run, and a user's own setting, are left alone. Each run's
    metrics.json records the settings it ran with."""
    import json
    import os

    params = copy.deepcopy(TINY)
    params["benchmarks"]["other"] = copy.deepcopy(params["benchmarks"]["tiny"])
    params["suites"]["demo"]["benchmarks"] = ["tiny", "other"]
    params["pipeline"] = {"keep_freed_memory": ["tiny"]}
    p = write_params(tmp_path / "params.yaml", params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    hypermask = str(Path(sys.executable).parent / "hypermask")

    def settings(benchmark: str, **extra: str) -> dict:
        subprocess.run(
            [
                hypermask,
                "--params",
                str(p),
                "train",
                benchmark,
                "--method",
                "finetune",
                "--seed",
                "1",
                "--no-tracking",
                "--quiet",
                "--threads",
                "1",
                "--results",
                str(tmp_path / benchmark),
            ],
            check=True,
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
        )
        return json.loads(
            (tmp_path / benchmark / "runs" / benchmark / "finetune" / "seed_1" / "metrics.json").read_text()
        )["process_settings"]

    listed = settings("tiny")
    assert listed["MALLOC_MMAP_MAX_"] == "0" and listed["MALLOC_TRIM_THRESHOLD_"] == "2147483647"
    assert listed["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in listed  # one thread: no look
    shutil.rmtree(tmp_path / "tiny")
    active = settings("tiny", OMP_WAIT_POLICY="ACTIVE")  # a user's OpenMP setting wins, whole
    assert active["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in active
    assert "MALLOC_MMAP_MAX_" not in settings("other")
    shutil.rmtree(tmp_path / "tiny")
    own = settings("tiny", MALLOC_MMAP_MAX_="65536")
    assert own["MALLOC_MMAP_MAX_"] == "65536" and "MALLOC_TRIM_THRESHOLD_" not in own
