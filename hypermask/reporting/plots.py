"""Figures, in one style: each method a distinct colour *and* marker, its colour from its family's
hue (hypernetworks blue, forget-free masks green, isolation purple, shared networks orange to
red; the bounds grey and dashed), 95% confidence bands over seeds (Student t, as the tables),
integer task ticks, legends outside the data, titles wrapped to the figure's width. Every suite
figure is written as PNG (the report, MLflow, the docs) and PDF beside it (vector, for LaTeX),
atomically or with the set of files it belongs to.

Figures of a suite, per benchmark (hypermask/reporting/tables.py): the mean accuracy over the
tasks seen after each task (`_methods`), the accuracy on each task as later tasks arrive
(`_per_task`), and an accuracy against the bytes each method stores with its Pareto front
(`_memory`, `_memory_class_il`); per experiment, the mean accuracy matrix. Per run: its matrix.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hypermask.records.storage import atomic_write_bytes
from hypermask.reporting.stats import LEVEL

Sink = Callable[[Path, bytes], None]
# one colour map per family (hypermask/methods/record.py FAMILIES); shades spread within it
FAMILY_COLOURS = {
    "hypernetwork": "Blues",
    "forget_free": "Greens",
    "isolation": "Purples",
    "shared_network": "YlOrRd",
    "bound": "Greys",
}
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p", "d", "H", "8", "1", "2", "3", "4", "+")
WIDTH = 7.0  # inches: every suite figure, so they line up in a page


@dataclass(frozen=True)
class Style:
    colour: tuple[float, float, float, float]
    marker: str
    linestyle: Literal["-", "--"]
    bound: bool


def method_styles(families: dict[str, str]) -> dict[str, Style]:
    """A style per method (families: method -> family, in the order to draw): the family's hue,
    shades spread over its members, and a marker no other method of the figure has."""
    import matplotlib

    by_family: dict[str, list[str]] = {}
    for m, f in families.items():
        by_family.setdefault(f, []).append(m)
    styles = {}
    for k, (m, f) in enumerate(families.items()):
        members = by_family[f]
        cmap = matplotlib.colormaps[FAMILY_COLOURS.get(f, "Greys")]
        i, n = members.index(m), len(members)
        shade = 0.85 if n == 1 else 0.45 + 0.5 * i / (n - 1)  # light enough to see, never white
        styles[m] = Style(
            tuple(float(c) for c in cmap(shade)),  # type: ignore[arg-type]
            MARKERS[k % len(MARKERS)],
            "--" if f == "bound" else "-",
            f == "bound",
        )
    return styles


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(ax, text: str, width_in: float) -> None:
    """A title wrapped to the axes' width (never cut at the figure's edge)."""
    ax.set_title("\n".join(textwrap.wrap(text, max(20, int(width_in * 13)))), fontsize=9)


def _save(fig, path: Path, sink: Sink | None = None, vector: bool = True) -> None:
    """The figure as PNG at `path` and, with `vector`, as PDF beside it, through `sink(path, data)`
    (a storage.FileSet's add: written with the set it belongs to) or atomically on its own.
    bbox_inches="tight": the saved canvas holds every artist, the legends outside the axes too."""
    write = sink or atomic_write_bytes
    for fmt in ("png", "pdf") if vector else ("png",):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=_metadata(fmt))
        write(path.with_suffix(f".{fmt}"), buf.getvalue())
    _plt().close(fig)


def _metadata(fmt: str) -> dict:
    """No creation date in a PDF: the same figure gives the same bytes."""
    return {"CreationDate": None} if fmt == "pdf" else {}


ACCURACY_RANGE = (0.0, 100.0)  # an accuracy's range (%): a band drawn for one stays inside it


def band(
    values: np.ndarray, within: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over axis 0 (seeds): the mean and the 95% confidence interval of the mean (Student t,
    n - 1 degrees of freedom, as the tables); the interval collapses to the mean for one seed.
    `within` (a figure of a bounded quantity, ACCURACY_RANGE): the interval drawn is cut to that
    range (the t interval of seeds near 100% would reach past it; the tables' CSV keeps the raw one)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = v.mean(0)
    n = v.shape[0]
    if n < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + LEVEL / 2, n - 1) * v.std(0, ddof=1) / math.sqrt(n)
    low, high = mean - half, mean + half
    if within is not None:
        low, high = np.clip(low, *within), np.clip(high, *within)
    return mean, low, high


def _legend(fig, ax, styles: dict[str, Style], hollow: frozenset[str] | set[str] = frozenset()) -> None:
    """One legend entry per method, outside the axes on the right."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            color=s.colour,
            marker=s.marker,
            linestyle=s.linestyle,
            markerfacecolor="none" if m in hollow else s.colour,
            label=m + (" (dominated)" if m in hollow else ""),
        )
        for m, s in styles.items()
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
        frameon=False,
        ncol=1 if len(handles) <= 14 else 2,
        borderaxespad=0.0,
    )


