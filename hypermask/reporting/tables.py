"""Comparison tables of a suite, laid out as the paper's: one row per method, one column per
benchmark, mean +/- sample std over seeds, and the seeds found/expected in each cell.

RESULTS/tables/SUITE.csv holds one row per (benchmark, method) with every figure (machine
readable): per metric its mean, sample std (ddof 1), 95% confidence interval (Student t) and
the p-value of the paired t-test against HyperMask over the seeds both have
(hypermask/reporting/stats.py). SUITE.md and SUITE.tex hold one table per metric: average accuracy,
BWT, forgetting, the settings without the task id where some method computed them ("n/a"
where a method cannot), the parameters each method trains and the memory it keeps to serve
its tasks (from its checkpoint's tensors), and the training step's cost. Marks: † where a
method differs from HyperMask (paired t-test, p < 0.05); bold for every continual learner not
significantly worse than the column's best (the bounds, joint and independent, are never
marked). Figures under RESULTS/figures/SUITE/: per benchmark, every method's mean accuracy
over the tasks seen after each task, and average accuracy (mean, 95% CI) against the bytes
each method stores; per experiment, the mean accuracy matrix. A seed whose run is missing or
unfinished lowers that cell's count only, never silently averaged; so does a run trained with
other settings than params.yaml gives now (its metrics.json's config against the experiment's
training fingerprint): Snakemake reruns such runs from its own records, but results restored
without them (`dvc pull`, a copy) would otherwise be averaged as if current.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypermask.config import ConfigError, ExperimentConfig, ParamsFile, experiment_config, split_name
from hypermask.evaluation.settings import SETTINGS
from hypermask.methods import METHODS, of_family
from hypermask.records.runs import read_evaluation, read_metrics, run_dir, stale_keys
from hypermask.records.storage import FileSet, complete_pending
from hypermask.reporting.plots import (
    method_styles,
    write_axis_figure,
    write_heatmap,
    write_memory_figure,
    write_method_curves,
    write_per_task,
)
from hypermask.reporting.stats import ALPHA, describe, holm, paired_p

METRICS = [("average_accuracy", "accuracy"), ("bwt", "BWT"), ("fwt", "FWT"), ("forgetting", "forgetting")]
# Settings without the task id: (setting, key in metrics.json, column prefix, title)
SETTING_COLUMNS = [(n, key, col, title) for n, s in SETTINGS.items() for key, col, title in s.columns]


@dataclass(frozen=True)
class Table:
    column: str  # prefix of the csv columns (_mean, _std)
    title: str
    best: str | None  # "max", "min" or None (no best marked, no test: costs)
    digits: int = 2
    spread: bool = True  # the cell shows "± std"


TABLES = [
    Table("average_accuracy", "Average accuracy after the last task (%)", "max"),
    Table("bwt", "Backward transfer, BWT (%)", "max"),
    Table("forgetting", "Forgetting (%)", "min"),
    Table(
        "class_il",
        "Class-incremental, no task id: class accuracy over all classes seen (%; the class-incremental "
        "methods' own head, the others' class under the task inferred by entropy)",
        "max",
    ),
    *[Table(col, title, "max") for _, _, col, title in SETTING_COLUMNS],
    Table("trained_parameters", "Parameters trained over all tasks (thousands)", None, 1, spread=False),
    Table(
        "memory_kib",
        "Memory kept to serve all tasks (KiB, from the checkpoint's tensors)",
        None,
        1,
        spread=False,
    ),
    Table("ms_per_iteration", "Training step (ms per iteration, validation excluded)", None, 2),
]


def setting_value(run: dict, setting: str, key: str) -> float | None:
    """A run's result in a setting: computed during training (metrics.json) or afterwards by
    `hypermask evaluate` (eval_SETTING.json beside it)."""
    if setting in run:
        return run[setting].get(key)
    extra = run.get("_posthoc", {}).get(setting)
    return extra.get(key) if extra else None


def _runs(results: Path, cfg: ExperimentConfig) -> tuple[list[dict], list[int]]:
    found, missing = [], []
    name = cfg.name
    for seed in cfg.seeds:
        paths = run_dir(results, name, seed)
        m, why = read_metrics(paths, name, seed)
        if m is not None and (keys := stale_keys(m, cfg)):
            m, why = (
                None,
                (
                    f"trained with other settings than params.yaml gives now ({', '.join(keys[:4])}); "
                    f"rerun it: snakemake --forcerun {paths.metrics}"
                ),
            )
        if m is None:
            if why != "missing":
                print(f"warning: {paths.metrics}: {why}; counted as a missing seed", file=sys.stderr)
            missing.append(seed)
            continue
        m["_seed"] = seed
        m["_posthoc"] = {}
        for setting in sorted({s for s, *_ in SETTING_COLUMNS}):
            ev, why = read_evaluation(paths.root / f"eval_{setting}.json", cfg)
            if ev is not None:
                m["_posthoc"][setting] = ev
            elif why != "missing":
                print(
                    f"warning: {paths.root / f'eval_{setting}.json'}: {why}; not in the tables "
                    f"(hypermask evaluate {cfg.benchmark} --method {cfg.row} --seed {seed} --setting {setting})",
                    file=sys.stderr,
                )
        found.append(m)
    return found, missing


BOUNDS = of_family("bound")
REFERENCE = "hypermask"  # every method is tested against it


def _stat(row: dict, column: str, by_seed: dict[int, float]) -> None:
    d = describe(list(by_seed.values()))
    for k in ("mean", "std", "ci_low", "ci_high"):
        row[f"{column}_{k}"] = d[k]
    row[f"_{column}_seeds"] = by_seed


def suite_table(params: ParamsFile, suite: str, results: Path) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """One row per (benchmark, method) of the suite, and each experiment's finished runs."""
    rows, runs = [], {}
    for name in params.suite_experiments(suite):
        cfg = experiment_config(params, name)
        found, missing = _runs(results, cfg)
        runs[name] = found
        row: dict[str, Any] = {
            "experiment": name,
            "benchmark": cfg.benchmark,
            "method": cfg.row,
            "seeds": f"{len(found)}/{len(cfg.seeds)}",
            "missing": " ".join(str(s) for s in missing),
            "heads": METHODS[cfg.method].head,
            "class_incremental": METHODS[cfg.method].class_incremental,
            "family": METHODS[cfg.method].family,
        }
        for key, _ in METRICS:
            # an undefined metric (null: BWT of one task) is left out: "n/a", never bold or averaged
            _stat(row, key, {m["_seed"]: m[key] for m in found if m.get(key) is not None})
        for setting, key, col, _ in SETTING_COLUMNS:
            if setting in cfg.evaluation.settings or any(
                setting_value(m, setting, key) is not None for m in found
            ):
                _stat(
                    row,
                    col,
                    {m["_seed"]: v for m in found if (v := setting_value(m, setting, key)) is not None},
                )
            else:  # the method cannot (or this suite did not) evaluate without the task id
                _stat(row, col, {})
        # every method's class-incremental figure (one column, one test family): its own head's
        # over all seen classes where it has one, else its class under the entropy-inferred task
        own = "classil" if METHODS[cfg.method].class_incremental else "entropy"
        _stat(
            row,
            "class_il",
            {
                m["_seed"]: v
                for m in found
                if (v := setting_value(m, own, "final_class_accuracy")) is not None
            },
        )
        _stat(
            row,
            "trained_parameters",
            {
                m["_seed"]: m["memory"]["trained_parameters"] / 1000
                for m in found
                if "trained_parameters" in m.get("memory", {})
            },
        )
        _stat(row, "memory_kib", {m["_seed"]: m["memory"]["bytes"] / 1024 for m in found if "memory" in m})
        _stat(row, "ms_per_iteration", {m["_seed"]: 1000 * m["seconds_per_iteration"] for m in found})
        ref = cfg.reference.get("average_accuracy")
        row["reference_accuracy"] = ref if ref is not None else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    _tests(df)
    return df, runs


