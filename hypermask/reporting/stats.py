"""The statistics of the comparison tables: over seeds, the mean, the sample standard deviation
(ddof 1), the 95% confidence interval of the mean (Student t), the paired t-test between two
methods over the seeds they share, and Holm's correction of a family of such tests (the tests
of one table column). Seeds pair two methods' runs: the same seed gives every method the same
task stream (on permuted benchmarks the permutations; the class order only where a benchmark
declares `class_order: seeded`, so on the digits and Fashion-MNIST split benchmarks the seed
changes no task; validation splits are fixed) and the same generator for initialisation and
batches. Paired is not identical: replay and joint training draw extra samples from the loop's
generator, so their batch orders part from the others' after the first step, and methods with
other parameters (masks, scores, hypernetworks) start from other values; the pairing removes
what the seed does fix in common."""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95  # confidence level of the intervals
ALPHA = 0.05  # significance level of the paired tests (family-wise, after Holm's correction)


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


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values of one family of tests (statsmodels' multipletests,
    method "holm"): the k-th smallest of m raw p-values becomes max over j <= k of
    min(1, (m - j + 1) p_(j)); rejecting where the adjusted p < ALPHA keeps the family-wise error
    rate at ALPHA. NaN entries (no test) stay NaN and are not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out.tolist()
