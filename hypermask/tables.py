"""Comparison tables of a suite, laid out as the paper's: one row per method, one column per
benchmark, mean +/- std over seeds, the best value of each column in bold, and the seeds
found/expected in each cell.

RESULTS/tables/SUITE.csv holds one row per (benchmark, method) with every figure (machine
readable); SUITE.md and SUITE.tex hold one table per metric: average accuracy, BWT,
forgetting, the settings without the task id where some method computed them ("n/a" where a
method cannot), the memory each method keeps to serve its tasks (from its checkpoint's
tensors) and the training step's cost. Figures under RESULTS/figures/SUITE/: per benchmark,
every method's mean accuracy over the tasks seen after each task; per experiment, the mean
accuracy matrix. The std is the population std (ddof = 0), as the reference reports. A seed
whose run is missing or unfinished lowers that cell's count only, never silently averaged; so
does a run trained with other settings than params.yaml gives now (its metrics.json's config
against the experiment's training fingerprint): Snakemake reruns such runs from its own
records, but results restored without them (`dvc pull`, a copy) would otherwise be averaged
as if current.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ExperimentConfig, ParamsFile, experiment_config, split_name, training_fingerprint
from .methods import heads_of
from .plots import write_heatmap, write_method_curves
from .runs import read_metrics, run_dir
from .storage import atomic_write_text

METRICS = [("average_accuracy", "accuracy"), ("bwt", "BWT"), ("fwt", "FWT"), ("forgetting", "forgetting")]
# Settings without the task id: (setting, key in metrics.json, column prefix, title)
SETTING_COLUMNS = [
    ("entropy", "final_task_accuracy", "entropy_task", "Task inferred by entropy: task accuracy (%)"),
    ("entropy", "final_class_accuracy", "entropy_class", "Task inferred by entropy: class accuracy (%)"),
    ("fecam", "final_accuracy", "fecam", "Class-incremental, FeCAM (%)"),
    ("oneshot", "final_task_accuracy", "oneshot_task", "Task inferred one-shot (SupSup, per batch of one task): task accuracy (%)"),
    ("oneshot", "final_class_accuracy", "oneshot_class", "Task inferred one-shot (SupSup, per batch of one task): class accuracy (%)"),
]


@dataclass(frozen=True)
class Table:
    column: str  # prefix of the csv columns (_mean, _std)
    title: str
    best: str | None  # "max", "min" or None (no best marked)
    digits: int = 2


TABLES = [
    Table("average_accuracy", "Average accuracy after the last task (%)", "max"),
    Table("bwt", "Backward transfer, BWT (%)", "max"),
    Table("forgetting", "Forgetting (%)", "min"),
    *[Table(col, title, "max") for _, _, col, title in SETTING_COLUMNS],
    Table("memory_kib", "Memory kept to serve all tasks (KiB, from the checkpoint's tensors)", "min", 1),
    Table("ms_per_iteration", "Training step (ms per iteration, validation excluded)", None, 2),
]


def setting_value(run: dict, setting: str, key: str) -> float | None:
    """A run's result in a setting: computed during training (metrics.json) or afterwards by
    `hypermask evaluate` (eval_SETTING.json beside it)."""
    if setting in run:
        return run[setting].get(key)
    extra = run.get("_posthoc", {}).get(setting)
    return extra.get(key) if extra else None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def stale_keys(run: dict, cfg: ExperimentConfig) -> list[str]:
    """The settings keys whose value differs between the run's recorded config and `cfg`
    (empty: the run is current; also where the recorded config cannot be read back)."""
    try:
        then = training_fingerprint(ExperimentConfig.model_validate(run["config"]))
    except Exception:  # a config written by an older schema: not comparable, not flagged
        return []
    now = training_fingerprint(cfg)
    if then == now:
        return []
    a, b = _flat(json.loads(then)), _flat(json.loads(now))
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _runs(results: Path, cfg: ExperimentConfig) -> tuple[list[dict], list[int]]:
    found, missing = [], []
    name = cfg.name
    for seed in cfg.seeds:
        paths = run_dir(results, name, seed)
        m, why = read_metrics(paths, name, seed)
        if m is not None and (keys := stale_keys(m, cfg)):
            m, why = None, (f"trained with other settings than params.yaml gives now ({', '.join(keys[:4])}); "
                            f"rerun it: snakemake --forcerun {paths.metrics}")
        if m is None:
            if why != "missing":
                print(f"warning: {paths.metrics}: {why}; counted as a missing seed", file=sys.stderr)
            missing.append(seed)
            continue
        m["_posthoc"] = {}
        for setting in {s for s, *_ in SETTING_COLUMNS}:
            try:
                m["_posthoc"][setting] = json.loads((paths.root / f"eval_{setting}.json").read_text())
            except (OSError, ValueError):
                pass
        found.append(m)
    return found, missing


def _stat(row: dict, column: str, vals: list[float]) -> None:
    a = np.array(vals, dtype=float)
    row[f"{column}_mean"] = float(a.mean()) if len(a) else np.nan
    row[f"{column}_std"] = float(a.std(ddof=0)) if len(a) else np.nan


def suite_table(params: ParamsFile, suite: str, results: Path) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """One row per (benchmark, method) of the suite, and each experiment's finished runs."""
    rows, runs = [], {}
    for name in params.suite_experiments(suite):
        cfg = experiment_config(params, name)
        found, missing = _runs(results, cfg)
        runs[name] = found
        row = {"experiment": name, "benchmark": cfg.benchmark, "method": cfg.method,
               "seeds": f"{len(found)}/{len(cfg.seeds)}", "missing": " ".join(str(s) for s in missing),
               "heads": "one per task" if heads_of(cfg) > 1 else "shared"}
        for key, _ in METRICS:
            _stat(row, key, [m[key] for m in found])
        for setting, key, col, _ in SETTING_COLUMNS:
            if setting in cfg.evaluation.settings or any(setting_value(m, setting, key) is not None for m in found):
                _stat(row, col, [v for m in found if (v := setting_value(m, setting, key)) is not None])
            else:  # the method cannot (or this suite did not) evaluate without the task id
                row[f"{col}_mean"] = row[f"{col}_std"] = np.nan
        _stat(row, "memory_kib", [m["memory"]["bytes"] / 1024 for m in found if "memory" in m])
        _stat(row, "ms_per_iteration", [1000 * m["seconds_per_iteration"] for m in found])
        ref = cfg.reference.get("average_accuracy")
        row["reference_accuracy"] = ref if ref is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows), runs