def _tests(df: pd.DataFrame) -> None:
    """Per tested table column (one benchmark, one metric), two families of paired t-tests, each
    corrected by Holm's procedure within the column (stats.holm):
    - against HyperMask (`_p_vs_hypermask` raw, `_p_holm_vs_hypermask` corrected; † where the
      corrected p < ALPHA): every other method of the column, bounds included;
    - against the column's best continual learner (`_best`): the best and every continual learner
      (not a bound) whose corrected p >= ALPHA, or whose rounded mean equals the best's."""
    for t in TABLES:
        col = t.column
        p_ref = pd.Series(np.nan, index=df.index)
        p_holm = pd.Series(np.nan, index=df.index)
        best = pd.Series(False, index=df.index)
        for _, sub in df.groupby("benchmark", sort=False) if len(df) else []:
            if t.best:
                ref = sub[sub["method"] == REFERENCE]
                raw = [
                    paired_p(r[f"_{col}_seeds"], ref.iloc[0][f"_{col}_seeds"])
                    if len(ref) and r["method"] != REFERENCE
                    else np.nan
                    for _, r in sub.iterrows()
                ]
                p_ref[sub.index] = raw
                p_holm[sub.index] = holm(raw)
            best[sub.index] = _best_of_column(sub, t)
        if t.best:
            df[f"{col}_p_vs_{REFERENCE}"] = p_ref
            df[f"{col}_p_holm_vs_{REFERENCE}"] = p_holm
            df[f"{col}_by_seed"] = [
                json.dumps({str(k): round(v, 4) for k, v in r.items()}) for r in df[f"_{col}_seeds"]
            ]
        df[f"{col}_best"] = best


