"""The continual-learning metrics against hand computations on a hand-made matrix."""

import numpy as np
import pytest

from hypermask.evaluation import metrics as M

# A[t, j]: accuracy on task j after task t. Task 0 peaks after task 1 (not on the diagonal),
# so forgetting (drop from the best) and BWT (drop from the diagonal) differ.
A = np.array([[70.0, 10.0, 20.0], [90.0, 80.0, 15.0], [60.0, 75.0, 85.0]])
R = np.array([10.0, 12.0, 11.0])


def test_metrics_on_a_hand_made_matrix():
    assert M.average_accuracy(A) == pytest.approx((60 + 75 + 85) / 3)
    assert M.backward_transfer(A) == pytest.approx(((60 - 70) + (75 - 80)) / 2)  # -7.5
    assert M.forgetting(A) == pytest.approx(((90 - 60) + (80 - 75)) / 2)  # 17.5
    assert M.forward_transfer(A, R) == pytest.approx(((10 - 12) + (15 - 11)) / 2)  # 1.0


def test_forgetting_ignores_the_rows_before_a_task_was_learned():
    # task 1 scored 95 before it was trained (row 0: an untrained mask that happens to fit);
    # that is not an accuracy it had and lost: only rows 1.. count for it
    B = np.array([[70.0, 95.0, 20.0], [70.0, 80.0, 15.0], [70.0, 80.0, 85.0]])
    assert M.forgetting(B) == pytest.approx(0.0)
    assert M.backward_transfer(B) == pytest.approx(0.0)


def test_one_task_has_no_transfer_or_forgetting():
    """Undefined, not zero: 0.0 would read as "no forgetting", the best value of its column."""
    one = np.array([[42.0]])
    assert M.summary(one, np.array([5.0])) == {
        "average_accuracy": 42.0,
        "bwt": None,
        "fwt": None,
        "forgetting": None,
    }
    assert all(M.MIN_TASKS[k] == 2 for k in ("bwt", "fwt", "forgetting"))
    assert M.shown(None) == "n/a" and M.shown(-1.234) == "-1.23"


@pytest.mark.slow
def test_a_single_task_benchmark_stores_null_logs_nothing_and_tables_print_na(tmp_path):
    """End to end with one task: metrics.json holds null for BWT, FWT and forgetting (and the
    reader accepts it), MLflow logs no such metric, and the tables print "n/a" for them, never
    bold, while the accuracy column is filled and marked as usual."""
    import copy
    import json

    import pandas as pd
    from mlflow.tracking import MlflowClient

    from conftest import TINY, write_params
    from hypermask.cli.main import main

    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["data"]["n_tasks"] = 1
    p["benchmarks"]["tiny"]["train"]["iterations"] = 20
    p["suites"]["demo"]["methods"] = ["hypermask", "finetune"]
    params = write_params(tmp_path / "params.yaml", p)
    res, uri = tmp_path / "r", f"sqlite:///{tmp_path / 'mlflow.db'}"
    for method in ("hypermask", "finetune"):
        for seed in (1, 2):
            argv = ["--params", str(params), "train", "tiny", "--method", method, "--seed", str(seed)]
            assert main([*argv, "--results", str(res), "--tracking-uri", uri, "--quiet"]) == 0
    m = json.loads((res / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
    assert m["bwt"] is None and m["fwt"] is None and m["forgetting"] is None
    assert m["average_accuracy"] > 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 4
    for r in runs:
        assert "average_accuracy" in r.data.metrics
        assert not {"bwt", "fwt", "forgetting"} & set(r.data.metrics)
    assert main(["--params", str(params), "tables", "demo", "--results", str(res)]) == 0
    df = pd.read_csv(res / "tables/demo.csv")
    assert df["average_accuracy_mean"].notna().all()
    assert df[["bwt_mean", "fwt_mean", "forgetting_mean"]].isna().all().all()
    assert not df["bwt_best"].any() and not df["forgetting_best"].any()
    md = (res / "tables/demo.md").read_text()
    assert "0.00 ± 0.00" not in md
    assert "Backward transfer" not in md  # a table with no defined cell is not printed
