"""The comparison table in MLflow: one parent run per (benchmark, method) in the benchmark's
experiment, named after the method and carrying the table's figures (per metric its mean,
sample std, 95% confidence interval and the paired test's p-values against HyperMask, raw and
Holm-corrected, and the seeds found), with that method's seed runs nested under it (their
`mlflow.parentRunId`). The experiment's runs table then reads like the paper's table, one row
per method, with nothing to group or pick; a seed's own run opens under its method.

`hypermask tables` writes them after the tables (the runs it averaged are the ones metrics.json
names, `mlflow_run_id`); rerunning it updates the same parent runs (found by their
`hypermask.summary_of` tag), moves a rerun seed's new run under its parent and its earlier run
out (it stays in the experiment, at the top level, no longer averaged).
"""

from __future__ import annotations

import math
import time
from typing import Any

from hypermask.tracking.store import prepare_store, run_user
from hypermask.tracking.tracker import PROTOCOL, _retry

SUMMARY_TAG = "hypermask.summary_of"
STATS = ("mean", "std", "ci_low", "ci_high")


def summary_metrics(row: dict[str, Any], columns: list[str]) -> dict[str, float]:
    """The MLflow metrics of one table row: COLUMN_mean, _std, _ci_low, _ci_high, and where the
    column is tested, COLUMN_p_vs_hypermask and COLUMN_p_holm_vs_hypermask; NaN (undefined:
    fewer than 2 seeds, a metric a method cannot compute) left out, as the per-run metrics."""
    out = {}
    for col in columns:
        keys = [f"{col}_{s}" for s in STATS] + [f"{col}_p_vs_hypermask", f"{col}_p_holm_vs_hypermask"]
        for k in keys:
            v = row.get(k)
            if v is not None and isinstance(v, (int, float)) and not math.isnan(float(v)):
                out[k] = float(v)
    found, expected = str(row["seeds"]).split("/")
    out["seeds_found"], out["seeds_expected"] = float(found), float(expected)
    return out


def write_summaries(
    uri: str, rows: list[dict[str, Any]], columns: list[str], runs: dict[str, list[dict]]
) -> int:
    """Create or update the parent run of every row (a table row as a dict) and nest its seeds'
    runs under it; returns how many parent runs were written. Rows whose benchmark has no MLflow
    experiment in this store (runs trained with --no-tracking, another store) are skipped."""
    from mlflow.entities import Metric, RunTag

    client = prepare_store(uri)
    written = 0
    now = int(time.time() * 1000)
    for row in rows:
        exp = _retry(client.get_experiment_by_name, row["benchmark"])
        if exp is None:
            continue
        key = f"{row['benchmark']}/{row['method']}"
        found = _retry(
            client.search_runs,
            [exp.experiment_id],
            filter_string=f"tags.`{SUMMARY_TAG}` = '{key}'",
            max_results=1,
        )
        tags = {
            SUMMARY_TAG: key,
            "benchmark": str(row["benchmark"]),
            "method": str(row["method"]),
            "protocol": PROTOCOL,
            "seeds": str(row["seeds"]),
            "mlflow.note.content": f"{row['method']} on {row['benchmark']}: the table's figures over its seeds "
            f"({row['seeds']}); each seed's run is nested under this one",
        }
        if found:
            parent = found[0].info.run_id
        else:
            parent = _retry(
                client.create_run,
                exp.experiment_id,
                run_name=str(row["method"]),
                tags={"mlflow.user": run_user(), **tags},
            ).info.run_id
        metrics = [Metric(k, v, now, 0) for k, v in summary_metrics(row, columns).items()]
        for i in range(0, len(metrics), 200):
            _retry(client.log_batch, parent, metrics=metrics[i : i + 200])
        _retry(client.log_batch, parent, tags=[RunTag(k, v) for k, v in tags.items()])
        current = {m.get("mlflow_run_id") for m in runs.get(row["experiment"], [])} - {None, parent}
        for child in current:
            try:
                _retry(client.set_tag, child, "mlflow.parentRunId", parent)
            except Exception:  # the seed's run is in another store: it stays where it is
                pass
        # a seed's earlier run (before a rerun) is not in the table: it leaves the parent
        nested = _retry(
            client.search_runs,
            [exp.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
            max_results=1000,
        )
        for r in nested:
            if r.info.run_id not in current:
                _retry(client.delete_tag, r.info.run_id, "mlflow.parentRunId")
        _retry(client.set_terminated, parent, "FINISHED")
        written += 1
    return written
