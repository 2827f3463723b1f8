"""The table in MLflow (hypermask/tracking/summary.py): one parent run per (benchmark, method)
with the table's figures, its seeds' runs nested under it, a rerun seed's earlier run moved out;
on a real SQLite store."""

import math

from hypermask.tracking.summary import SUMMARY_TAG, summary_metrics, write_summaries


def _row(mean: float) -> dict:
    return {
        "experiment": "b/m",
        "benchmark": "b",
        "method": "m",
        "seeds": "2/2",
        "average_accuracy_mean": mean,
        "average_accuracy_std": 1.5,
        "average_accuracy_ci_low": mean - 13.5,
        "average_accuracy_ci_high": mean + 13.5,
        "average_accuracy_p_vs_hypermask": float("nan"),  # the reference's own row: no test
        "bwt_mean": float("nan"),
    }


def test_parent_runs_carry_the_table_and_nest_the_current_seeds(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("b")
    seeds = [
        client.create_run(exp, run_name=f"m/seed_{s}", tags={"method": "m"}).info.run_id for s in (1, 2, 3)
    ]
    metrics = summary_metrics(_row(80.0), ["average_accuracy", "bwt"])
    assert metrics["average_accuracy_mean"] == 80.0 and metrics["seeds_found"] == 2
    assert "bwt_mean" not in metrics and "average_accuracy_p_vs_hypermask" not in metrics  # NaN: left out
    runs = {"b/m": [{"mlflow_run_id": seeds[0]}, {"mlflow_run_id": seeds[1]}]}
    assert write_summaries(uri, [_row(80.0)], ["average_accuracy", "bwt"], runs) == 1
    parents = client.search_runs([exp], filter_string=f"tags.`{SUMMARY_TAG}` = 'b/m'")
    assert len(parents) == 1 and parents[0].info.run_name == "m"
    pid = parents[0].info.run_id
    assert parents[0].data.metrics["average_accuracy_ci_low"] == 66.5
    assert [client.get_run(r).data.tags.get("mlflow.parentRunId") for r in seeds] == [pid, pid, None]
    # seed 2 rerun: its new run (seed 3's id here) replaces the old one under the same parent
    runs = {"b/m": [{"mlflow_run_id": seeds[0]}, {"mlflow_run_id": seeds[2]}]}
    assert write_summaries(uri, [_row(82.0)], ["average_accuracy", "bwt"], runs) == 1
    parents = client.search_runs([exp], filter_string=f"tags.`{SUMMARY_TAG}` = 'b/m'")
    assert len(parents) == 1 and parents[0].info.run_id == pid  # updated, not duplicated
    assert math.isclose(parents[0].data.metrics["average_accuracy_mean"], 82.0)
    assert [client.get_run(r).data.tags.get("mlflow.parentRunId") for r in seeds] == [pid, None, pid]
    assert (
        write_summaries(uri, [{**_row(1.0), "benchmark": "other"}], ["average_accuracy"], {}) == 0
    )  # no experiment
