"""The statistics of the comparison tables: over seeds, the mean, the sample standard deviation
(ddof 1), the 95% confidence interval of the mean (Student t), and the paired t-test between
two methods over the seeds they share. Seeds pair two methods' runs: a seed fixes the task
stream (permutations, class order, validation split), the initialisation and the batches."""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95  # confidence level of the intervals
ALPHA = 0.05  # significance level of the paired tests


def describe(values: list[float]) -> dict[str, float]:
    """mean, std (ddof 1), ci_low, ci_high (95%, Student t with n - 1 degrees of freedom);
    std and the interval are NaN for fewer than 2 values."""
    from scipy import stats

    a = np.asarray(values, dtype=float)
    n = len(a)
    nan = float("nan")
    if n == 0:
        return {"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan}
    mean = float(a.mean())
    if n < 2:
        return {"mean": mean, "std": nan, "ci_low": nan, "ci_high": nan}
    std = float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def paired_p(a: dict[int, float], b: dict[int, float]) -> float:
    """Two-sided p-value of the paired t-test of a against b over the seeds both have (scipy's
    ttest_rel). NaN with fewer than 2 shared seeds; 1.0 where every paired difference is 0 and
    0.0 where they are all equal and non-zero (scipy leaves both undefined)."""
    from scipy import stats

    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        return float("nan")
    d = np.array([a[s] - b[s] for s in shared], dtype=float)
    if np.all(d == 0):
        return 1.0
    if np.all(d == d[0]):
        return 0.0
    return float(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue)
