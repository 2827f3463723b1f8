"""Paper tables: one row per experiment of a suite, mean +/- std over seeds.

Written to RESULTS/tables/SUITE.{csv,md,tex} with figures under RESULTS/figures/SUITE/.
The std is the population std (ddof = 0), as the reference reports. Settings without the
task id (entropy task inference, FeCAM class-incremental) get columns when computed. A seed whose run is
missing or unfinished is listed in the row (`seeds` counts found/expected, `missing`
names them), never silently averaged away.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ParamsFile, experiment_config
from .plots import write_curves, write_heatmap
from .storage import atomic_write_text
from .runs import read_metrics, run_dir

METRICS = [("average_accuracy", "accuracy"), ("bwt", "BWT"), ("fwt", "FWT"), ("forgetting", "forgetting")]
# Settings without the task id (columns appear when some run of the suite computed them).
SETTING_COLUMNS = [
    ("entropy", "final_task_accuracy", "entropy task"),
    ("entropy", "final_class_accuracy", "entropy class"),
    ("fecam", "final_accuracy", "FeCAM CIL"),
]


def setting_value(run: dict, setting: str, key: str) -> float | None:
    """A run's result in a setting: computed during training (metrics.json) or afterwards by
    `hypermask evaluate` (eval_SETTING.json beside it)."""
    if setting in run:
        return run[setting].get(key)
    extra = run.get("_posthoc", {}).get(setting)
    return extra.get(key) if extra else None


def suite_table(params: ParamsFile, suite: str, results: Path) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    rows, runs = [], {}
    for name in params.suites[suite]:
        cfg = experiment_config(params, name)
        found, missing = [], []
        for seed in cfg.seeds:
            paths = run_dir(results, name, seed)
            m, why = read_metrics(paths, name, seed)
            if m is None and why != "missing":
                print(f"warning: {paths.metrics}: {why}; counted as a missing seed", file=sys.stderr)
            if m is not None:
                m["_posthoc"] = {}
                for setting in ("entropy", "fecam"):
                    try:
                        m["_posthoc"][setting] = json.loads((paths.root / f"eval_{setting}.json").read_text())
                    except (OSError, ValueError):
                        pass
            (found if m is not None else missing).append(m if m is not None else seed)
        runs[name] = found
        row = {
            "experiment": name,
            "method": cfg.method,
            "seeds": f"{len(found)}/{len(cfg.seeds)}",
            "missing": " ".join(str(s) for s in missing),
        }
        for key, _ in METRICS:
            vals = np.array([m[key] for m in found], dtype=float)
            row[f"{key}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{key}_std"] = float(vals.std(ddof=0)) if len(vals) else np.nan
        for setting, key, _ in SETTING_COLUMNS:
            vals = np.array([v for m in found if (v := setting_value(m, setting, key)) is not None], dtype=float)
            row[f"{setting}_{key}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{setting}_{key}_std"] = float(vals.std(ddof=0)) if len(vals) else np.nan
        ref = cfg.reference.get("average_accuracy")
        row["reference_accuracy"] = ref if ref is not None else np.nan
        row["difference"] = row["average_accuracy_mean"] - ref if ref is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows), runs


def _pm(mean: float, std: float, tex: bool = False) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.2f} $\\pm$ {std:.2f}" if tex else f"{mean:.2f} ± {std:.2f}"


def _display(df: pd.DataFrame, tex: bool) -> pd.DataFrame:
    out = df[["experiment", "method", "seeds", "missing"]].copy()
    for key, label in METRICS:
        out[label] = [_pm(m, s, tex) for m, s in zip(df[f"{key}_mean"], df[f"{key}_std"])]
    for setting, key, label in SETTING_COLUMNS:
        col = f"{setting}_{key}"
        if df[f"{col}_mean"].notna().any():
            out[label] = [_pm(m, s, tex) for m, s in zip(df[f"{col}_mean"], df[f"{col}_std"])]
    out["reference"] = ["" if np.isnan(v) else f"{v:.2f}" for v in df["reference_accuracy"]]
    out["difference"] = ["" if np.isnan(v) else f"{v:+.2f}" for v in df["difference"]]
    return out


def provenance(runs: dict[str, list[dict]]) -> str:
    """Where a table's numbers came from: CPU, threads, device, torch, commit and lock of its runs.
    Results depend on all of these (float reductions follow the CPU kernels and thread count)."""
    found = [m for ms in runs.values() for m in ms]
    if not found:
        return "No finished runs."

    def values(key: str, width: int | None = None) -> str:
        vals = sorted({str(m.get(key, "unknown"))[:width] for m in found})
        return " / ".join(vals)

    return (f"{len(found)} runs on {values('cpu')} ({values('device')}, {values('torch_threads')} threads), "
            f"torch {values('torch_version')}, Python {values('python_version')}, commit {values('git_commit', 10)}, "
            f"lock {values('environment_lock', 12)}")


def write_suite(params: ParamsFile, suite: str, results: Path) -> pd.DataFrame:
    df, runs = suite_table(params, suite, results)
    tables = results / "tables"
    atomic_write_text(tables / f"{suite}.csv", df.to_csv(index=False, float_format="%.4f"))
    md = _display(df, tex=False)
    header = (f"# Suite `{suite}`: mean ± population std over seeds (accuracy, BWT, FWT, forgetting in %)\n\n"
              f"Produced by `hypermask tables {suite}` from {provenance(runs)}.\n\n")
    atomic_write_text(tables / f"{suite}.md", header + md.to_markdown(index=False) + "\n")
    tex = _display(df, tex=True)
    tex["experiment"] = tex["experiment"].str.replace("_", r"\_")
    atomic_write_text(tables / f"{suite}.tex", tex.to_latex(index=False, escape=False, column_format="lll" + "r" * 7))
    figures = results / "figures" / suite
    for name, found in runs.items():
        if not found:
            continue
        A = np.mean([np.array(m["accuracy_matrix"]) for m in found], axis=0)
        title = f"{name}: mean over {len(found)} seeds"
        write_heatmap(figures / f"{name}_accuracy_matrix.png", A, title)
        write_curves(figures / f"{name}_accuracy_curves.png", A, title)
    return df