def _cell(mean: float, std: float, digits: int, seeds: str, bold: bool, tex: bool, with_std: bool) -> str:
    if seeds.startswith("0/"):
        return f"missing ({seeds})"
    if np.isnan(mean):
        return "n/a"
    v = f"{mean:.{digits}f}"
    if bold:
        v = f"\\textbf{{{v}}}" if tex else f"**{v}**"
    if with_std:
        v += f" $\\pm$ {std:.{digits}f}" if tex else f" ± {std:.{digits}f}"
    found, expected = seeds.split("/")
    return v if found == expected else f"{v} ({seeds})"


def pivot(df: pd.DataFrame, table: Table, tex: bool = False) -> pd.DataFrame:
    """Rows: methods (suite order); columns: benchmarks; the best mean of a column in bold."""
    methods = list(dict.fromkeys(df["method"]))
    benchmarks = list(dict.fromkeys(df["benchmark"]))
    out = pd.DataFrame(index=methods, columns=benchmarks, dtype=object).fillna("")
    for b in benchmarks:
        sub = df[df["benchmark"] == b]
        means = sub[f"{table.column}_mean"].round(table.digits)
        best = None
        if table.best and means.notna().sum() > 1:
            best = means.max() if table.best == "max" else means.min()
        for _, r in sub.iterrows():
            m = r[f"{table.column}_mean"]
            out.loc[r["method"], b] = _cell(m, r[f"{table.column}_std"], table.digits, r["seeds"],
                                            best is not None and round(m, table.digits) == best, tex,
                                            table.column not in ("memory_kib",))
    out.index.name = "method"
    return out


