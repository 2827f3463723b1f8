"""What a comparison suite must show on real data, checked on its table (RESULTS/tables/SUITE.csv):

* the forget-free methods (WSN, SupSup, PackNet) have BWT exactly 0.00 and forgetting 0.00;
* EWC and SI forget less than fine-tuning (higher BWT);
* joint training is not below any method that shares one network over all tasks (EWC, SI,
  fine-tuning) by more than seed noise (two standard errors of the difference of the two
  means, from the population stds, + 0.5). Against methods with task-specific parameters
  (generated weights, masks) joint is no bound: one network of the same size must fit every
  task at once, while HNET on permuted digits, for one, gives each task its own weights. Those
  comparisons are printed as notes, not checked;
* HyperMask and HNET keep BWT >= -3.

`hypermask claims SUITE` prints each claim with its numbers and exits 1 if one fails (CI runs
it after the compare_digits suite). A claim whose methods are not in a benchmark is skipped.
"""

from __future__ import annotations

import math

import pandas as pd

FORGET_FREE = ("wsn", "supsup", "packnet")
SHARED_NETWORK = ("ewc", "si", "finetune")  # one set of weights for all tasks, as joint's
REGULARISED = ("ewc", "si")
HYPERNETWORKS = ("hypermask", "hnet")
BWT_FLOOR = -3.0


def _noise(a: pd.Series, b: pd.Series) -> float:
    n_a, n_b = (int(str(r["seeds"]).split("/")[0]) for r in (a, b))
    se = math.sqrt(a["average_accuracy_std"] ** 2 / max(1, n_a) + b["average_accuracy_std"] ** 2 / max(1, n_b))
    return 2 * se + 0.5


def check(df: pd.DataFrame) -> list[tuple[bool | None, str]]:
    """(holds, what) for every claim that applies to the table's rows; holds None: a note."""
    out = []
    for benchmark, rows in df.groupby("benchmark", sort=False):
        by = {r["method"]: r for _, r in rows.iterrows() if str(r["seeds"]).split("/")[0] != "0"}
        for m in FORGET_FREE:
            if m in by:
                bwt, fg = by[m]["bwt_mean"], by[m]["forgetting_mean"]
                out.append((bwt == 0.0 and fg == 0.0, f"{benchmark}: {m} BWT {bwt:.2f} and forgetting {fg:.2f} are exactly 0"))
        if "finetune" in by:
            for m in REGULARISED:
                if m in by:
                    a, b = by[m]["bwt_mean"], by["finetune"]["bwt_mean"]
                    out.append((a > b, f"{benchmark}: {m} forgets less than fine-tuning (BWT {a:.2f} > {b:.2f})"))
        if "joint" in by:
            j = by["joint"]
            for m, r in by.items():
                if m != "joint":
                    gap = r["average_accuracy_mean"] - j["average_accuracy_mean"]
                    holds = gap <= _noise(j, r)
                    if m not in SHARED_NETWORK:
                        out.append((None, f"{benchmark}: {m} ({r['average_accuracy_mean']:.2f}) vs joint "
                                    f"({j['average_accuracy_mean']:.2f}): "
                                    + ("within seed noise or below" if holds else "above joint beyond seed noise")))
                        continue
                    out.append((holds, f"{benchmark}: joint ({j['average_accuracy_mean']:.2f}) is not below "
                                f"{m} ({r['average_accuracy_mean']:.2f}) by more than seed noise ({_noise(j, r):.2f})"))
        for m in HYPERNETWORKS:
            if m in by:
                bwt = by[m]["bwt_mean"]
                out.append((bwt >= BWT_FLOOR, f"{benchmark}: {m} BWT {bwt:.2f} >= {BWT_FLOOR:.0f}"))
    return out