def _best_of_column(sub: pd.DataFrame, t: Table) -> list[bool]:
    """The bold marks of one column (rows of `sub`, in order): the best continual learner, those
    whose rounded mean ties it, and those not significantly worse than it after Holm's correction
    over the column's tests against the best. NaN (fewer than 2 shared seeds): not marked."""
    col = t.column
    marks = [False] * len(sub)
    if not t.best:
        return marks
    learner = ~sub["method"].isin(BOUNDS) & sub[f"{col}_mean"].notna()
    cands = sub[learner]
    if len(cands) < 2:
        return marks
    sign = 1 if t.best == "max" else -1
    top = cands.loc[(sign * cands[f"{col}_mean"]).idxmax()]
    tied = [
        bool(
            r["method"] == top["method"]
            or round(r[f"{col}_mean"], t.digits) == round(top[f"{col}_mean"], t.digits)
        )
        for _, r in sub.iterrows()
    ]
    raw = [
        paired_p(r[f"_{col}_seeds"], top[f"_{col}_seeds"]) if ok and not tie else np.nan
        for (_, r), ok, tie in zip(sub.iterrows(), learner, tied)
    ]
    adjusted = holm(raw)
    return [
        bool(ok and (tie or (not np.isnan(p) and p >= ALPHA))) for ok, tie, p in zip(learner, tied, adjusted)
    ]


def _cell(
    mean: float, std: float, digits: int, seeds: str, bold: bool, tex: bool, with_std: bool, mark: str = ""
) -> str:
    if seeds.startswith("0/"):
        return f"missing ({seeds})"
    if np.isnan(mean):
        return "n/a"
    v = f"{mean:.{digits}f}"
    if bold:
        v = f"\\textbf{{{v}}}" if tex else f"**{v}**"
    if with_std and not np.isnan(std):
        v += f" $\\pm$ {std:.{digits}f}" if tex else f" ± {std:.{digits}f}"
    if mark:
        v += "$^\\dagger$" if tex else " †"
    found, expected = seeds.split("/")
    return v if found == expected else f"{v} ({seeds})"


def pivot(df: pd.DataFrame, table: Table, tex: bool = False) -> pd.DataFrame:
    """Rows: methods (suite order); columns: benchmarks; marks as computed by _tests."""
    methods = list(dict.fromkeys(df["method"]))
    benchmarks = list(dict.fromkeys(df["benchmark"]))
    out = pd.DataFrame(index=methods, columns=benchmarks, dtype=object).fillna("")
    pcol = f"{table.column}_p_holm_vs_{REFERENCE}"
    for _, r in df.iterrows():
        p = r[pcol] if pcol in r else np.nan
        out.loc[r["method"], r["benchmark"]] = _cell(
            r[f"{table.column}_mean"],
            r[f"{table.column}_std"],
            table.digits,
            r["seeds"],
            bool(r[f"{table.column}_best"]),
            tex,
            table.spread,
            "†" if (not np.isnan(p) and p < ALPHA) else "",
        )
    out.index.name = "method"
    return out