def _present(df: pd.DataFrame) -> list[Table]:
    return [t for t in TABLES if df[f"{t.column}_mean"].notna().any()]


def caption(df: pd.DataFrame) -> str:
    multi = sorted(set(df.loc[df["heads"] == "one per task", "method"]))
    text = ("Task-incremental protocol: the task id selects the head, mask or generated weights at test time; "
            "the same target network, batches, budget and evaluation for every method of a benchmark.")
    if multi:
        text += (f" On split benchmarks {', '.join(multi)} have one output head per task (their weights carry no "
                 "task-specific part); the others share one head made task specific by their masks or weights.")
    if "joint" in set(df["method"]):
        text += " Joint trains on every task's data from the start: its BWT and forgetting are not a continual learner's."
    return text + " A cell with fewer seeds than expected shows (found/expected); bold: the best of the column."


def provenance(runs: dict[str, list[dict]]) -> str:
    """Where a table's numbers came from: CPU, threads, device, torch, commit and lock of its runs.
    Results depend on all of these (float reductions follow the CPU kernels and thread count)."""
    found = [m for ms in runs.values() for m in ms]
    if not found:
        return "No finished runs."

    def values(key: str, width: int | None = None) -> str:
        vals = sorted({str(m.get(key, "unknown"))[:width] for m in found})
        return " / ".join(vals)

    threads = values("torch_threads")
    modified = sum(1 for m in found if m.get("uncommitted_code"))
    return (f"{len(found)} runs on {values('cpu')} ({values('device')}, {threads} thread{'' if threads == '1' else 's'}), "
            f"torch {values('torch_version')}, Python {values('python_version')}, commit {values('git_commit', 10)}"
            + (f" ({modified} of the runs with uncommitted changes to the code: metrics.json `uncommitted_code`)"
               if modified else "")
            + f", lock {values('environment_lock', 12)}")


def write_suite(params: ParamsFile, suite: str, results: Path) -> pd.DataFrame:
    df, runs = suite_table(params, suite, results)
    tables = results / "tables"
    atomic_write_text(tables / f"{suite}.csv", df.to_csv(index=False, float_format="%.4f"))
    md = [f"# Suite `{suite}`: mean ± population std over seeds\n",
          f"Produced by `hypermask tables {suite}` from {provenance(runs)}.\n", caption(df) + "\n"]
    tex = [f"% Suite {suite}: produced by `hypermask tables {suite}`. {caption(df)}"]
    for t in _present(df):
        md += [f"**{t.title}**\n", pivot(df, t).to_markdown() + "\n"]
        p = pivot(df, t, tex=True)
        p.columns = [c.replace("_", r"\_") for c in p.columns]
        tex += [f"% {t.title}", p.to_latex(escape=False, column_format="l" + "r" * len(p.columns))]
    atomic_write_text(tables / f"{suite}.md", "\n".join(md))
    atomic_write_text(tables / f"{suite}.tex", "\n".join(tex))
    figures = results / "figures" / suite
    for benchmark in dict.fromkeys(df["benchmark"]):
        curves = {}
        for name, found in runs.items():
            if found and split_name(name)[0] == benchmark:
                A = np.mean([np.array(m["accuracy_matrix"]) for m in found], axis=0)
                curves[split_name(name)[1]] = np.array([A[t, : t + 1].mean() for t in range(len(A))])
                write_heatmap(figures / f"{benchmark}_{split_name(name)[1]}_accuracy_matrix.png", A,
                              f"{name}: mean over {len(found)} seeds")
        if curves:
            write_method_curves(figures / f"{benchmark}_methods.png", curves, f"{benchmark}: mean over seeds")
    return df
