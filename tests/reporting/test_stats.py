"""The tables' statistics (hypermask/reporting/stats.py) against closed-form hand computations, and the
tables' marks (hypermask/reporting/tables.py) on constructed suites: two methods that tie within noise,
and a column where raw p-values below 0.05 do not survive Holm's correction."""

import math

import numpy as np
import pandas as pd
import pytest

from hypermask.reporting.stats import ALPHA, describe, holm, paired_p
from hypermask.reporting.tables import TABLES, _stat, _tests, pivot


def test_mean_sample_std_and_student_t_interval_by_hand():
    d = describe([1.0, 2.0, 4.0])
    sd = math.sqrt(((4 / 3) ** 2 + (1 / 3) ** 2 + (5 / 3) ** 2) / 2)  # ddof 1
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # Student t's 0.975 quantile, 2 degrees of freedom, closed form
    half = t * sd / math.sqrt(3)
    assert d["mean"] == pytest.approx(7 / 3) and d["std"] == pytest.approx(sd)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    one = describe([5.0])
    assert one["mean"] == 5.0 and all(math.isnan(one[k]) for k in ("std", "ci_low", "ci_high"))


def test_paired_t_test_by_hand():
    a, b = {1: 1.0, 2: 2.0, 3: 4.0, 9: 7.0}, {1: 0.0, 2: 1.0, 3: 1.0}  # seed 9 is not shared
    # differences 1, 1, 3: mean 5/3, sd sqrt(4/3), t = 2.5 with 2 degrees of freedom, whose CDF is
    # 1/2 + t / (2 sqrt(2 + t^2))
    t = (5 / 3) / (math.sqrt(4 / 3) / math.sqrt(3))
    assert t == pytest.approx(2.5)
    p = 2 * (1 - (0.5 + t / (2 * math.sqrt(2 + t * t))))
    assert paired_p(a, b) == pytest.approx(p)
    assert paired_p(b, a) == pytest.approx(p)
    assert paired_p(a, a) == 1.0  # every difference 0
    assert paired_p({1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0}) == 0.0  # a constant non-zero difference
    assert math.isnan(paired_p({1: 1.0}, {1: 2.0}))  # one shared seed: no test