def _present(df: pd.DataFrame) -> list[Table]:
    return [t for t in TABLES if df[f"{t.column}_mean"].notna().any()]


def tuning_sentence(params: ParamsFile) -> str:
    """The caption's account of the hyperparameter studies, from params.yaml's `sweeps`."""
    sw = params.sweeps
    tuned = sorted(m for m, space in sw.spaces.items() if space)
    budget = (
        f"{sw.n_trials} trials per study"
        if sw.n_trials
        else f"{sw.trials_per_dimension} trials per searched dimension, at least {sw.min_trials}"
    )
    from hypermask.methods import METHODS

    classil = [m for m in tuned if m in METHODS and METHODS[m].study_objective == "classil"]
    by_class = (
        f" ({', '.join(classil)}, class-incremental: on their class accuracy over the validation samples of "
        "every task seen, without the task id, the figure their rows report)"
        if classil
        else ""
    )
    return (
        f" Tuning: one Optuna study per (benchmark, method) for {', '.join(tuned)}; {budget}, scored on the "
        f"validation split's average accuracy after the last task{by_class}, trained on tuning seed {sw.seed} (not an "
        "evaluation seed); the others have nothing to tune. The values these runs used are params.yaml's; the "
        "comment beside each names its study: under this rule for the methods whose code the verification "
        "round changed (GPM, SI, ER and HNET, on the digits benchmarks) and for the class-incremental methods "
        "(ER class-incremental, DER++, LwF) on the digits benchmarks, else under the earlier rule (8 trials "
        "per searched dimension, at least 16, on training seed 1); the class-incremental methods use their "
        "papers' values where no study of theirs ran (the Fashion-MNIST benchmarks)."
    )


def caption(df: pd.DataFrame, params: ParamsFile | None = None) -> str:
    """What every table of the suite assumes, from the method registry: the protocol, each
    method's head layout, what it is told at test time, the statistics, the marks and (with
    params) the tuning budget."""
    n = sorted({str(s).split("/")[1] for s in df["seeds"]})
    heads = "; ".join(f"{m}: {h}" for m, h in dict(zip(df["method"], df["heads"])).items())
    text = (
        "Task-incremental protocol: every method is told the task id at test time (it selects the head, mask "
        "or generated weights); the same target network, data, seeds, per-task budget and evaluation for every "
        f"method of a benchmark. Heads: {heads}."
    )
    if "class_il_mean" in df and df["class_il_mean"].notna().any():
        text += (
            " Class-incremental table: no task id at test time, the class predicted among every class of "
            "every task seen; the class-incremental methods (one head over all classes seen: "
            f"{', '.join(dict.fromkeys(df.loc[df['class_incremental'].astype(bool), 'method'])) or 'none'}) "
            "predict with that head, every other method by the task its models' lowest softmax entropy infers, "
            "then that task's class."
        )
    bounds = [m for m in dict.fromkeys(df["method"]) if m in BOUNDS]
    if bounds:
        text += (
            f" Bounds, not continual learners: {', '.join(bounds)} (joint trains on every task's data from the "
            "start, independent trains one network per task); their BWT and forgetting are not a continual "
            "learner's and they are never marked."
        )
    return (
        text
        + (
            f" Cells: mean ± sample std (ddof 1) over {' or '.join(n)} seeds (found/expected where fewer); the "
            "CSV adds the 95% confidence interval (Student t) and the raw and corrected p-values. †: differs "
            "from hypermask, paired t-test over the shared seeds, p < "
            f"{ALPHA} after Holm's correction over the column's tests against hypermask. Bold: the column's "
            "best continual learner and every one not significantly worse than it (paired t-test against "
            f"the best, Holm-corrected over the column's tests, p >= {ALPHA})."
        )
        + (tuning_sentence(params) if params is not None else "")
    )


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
    return (
        f"{len(found)} runs on {values('cpu')} ({values('device')}, {threads} thread{'' if threads == '1' else 's'}), "
        f"torch {values('torch_version')}, Python {values('python_version')}, commit {values('git_commit', 10)}"
        + (
            f" ({modified} of the runs with uncommitted changes to the code: metrics.json `uncommitted_code`)"
            if modified
            else ""
        )
        + f", lock {values('environment_lock', 12)}"
    )