def write_heatmap(
    path: Path, A: np.ndarray, title: str, sink: Sink | None = None, vector: bool = False
) -> None:
    """A[t, j]: test accuracy on task j after learning task t."""
    plt = _plt()
    T = A.shape[0]
    w = max(3.6, 1.4 + 0.6 * A.shape[1])
    fig, ax = plt.subplots(figsize=(w, 1.2 + 0.5 * T))
    im = ax.imshow(A, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    if A.size <= 400:
        for (r, c), v in np.ndenumerate(A):
            ax.text(
                c, r, f"{v:.1f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black"
            )
    ax.set_xticks(range(A.shape[1]), [str(j + 1) for j in range(A.shape[1])])
    ax.set_yticks(range(T), [str(t + 1) for t in range(T)])
    ax.set_xlabel("tested task")
    ax.set_ylabel("after learning task")
    _title(ax, title, w - 1.0)
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    _save(fig, path, sink, vector)


def write_method_curves(
    path: Path, curves: dict[str, np.ndarray], styles: dict[str, Style], title: str, sink: Sink | None = None
) -> None:
    """One line per method (curves: method -> (seeds, T) values): after each task, the mean test
    accuracy over the tasks seen so far, the mean over seeds with its 95% confidence band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.6))
    T = 1
    for m, values in curves.items():
        s = styles[m]
        mean, low, high = band(values, ACCURACY_RANGE)
        x = np.arange(1, len(mean) + 1)
        T = max(T, len(mean))
        ax.plot(x, mean, color=s.colour, marker=s.marker, linestyle=s.linestyle, markersize=4, lw=1.2)
        ax.fill_between(x, low, high, color=s.colour, alpha=0.18, lw=0)
    ax.set_xticks(range(1, T + 1))
    ax.set_xlabel("after learning task")
    ax.set_ylabel("mean test accuracy on the tasks seen (%)")
    _title(ax, title, WIDTH * 0.62)
    _legend(fig, ax, {m: styles[m] for m in curves})
    _save(fig, path, sink)


def write_per_task(
    path: Path,
    matrices: dict[str, np.ndarray],
    styles: dict[str, Style],
    title: str,
    sink: Sink | None = None,
) -> None:
    """One panel per task j (matrices: method -> (seeds, T, T) accuracy matrices): its test accuracy
    after learning task j, j+1, ..., T, one line per method with its 95% confidence band: where
    each method forgets, task by task."""
    plt = _plt()
    T = next(iter(matrices.values())).shape[1]
    cols = min(T, 5)
    rows = math.ceil(T / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 0.6 + 2.1 * rows), sharey=True, squeeze=False)
    for j in range(T):
        ax = axes[j // cols][j % cols]
        for m, A in matrices.items():
            s = styles[m]
            mean, low, high = band(A[:, j:, j], ACCURACY_RANGE)
            x = np.arange(j + 1, T + 1)
            ax.plot(x, mean, color=s.colour, marker=s.marker, linestyle=s.linestyle, markersize=3, lw=1)
            ax.fill_between(x, low, high, color=s.colour, alpha=0.15, lw=0)
        ax.set_xticks(range(1, T + 1))
        ax.set_xlim(0.5, T + 0.5)
        ax.set_title(f"task {j + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
        if j % cols == 0:
            ax.set_ylabel("test accuracy (%)", fontsize=8)
        if j // cols == rows - 1:
            ax.set_xlabel("after learning task", fontsize=8)
    for k in range(T, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("\n".join(textwrap.wrap(title, 100)), fontsize=9)
    fig.tight_layout()
    _legend(fig, axes[0][cols - 1], {m: styles[m] for m in matrices})
    _save(fig, path, sink)


def pareto_dominated(points: dict[str, tuple[float, float]]) -> set[str]:
    """The methods another one beats: no more bytes and at least the accuracy, one of them strictly
    (points: method -> (bytes, accuracy))."""
    return {
        m
        for m, (b, a) in points.items()
        if any(b2 <= b and a2 >= a and (b2 < b or a2 > a) for o, (b2, a2) in points.items() if o != m)
    }


def write_memory_figure(
    path: Path,
    points: dict[str, tuple[float, float, float, float]],
    styles: dict[str, Style],
    title: str,
    sink: Sink | None = None,
    ylabel: str = "average accuracy after the last task (%)",
) -> None:
    """One point per method: x the bytes it stores for all tasks (log scale), y its accuracy (the
    average after the last task unless `ylabel` says another) with its 95% confidence interval
    (points: method -> (bytes, mean, low, high)). The continual learners' Pareto front (the fewest
    bytes for the accuracy) is drawn as a step line; a learner off it is hollow and named
    "dominated" in the legend; the bounds are grey, outside the front."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.8))
    learners = {m: (p[0], p[1]) for m, p in points.items() if not styles[m].bound}
    dominated = pareto_dominated(learners)
    for m, (nbytes, mean, low, high) in points.items():
        s = styles[m]
        low, high = np.clip([low, high], *ACCURACY_RANGE)  # an accuracy's bar stays in [0, 100]
        err = None if np.isnan(low) else [[mean - low], [high - mean]]
        ax.errorbar(
            [nbytes],
            [mean],
            yerr=err,
            fmt=s.marker,
            color=s.colour,
            markerfacecolor="none" if m in dominated else s.colour,
            markersize=6,
            capsize=3,
            lw=1,
        )
    front = sorted((b, a) for m, (b, a) in learners.items() if m not in dominated)
    if len(front) > 1:
        xs, ys = zip(*front)
        ax.step(xs, ys, where="post", color="0.35", lw=0.8, linestyle=":", zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel("bytes stored for all tasks (log scale)")
    ax.set_ylabel(ylabel)
    _title(ax, title, WIDTH * 0.62)
    _legend(fig, ax, {m: styles[m] for m in points}, hollow=dominated)
    _save(fig, path, sink)


def write_axis_figure(
    path: Path,
    labels: list[str],
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    styles: dict[str, Style],
    title: str,
    xlabel: str,
    sink: Sink | None = None,
    ylabel: str = "average accuracy after the last task (%)",
) -> None:
    """A suite axis (params.yaml suites.S.axes): one line per method over the axis' values
    (series: method -> (mean, ci_low, ci_high) per value, NaN where a point has no run), the
    mean over seeds with its 95% confidence band; the values evenly spaced, labelled as declared."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.6))
    x = np.arange(len(labels))
    for m, (mean, low, high) in series.items():
        s = styles[m]
        ax.plot(x, mean, color=s.colour, marker=s.marker, linestyle=s.linestyle, markersize=5, lw=1.2)
        ax.fill_between(x, *np.clip([low, high], *ACCURACY_RANGE), color=s.colour, alpha=0.18, lw=0)
    ax.set_xticks(x, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _title(ax, title, WIDTH * 0.62)
    _legend(fig, ax, {m: styles[m] for m in series})
    _save(fig, path, sink)