def _suite(accs: dict[str, list[float]], bwts: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for m, acc in accs.items():
        row = {"experiment": f"b/{m}", "benchmark": "b", "method": m, "seeds": f"{len(acc)}/{len(acc)}"}
        for t in TABLES:
            vals = {"average_accuracy": acc, "bwt": bwts[m]}.get(t.column, [])
            _stat(row, t.column, {i + 1: v for i, v in enumerate(vals)})
        rows.append(row)
    df = pd.DataFrame(rows)
    _tests(df)
    return df


def test_best_marks_every_learner_within_noise_of_the_best_and_never_a_bound():
    accs = {
        "hypermask": [90.0, 91.0, 92.0, 93.0, 94.0],
        "hnet": [89.8, 91.1, 91.9, 93.0, 94.0],  # 0.04 lower, paired differences -0.2 .. 0.1: a tie
        "wsn": [85.0, 86.1, 86.9, 88.0, 89.0],  # about 5 lower on every seed
        "joint": [99.0, 99.1, 99.0, 98.9, 99.0],  # a bound: higher, never marked
    }
    bwts = {
        "hypermask": [-1.0, -1.2, -0.8, -1.1, -0.9],
        "hnet": [-3.0, -2.9, -3.1, -3.0, -3.2],
        "wsn": [0.0] * 5,
        "joint": [2.0] * 5,
    }
    df = _suite(accs, bwts)
    best = dict(zip(df["method"], df["average_accuracy_best"]))
    assert best == {"hypermask": True, "hnet": True, "wsn": False, "joint": False}
    p = dict(zip(df["method"], df["average_accuracy_p_vs_hypermask"]))
    assert np.isnan(p["hypermask"]) and p["hnet"] > 0.05 and p["wsn"] < 0.05
    bwt_best = dict(zip(df["method"], df["bwt_best"]))
    assert bwt_best == {
        "hypermask": False,
        "hnet": False,
        "wsn": True,
        "joint": False,
    }  # joint's BWT: not a learner's
    table = pivot(df, next(t for t in TABLES if t.column == "average_accuracy"))
    assert table.loc["hnet", "b"].startswith("**91.96**") and not table.loc["hnet", "b"].endswith("†")
    assert table.loc["wsn", "b"] == f"87.00 ± {np.std(accs['wsn'], ddof=1):.2f} †"
    assert table.loc["joint", "b"].startswith("99.00 ±")
    cost = pivot(df, next(t for t in TABLES if t.column == "memory_kib"))
    assert cost.loc["hypermask", "b"] == "n/a"


def _naive_holm(p: list[float]) -> list[float]:
    """Holm's adjusted p-values by the textbook loop: sort, multiply the j-th smallest by m - j,
    carry the running maximum, cap at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - j) * p[i]))
        out[i] = running
    return out


def test_holm_by_hand_and_nan_is_no_test():
    assert holm([0.04, 0.01, 0.02]) == pytest.approx(
        [0.04, 0.03, 0.04]
    )  # 3 x 0.01; max(2 x 0.02, .03); max(.04, .04)
    got = holm([0.3, float("nan"), 0.001, 0.02, 0.5])
    assert math.isnan(got[1])
    assert [got[i] for i in (0, 2, 3, 4)] == pytest.approx(_naive_holm([0.3, 0.001, 0.02, 0.5]))
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert all(math.isnan(v) for v in holm([float("nan")]))


def test_dagger_and_bold_follow_holms_correction_within_a_column():
    """Three methods each about 1 point below HyperMask on every seed with a noisy margin: raw
    paired p-values between 0.01 and 0.05 (each alone would be marked †), which Holm's correction
    over the column's family decides mark by mark; bold likewise against the best learner."""
    base = [90.0, 91.0, 92.0, 93.0, 94.0]
    accs = {
        "hypermask": base,
        "hnet": [b - d for b, d in zip(base, [1.0, 2.2, 0.4, 1.5, 0.7])],
        "wsn": [b - d for b, d in zip(base, [0.9, 1.9, 0.5, 1.8, 0.3])],
        "supsup": [b - d for b, d in zip(base, [1.2, 2.0, 0.2, 1.4, 0.9])],
        "joint": [99.0, 99.1, 99.0, 98.9, 99.0],
    }
    df = _suite(accs, {m: [0.0] * 5 for m in accs})
    raw = {
        m: paired_p(dict(enumerate(accs[m], 1)), dict(enumerate(base, 1)))
        for m in ("hnet", "wsn", "supsup", "joint")
    }
    assert all(p < ALPHA for m, p in raw.items() if m != "joint") and any(0.01 < p for p in raw.values())
    adjusted = dict(zip(raw, _naive_holm(list(raw.values()))))
    assert any(raw[m] < ALPHA <= adjusted[m] for m in raw)  # the correction changes a mark here
    got = dict(zip(df["method"], df["average_accuracy_p_holm_vs_hypermask"]))
    for m in raw:
        assert got[m] == pytest.approx(adjusted[m])
    table = pivot(df, next(t for t in TABLES if t.column == "average_accuracy"))
    for m in raw:
        assert table.loc[m, "b"].endswith("†") == (adjusted[m] < ALPHA)
    # bold: HyperMask is the best learner; the three others tested against it, Holm over those three
    bold_adjusted = dict(
        zip(("hnet", "wsn", "supsup"), _naive_holm([raw["hnet"], raw["wsn"], raw["supsup"]]))
    )
    best = dict(zip(df["method"], df["average_accuracy_best"]))
    assert best["hypermask"] and not best["joint"]
    for m, p in bold_adjusted.items():
        assert best[m] == (p >= ALPHA)