def write_suite(
    params: ParamsFile, suite: str, results: Path, tracking_uri: str | None = None
) -> pd.DataFrame:
    """The suite's tables and figures, and with `tracking_uri` its parent runs in MLflow (one per
    row, its seeds nested: hypermask/tracking/summary.py); ConfigError (nothing written) where no
    run of it is finished: tables whose every cell is missing are not a result."""
    df, runs = suite_table(params, suite, results)
    if not any(runs.values()):
        raise ConfigError(
            f"{results / 'runs'}: no finished run of suite {suite!r} ({len(runs)} experiments, none with a "
            f"valid metrics.json); train them first: snakemake --cores 2 --config suite={suite} all_tables, "
            f"or hypermask train BENCHMARK --method METHOD --seed SEED --results {results}"
        )
    tables = results / "tables"
    public = df[[c for c in df.columns if not c.startswith("_")]]
    files = FileSet(set_journal(results, suite))  # the csv, md, tex and figures are replaced together
    files.add(tables / f"{suite}.csv", public.to_csv(index=False, float_format="%.4f"))
    md = [
        f"# Suite `{suite}`: mean ± sample std over seeds\n",
        f"Produced by `hypermask tables {suite}` from {provenance(runs)}.\n",
        caption(df, params) + "\n",
    ]
    tex = [f"% Suite {suite}: produced by `hypermask tables {suite}`. {caption(df, params)}"]
    for t in _present(df):
        md += [f"### {t.title}\n", pivot(df, t).to_markdown() + "\n"]
        p = pivot(df, t, tex=True)
        p.columns = [c.replace("_", r"\_") for c in p.columns]
        tex += [f"% {t.title}", p.to_latex(escape=False, column_format="l" + "r" * len(p.columns))]
    styles = method_styles(dict(zip(df["method"], df["family"])))
    axes = axis_tables(params, suite, df, results / "figures" / suite, styles, files.add)
    md += axes
    tex += [f"% {line}" for line in axes if line.startswith("###")]  # the axes' tables: in the md and csv
    files.add(tables / f"{suite}.md", "\n".join(md))
    files.add(tables / f"{suite}.html", html_tables(df, suite, provenance(runs), caption(df, params)))
    files.add(tables / f"{suite}.tex", "\n".join(tex))
    figures = results / "figures" / suite
    for benchmark in dict.fromkeys(df["benchmark"]):
        matrices = {}  # method -> (seeds, T, T)
        for name, found in runs.items():
            if found and split_name(name)[0] == benchmark:
                method = split_name(name)[1]
                matrices[method] = np.array([m["accuracy_matrix"] for m in found], dtype=float)
                write_heatmap(
                    figures / f"{benchmark}_{method}_accuracy_matrix.png",
                    matrices[method].mean(0),
                    f"{name}: mean over {len(found)} seeds",
                    files.add,
                )
        if matrices:
            seen_mean = {
                m: np.array([[A[t, : t + 1].mean() for t in range(A.shape[0])] for A in mats])
                for m, mats in matrices.items()
            }
            write_method_curves(
                figures / f"{benchmark}_methods.png",
                seen_mean,
                styles,
                f"{benchmark}: mean accuracy on the tasks seen (mean over seeds, 95% CI)",
                files.add,
            )
            write_per_task(
                figures / f"{benchmark}_per_task.png",
                matrices,
                styles,
                f"{benchmark}: each task's test accuracy as later tasks arrive (mean over seeds, 95% CI)",
                files.add,
            )
        for col, stem, what in (
            ("average_accuracy", "memory", "average accuracy"),
            ("class_il", "memory_class_il", "class-incremental accuracy (no task id)"),
        ):
            sub = df[
                (df["benchmark"] == benchmark) & df["memory_kib_mean"].notna() & df[f"{col}_mean"].notna()
            ]
            if len(sub):
                write_memory_figure(
                    figures / f"{benchmark}_{stem}.png",
                    {
                        r["method"]: (
                            1024 * r["memory_kib_mean"],
                            r[f"{col}_mean"],
                            r[f"{col}_ci_low"],
                            r[f"{col}_ci_high"],
                        )
                        for _, r in sub.iterrows()
                    },
                    styles,
                    f"{benchmark}: {what} (mean, 95% CI) against memory; dotted: the continual learners' "
                    "Pareto front",
                    files.add,
                    ylabel=f"{what} (%)",
                )
    files.commit()
    if tracking_uri is not None:
        from hypermask.tracking.summary import write_summaries

        n = write_summaries(tracking_uri, df.to_dict("records"), [t.column for t in TABLES], runs)
        print(
            f"{suite}: {n} parent runs (one per row, its seeds nested) in MLflow {tracking_uri}",
            file=sys.stderr,
        )
    return public


