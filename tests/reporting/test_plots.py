"""The figures' style, read back from the images: every method a colour and a marker of its own,
its family's hue, the bounds grey and dashed, the confidence bands of the tables' statistics,
the Pareto front by hand, and nothing cut at the canvas' edge."""

import numpy as np
import pytest
from matplotlib.image import imread

from hypermask.methods import METHODS
from hypermask.reporting.plots import (
    ACCURACY_RANGE,
    band,
    method_styles,
    pareto_dominated,
    write_memory_figure,
    write_method_curves,
    write_per_task,
)
from hypermask.reporting.stats import describe

FAMILIES = {m: r.family for m, r in METHODS.items()} | {"er_m1": "shared_network", "er_m20": "shared_network"}


def test_every_method_has_its_own_colour_and_marker_in_its_familys_hue():
    styles = method_styles(FAMILIES)
    colours = [tuple(round(c, 3) for c in s.colour) for s in styles.values()]
    assert len(set(colours)) == len(styles) and len({s.marker for s in styles.values()}) == len(styles)
    for m, s in styles.items():
        r, g, b, _ = s.colour
        if FAMILIES[m] == "bound":
            assert s.bound and s.linestyle == "--" and r == pytest.approx(g) == pytest.approx(b)
        else:
            assert not s.bound and s.linestyle == "-"
        hue = {"hypernetwork": b > max(r, g), "forget_free": g > max(r, b), "shared_network": r > b}
        assert hue.get(FAMILIES[m], True), (m, s.colour)


def test_band_is_the_tables_confidence_interval():
    v = np.array([[70.0, 80.0], [72.0, 83.0], [75.0, 79.0]])
    mean, low, high = band(v)
    for k in range(2):
        d = describe(list(v[:, k]))
        assert (mean[k], low[k], high[k]) == pytest.approx((d["mean"], d["ci_low"], d["ci_high"]))


def test_an_accuracy_band_is_drawn_inside_0_to_100():
    """Seeds at 100, 100, 96 (t interval 98.67 ± 5.74): the band drawn stops at 100, its mean and
    lower edge are the tables' (the CSV keeps the raw interval)."""
    v = np.array([[100.0, 2.0], [100.0, 0.0], [96.0, 1.0]])
    d = describe(list(v[:, 0]))
    assert d["ci_high"] > 100 and describe(list(v[:, 1]))["ci_low"] < 0
    mean, low, high = band(v, ACCURACY_RANGE)
    assert (mean[0], low[0], high[0]) == pytest.approx((d["mean"], d["ci_low"], 100.0))
    assert low[1] == 0.0 and high[1] == pytest.approx(describe(list(v[:, 1]))["ci_high"])


def test_pareto_front_by_hand():
    points = {"a": (10.0, 80.0), "b": (20.0, 85.0), "c": (30.0, 84.0), "d": (10.0, 79.0), "e": (5.0, 60.0)}
    assert pareto_dominated(points) == {"c", "d"}  # c: b has fewer bytes and more; d: a ties bytes


def _colour_present(img: np.ndarray, colour, tol: float = 0.02) -> bool:
    return bool((np.abs(img[..., :3] - np.asarray(colour[:3])) < tol).all(-1).any())


def _edges_blank(img: np.ndarray) -> bool:
    """Nothing drawn on the outermost pixels: no artist cut at the canvas' edge."""
    edges = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])[:, :3]
    return bool((edges > 0.98).all())


def test_figures_read_back_show_every_method_and_fit_the_canvas(tmp_path):
    methods = ["hypermask", "hnet", "wsn", "supsup", "hat", "ewc", "er", "derpp", "joint", "independent"]
    styles = method_styles({m: FAMILIES[m] for m in methods})
    rng = np.random.default_rng(0)
    T, S = 4, 3
    matrices = {m: np.clip(60 + 30 * rng.random((S, T, T)), 0, 100) for m in methods}
    curves = {
        m: np.array([[A[t, : t + 1].mean() for t in range(T)] for A in mats]) for m, mats in matrices.items()
    }
    long_title = "a benchmark with a long name: " + "mean accuracy on the tasks seen, " * 4
    write_method_curves(tmp_path / "curves.png", curves, styles, long_title)
    write_per_task(tmp_path / "per_task.png", matrices, styles, long_title)
    points = {m: (1e4 * (k + 1), 70 + k, 69 + k, 71 + k) for k, m in enumerate(methods)}
    points["hat"] = (1e9, 50.0, 48.0, 52.0)  # dominated: more bytes, less accuracy than every learner
    write_memory_figure(tmp_path / "memory.png", points, styles, long_title)
    for name in ("curves", "per_task", "memory"):
        img = imread(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name  # vector beside it
        assert _edges_blank(img), name
        for m in methods:
            assert _colour_present(img, styles[m].colour), (name, m)
    # the same figure twice gives the same bytes (no date in the PDF)
    first = (tmp_path / "memory.pdf").read_bytes()
    write_memory_figure(tmp_path / "memory.png", points, styles, long_title)
    assert (tmp_path / "memory.pdf").read_bytes() == first
