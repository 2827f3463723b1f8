"""What a comparison suite must show on real data, checked on its table (RESULTS/tables/SUITE.csv).
The method families come from the registry (hypermask.methods.METHODS); "beyond noise" means
a paired t-test over the seeds both methods share, p < 0.05 (hypermask/reporting/stats.py):

* the forget-free methods (WSN, SupSup, PackNet) and the independent networks have BWT exactly
  0.00 and forgetting 0.00;
* EWC, SI, HAT, GPM and ER forget less than fine-tuning (higher BWT);
* HAT's BWT is within 1 point of 0 (its near-binary gates freeze what earlier tasks use);
* joint training, task-conditioned (one head per task, every task's data), is not below any
  method that shares one network over all tasks (EWC, SI, GPM, ER, fine-tuning) beyond noise. Against
  methods with task-specific parameters (generated weights, masks) joint is no bound: one
  network of the same size must fit every task at once. Those comparisons are printed as
  notes, not checked;
* on permuted benchmarks the independent networks (one per task, the isolation bound) are not
  below joint beyond noise;
* class-incremental (no task id, every seen class in competition, the tables' `class_il`
  column): joint_ci (one head over all classes, every task's data) is not below any continual
  learner beyond noise; HyperMask (task inferred by entropy) against each class-incremental
  method is printed as a note, either way;
* the hypernetwork methods forget less than fine-tuning (higher BWT, beyond noise). (An absolute
  floor, BWT >= -3, held for HyperMask's hand-picked digits values; the values its study chose
  on validation accuracy trade some forgetting for accuracy, and the claims check what the
  methods promise, not a tuning choice.)

`hypermask claims SUITE` prints each claim with its numbers and exits 1 if one fails (CI runs
it after the compare_digits suite). A claim whose methods are not in a benchmark is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Set

import pandas as pd

from hypermask.methods import of_family
from hypermask.reporting.stats import ALPHA, paired_p

FORGET_FREE = (*of_family("forget_free"), "independent")
SHARED_NETWORK = of_family("shared_network")  # one set of weights for all tasks, as joint's
REGULARISED = ("ewc", "si", "hat", "gpm", "er")  # methods whose point is to forget less than fine-tuning
HAT_BWT = 1.0
HYPERNETWORKS = of_family("hypernetwork")
BOUNDS = of_family("bound")


def _seeds(r: pd.Series, col: str = "average_accuracy") -> dict[int, float]:
    return {int(k): float(v) for k, v in json.loads(r[f"{col}_by_seed"]).items()}


def below_beyond_noise(a: pd.Series, b: pd.Series, col: str = "average_accuracy") -> tuple[bool, float]:
    """(a's `col` (the average accuracy) is below b's beyond seed noise, the paired test's p-value)."""
    p = paired_p(_seeds(a, col), _seeds(b, col))
    return bool(a[f"{col}_mean"] < b[f"{col}_mean"] and p < ALPHA), p


def class_incremental(benchmark: str, by: dict[str, pd.Series]) -> list[tuple[bool | None, str]]:
    """The class-incremental table's claims (column `class_il`: no task id, every seen class in
    competition): joint_ci, one head over all classes trained on every task's data, is not below
    any continual learner beyond noise (checked); HyperMask against each class-incremental
    method, in either direction (notes: what the table supports, computed)."""
    out: list[tuple[bool | None, str]] = []
    have = {m: r for m, r in by.items() if "class_il_mean" in r and not pd.isna(r["class_il_mean"])}
    if "joint_ci" in have:
        j = have["joint_ci"]
        for m, r in have.items():
            if m in BOUNDS:
                continue
            below, p = below_beyond_noise(j, r, "class_il")
            out.append(
                (
                    not below,
                    f"{benchmark}: class-incremental, joint_ci ({j['class_il_mean']:.2f}) is not below {m} "
                    f"({r['class_il_mean']:.2f}) beyond noise (paired t-test p = {p:.3g})",
                )
            )
    if "hypermask" in have:
        h = have["hypermask"]
        for m, r in have.items():
            if m in BOUNDS or not bool(r.get("class_incremental", False)):
                continue
            below, p = below_beyond_noise(h, r, "class_il")
            above, _ = below_beyond_noise(r, h, "class_il")
            verdict = "below" if below else "above" if above else "not different from"
            out.append(
                (
                    None,
                    f"{benchmark}: class-incremental, hypermask with the task inferred by entropy "
                    f"({h['class_il_mean']:.2f}) is {verdict} {m} ({r['class_il_mean']:.2f}) beyond noise "
                    f"(paired t-test p = {p:.3g})",
                )
            )
    return out


def check(df: pd.DataFrame, permuted: Set[str] = frozenset()) -> list[tuple[bool | None, str]]:
    """(holds, what) for every claim that applies to the table's rows; holds None: a note.
    `permuted`: the benchmarks of the permuted scenario."""
    out = []
    for benchmark, rows in df.groupby("benchmark", sort=False):
        by = {r["method"]: r for _, r in rows.iterrows() if str(r["seeds"]).split("/")[0] != "0"}
        for m in FORGET_FREE:
            if m in by:
                bwt, fg = by[m]["bwt_mean"], by[m]["forgetting_mean"]
                out.append(
                    (
                        bwt == 0.0 and fg == 0.0,
                        f"{benchmark}: {m} BWT {bwt:.2f} and forgetting {fg:.2f} are exactly 0",
                    )
                )
        if "finetune" in by:
            for m in REGULARISED:
                if m in by:
                    a, b = by[m]["bwt_mean"], by["finetune"]["bwt_mean"]
                    out.append(
                        (a > b, f"{benchmark}: {m} forgets less than fine-tuning (BWT {a:.2f} > {b:.2f})")
                    )
        if "hat" in by:
            bwt = by["hat"]["bwt_mean"]
            out.append(
                (abs(bwt) <= HAT_BWT, f"{benchmark}: hat BWT {bwt:.2f} is within {HAT_BWT:.0f} point of 0")
            )
        if "joint" in by:
            j = by["joint"]
            for m, r in by.items():
                if m in ("joint", "independent"):
                    continue
                below, p = below_beyond_noise(j, r)
                if m in SHARED_NETWORK:
                    out.append(
                        (
                            not below,
                            f"{benchmark}: joint ({j['average_accuracy_mean']:.2f}) is not below {m} "
                            f"({r['average_accuracy_mean']:.2f}) beyond noise (paired t-test p = {p:.3g})",
                        )
                    )
                else:
                    out.append(
                        (
                            None,
                            f"{benchmark}: {m} ({r['average_accuracy_mean']:.2f}) vs joint "
                            f"({j['average_accuracy_mean']:.2f}): joint is "
                            + ("below it beyond noise" if below else "not below it beyond noise")
                            + f" (paired t-test p = {p:.3g})",
                        )
                    )
            if "independent" in by and benchmark in permuted:
                below, p = below_beyond_noise(by["independent"], j)
                out.append(
                    (
                        not below,
                        f"{benchmark}: independent ({by['independent']['average_accuracy_mean']:.2f}) is "
                        f"not below joint ({j['average_accuracy_mean']:.2f}) beyond noise (paired t-test p = {p:.3g})",
                    )
                )
        if "finetune" in by:
            ft = by["finetune"]
            for m in HYPERNETWORKS:
                # BWT is undefined for a single task (n/a, NaN mean): no claim about forgetting
                if m in by and not pd.isna(by[m]["bwt_mean"]) and not pd.isna(ft["bwt_mean"]):
                    p = paired_p(_seeds(by[m], "bwt"), _seeds(ft, "bwt"))
                    holds = by[m]["bwt_mean"] > ft["bwt_mean"] and p < ALPHA
                    out.append(
                        (
                            holds,
                            f"{benchmark}: {m} forgets less than fine-tuning beyond noise (BWT "
                            f"{by[m]['bwt_mean']:.2f} > {ft['bwt_mean']:.2f}, paired t-test p = {p:.3g})",
                        )
                    )
        out += class_incremental(benchmark, by)
    return out
