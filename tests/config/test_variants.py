"""Variants (params.yaml `methods.NAME.variant_of`): a row of its own that runs another method
with that method's settings, its per-benchmark values included, and the variant's on top; its
runs, fingerprint, table row and MLflow `method` tag are its own name's."""

import copy
import json

import pytest

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config import experiment_config, read_params
from hypermask.config.experiment import training_fingerprint
from hypermask.tracking.tracker import run_identity


def _params(tmp_path, iterations: int = 60, **variants):
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"]["iterations"] = iterations
    p["methods"]["hypermask"]["benchmarks"] = {"tiny": {"hypermask": {"beta": 7e-3}}}  # a per-benchmark value
    p["methods"].update(variants)
    p["suites"]["demo"]["methods"] = ["hypermask", *variants]
    return write_params(tmp_path / "params.yaml", p)


def test_a_variant_is_its_base_with_its_own_settings_on_top(tmp_path):
    path = _params(
        tmp_path, hypermask_nol1={"variant_of": "hypermask", "settings": {"hypermask": {"masked_l1": False}}}
    )
    params = read_params(path)
    base = experiment_config(params, "tiny/hypermask", path)
    var = experiment_config(params, "tiny/hypermask_nol1", path)
    assert var.method == "hypermask" and var.variant == "hypermask_nol1" and var.row == "hypermask_nol1"
    assert base.variant is None and base.row == "hypermask"
    assert var.hypermask.beta == base.hypermask.beta == 7e-3  # the base's per-benchmark value is inherited
    assert var.hypermask.hnet_hidden == base.hypermask.hnet_hidden == [10]  # and its settings
    assert base.hypermask.masked_l1 is True and var.hypermask.masked_l1 is False  # the variant's own on top
    fb, fv = json.loads(training_fingerprint(base)), json.loads(training_fingerprint(var))
    assert "variant" not in fb and fv["variant"] == "hypermask_nol1"  # plain methods' fingerprints unchanged
    assert {k: v for k, v in fv.items() if k not in ("variant", "name", "hypermask")} == {
        k: v for k, v in fb.items() if k not in ("name", "hypermask")
    }
    assert (
        params.implementation("hypermask_nol1") == "hypermask"
        and params.implementation("finetune") == "finetune"
    )
    _, run_name, tags = run_identity("tiny", var.row, 1, variant_of=var.method)
    assert run_name == "hypermask_nol1/seed_1"
    assert tags["method"] == tags["variant"] == "hypermask_nol1" and tags["variant_of"] == "hypermask"
    assert "variant" not in run_identity("tiny", "hypermask", 1)[2]


@pytest.mark.parametrize(
    "variants,fragment",
    [
        (
            {"nol1": {"variant_of": "nope"}},
            "methods.nol1.variant_of: 'nope' is not a method declared under methods",
        ),
        (
            {"a": {"variant_of": "hypermask"}, "b": {"variant_of": "a"}},
            "methods.b.variant_of: 'a' is not a method",
        ),
        (
            {"finetune": {"variant_of": "hypermask"}},
            "methods.finetune.variant_of: finetune is a method of its own",
        ),
        ({"nol1": {}}, "methods.nol1: unknown method"),
    ],
)
def test_bad_variants_are_refused_by_name(tmp_path, capsys, variants, fragment):
    p = copy.deepcopy(TINY)
    p["methods"].update(variants)
    path = write_params(tmp_path / "params.yaml", p)
    assert main(["--params", str(path), "check"]) == 2
    assert fragment in capsys.readouterr().err


def test_a_variants_run_lives_beside_its_bases_and_tables_show_its_row(tmp_path, capsys):
    path = _params(
        tmp_path, 4, hypermask_p0={"variant_of": "hypermask", "settings": {"hypermask": {"sparsity": 0}}}
    )
    res = tmp_path / "res"
    for m in ("hypermask", "hypermask_p0"):
        assert (
            main(
                [
                    "--params",
                    str(path),
                    "train",
                    "tiny",
                    "--method",
                    m,
                    "--seed",
                    "1",
                    "--results",
                    str(res),
                    "--no-tracking",
                    "--quiet",
                ]
            )
            == 0
        )
    metrics = json.loads((res / "runs/tiny/hypermask_p0/seed_1/metrics.json").read_text())
    assert metrics["method"] == "hypermask_p0" and metrics["experiment"] == "tiny/hypermask_p0"
    assert metrics["config"]["method"] == "hypermask" and metrics["config"]["hypermask"]["sparsity"] == 0
    base = json.loads((res / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
    assert (
        base["config"]["hypermask"]["sparsity"] == 20
        and base["accuracy_matrix"] != metrics["accuracy_matrix"]
    )
    assert main(["--params", str(path), "tables", "demo", "--results", str(res)]) == 0
    table = (res / "tables/demo.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| hypermask")]
    assert "hypermask_p0" in rows and "hypermask" in rows and "missing" not in table
    assert "hypermask_p0: one shared output layer" in table  # its heads, from its base's record