def axis_tables(params: ParamsFile, suite: str, df: pd.DataFrame, figures: Path, styles, sink) -> list[str]:
    """Per axis of the suite (params.yaml suites.S.axes) and base benchmark: a markdown table of
    every method's average accuracy (mean ± sample std) at each point, and its figure (mean, 95%
    CI) as figures/SUITE/axis_AXIS_BENCHMARK.png."""
    from hypermask.config.params import point_label

    out: list[str] = []
    for axis, series in params.axis_series(suite).items():
        key = params.suites[suite].axes[axis].key
        for base, points in series.items():
            labels = [point_label(v) for v, _ in points]
            cells = pd.DataFrame(
                index=list(dict.fromkeys(df["method"])), columns=labels, dtype=object
            ).fillna("")
            lines: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
            for m in cells.index:
                stats = []
                for label, (_, b) in zip(labels, points):
                    r = df[(df["benchmark"] == b) & (df["method"] == m)]
                    if len(r):
                        r0 = r.iloc[0]
                        cells.loc[m, label] = _cell(
                            r0["average_accuracy_mean"],
                            r0["average_accuracy_std"],
                            2,
                            r0["seeds"],
                            False,
                            False,
                            True,
                        )
                        stats.append(
                            (
                                r0["average_accuracy_mean"],
                                r0["average_accuracy_ci_low"],
                                r0["average_accuracy_ci_high"],
                            )
                        )
                    else:
                        stats.append((np.nan, np.nan, np.nan))
                if any(not np.isnan(v[0]) for v in stats):
                    a = np.array(stats, dtype=float)  # (points, 3): mean, ci_low, ci_high
                    lines[str(m)] = (a[:, 0], a[:, 1], a[:, 2])
            cells.index.name = "method"
            title = f"Axis `{axis}` ({key}) on {base}: average accuracy after the last task (%)"
            out += [f"### {title}\n", cells.to_markdown() + "\n"]
            if lines:
                write_axis_figure(
                    figures / f"axis_{axis}_{base}.png",
                    labels,
                    lines,
                    styles,
                    f"{base}: average accuracy (mean over seeds, 95% CI) along {key}",
                    key,
                    sink,
                )
    return out


def html_tables(df: pd.DataFrame, suite: str, source: str, text: str) -> str:
    """The suite's tables as one HTML page (the Snakemake report shows it): a heading and a table
    per metric, the marks as in the markdown (bold, †), the caption and where the numbers came
    from."""
    import html
    import re

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Suite {html.escape(suite)}</title><style>body{{font-family:sans-serif;max-width:60em;"
        "margin:1em auto}table{border-collapse:collapse;margin-bottom:1.5em}td,th{padding:2px 10px;"
        "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}"
        "</style></head><body>",
        f"<h1>Suite {html.escape(suite)}: mean ± sample std over seeds</h1>",
        f"<p>{html.escape(source)}</p><p>{html.escape(text)}</p>",
    ]
    for t in _present(df):
        table = pivot(df, t).map(lambda c: re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(str(c))))
        parts += [f"<h2>{html.escape(t.title)}</h2>", table.to_html(escape=False, border=0)]
    return "\n".join(parts + ["</body></html>\n"])


def set_journal(results: Path, suite: str) -> Path:
    """The journal of a suite's set of tables and figures (storage.FileSet)."""
    return results / "tables" / f".{suite}.set.json"


def read_suite_csv(results: Path, suite: str) -> pd.DataFrame:
    """A suite's table, after completing a set the last `hypermask tables` left half-renamed."""
    complete_pending(set_journal(results, suite))
    return pd.read_csv(results / "tables" / f"{suite}.csv", dtype={"missing": str})
