"""Axes (params.yaml `suites.S.axes`): a shared benchmark setting varied over values, each point
a derived benchmark with its own runs and columns, its base's method values, and one table and
figure per axis from `hypermask tables`."""

import copy

import pytest

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config import ConfigError, experiment_config, read_params
from hypermask.pipeline.plan import Plan


def _params(tmp_path, axes):
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"]["iterations"] = 30
    p["benchmarks"]["tiny"]["seeds"] = [1, 2]
    p["methods"]["hypermask"]["benchmarks"] = {"tiny": {"hypermask": {"beta": 7e-3}}}
    p["suites"]["demo"] = {"benchmarks": ["tiny"], "methods": ["hypermask", "finetune"], "axes": axes}
    return write_params(tmp_path / "params.yaml", p)


def test_each_point_of_an_axis_is_a_derived_benchmark(tmp_path):
    path = _params(
        tmp_path,
        {
            "width": {"key": "target.hidden", "values": [[32], [64]]},
            "tasks": {"key": "data.n_tasks", "values": [3, 2]},
        },
    )
    params = read_params(path)
    # the point the benchmark already has is the benchmark itself; the others are derived
    assert params.suite_benchmarks("demo") == ["tiny", "tiny_width64", "tiny_tasks2"]
    assert params.axis_series("demo")["width"]["tiny"] == [([32], "tiny"), ([64], "tiny_width64")]
    wide = experiment_config(params, "tiny_width64/hypermask", path)
    assert wide.target.hidden == [64] and wide.data.n_tasks == 3 and wide.benchmark == "tiny_width64"
    assert wide.hypermask.beta == 7e-3  # the base benchmark's method values
    assert experiment_config(params, "tiny_tasks2/finetune", path).data.n_tasks == 2
    assert len(params.suite_experiments("demo")) == 6
    plan = Plan.from_file(str(path), "demo")
    keys = plan._settings_keys("tiny_width64/hypermask")
    assert (
        "benchmarks.tiny" in keys
        and "suites.demo.axes.width" in keys
        and "methods.hypermask.benchmarks.tiny" in keys
    )
    assert plan.seeds_in_one_job("tiny_width64/hypermask") == plan.seeds_in_one_job("tiny/hypermask")


@pytest.mark.parametrize(
    "axes,fragment",
    [
        (
            {"emb": {"key": "hypermask.embedding_dim", "values": [8, 16]}},
            "a method's own setting is a variant",
        ),
        ({"w": {"key": "target.hidden", "values": [[32]]}}, "values"),
        ({"w": {"key": "target.hidden", "values": [[32], ["x"]]}}, "tiny_wx"),
    ],
)
def test_a_bad_axis_stops_with_its_key(tmp_path, axes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        read_params(_params(tmp_path, axes))


def test_an_axis_gets_a_table_and_a_figure(tmp_path):
    path = _params(tmp_path, {"iters": {"key": "train.iterations", "values": [30, 60]}})
    base = ["--params", str(path)]
    for b in ("tiny", "tiny_iters60"):
        for m in ("hypermask", "finetune"):
            assert (
                main([*base, "train", b, "--method", m, "--seed", "1", "2", "--no-tracking", "--quiet"]) == 0
            )
    assert main([*base, "tables", "demo", "--no-tracking"]) == 0
    md = (tmp_path / "results/tables/demo.md").read_text()
    section = md.split(
        "### Axis `iters` (train.iterations) on tiny: average accuracy after the last task (%)"
    )[1]
    header = section.strip().splitlines()[0]
    assert "| 30 " in header and "| 60 " in header and "| finetune " in section and "±" in section
    assert (tmp_path / "results/figures/demo/axis_iters_tiny.png").stat().st_size > 1000
    assert "tiny_iters60" in (tmp_path / "results/tables/demo.csv").read_text()
