"""Figures: accuracy-matrix heatmaps and every method's accuracy curve per benchmark, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hypermask.records.storage import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, sink=None) -> None:
    """The figure as PNG to `path`, through `sink(path, data)` (a storage.FileSet's add: written
    with the set it belongs to) or atomically on its own."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    _plt().close(fig)
    (sink or atomic_write_bytes)(path, buf.getvalue())


def write_heatmap(path: Path, A: np.ndarray, title: str, sink=None) -> None:
    """A[t, j]: test accuracy on task j after learning task t."""
    plt = _plt()
    T = A.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * A.shape[1], 0.8 + 0.5 * T))
    im = ax.imshow(A, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    if A.size <= 400:
        for (r, c), v in np.ndenumerate(A):
            ax.text(
                c, r, f"{v:.1f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black"
            )
    ax.set_xlabel("tested task")
    ax.set_ylabel("after learning task")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    fig.tight_layout()
    _save(fig, path, sink)


def write_method_curves(path: Path, curves: dict[str, np.ndarray], title: str, sink=None) -> None:
    """One line per method: the mean accuracy over the tasks seen so far, after each task."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for method, y in curves.items():
        ax.plot(np.arange(len(y)), y, marker="o", markersize=3, label=method)
    ax.set_xlabel("after learning task")
    ax.set_ylabel("mean test accuracy on tasks seen (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, path, sink)


def write_memory_figure(
    path: Path,
    points: dict[str, tuple[float, float, float, float]],
    title: str,
    sink=None,
    ylabel: str = "average accuracy after the last task (%)",
) -> None:
    """One point per method: x the bytes it stores for all tasks (log scale), y its accuracy (the
    average after the last task unless `ylabel` says another) with its 95% confidence interval
    (points: method -> (bytes, mean, low, high))."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method, (nbytes, mean, low, high) in points.items():
        err = None if np.isnan(low) else [[mean - low], [high - mean]]
        ax.errorbar([nbytes], [mean], yerr=err, fmt="o", markersize=4, capsize=3, label=method)
        ax.annotate(method, (nbytes, mean), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("bytes stored for all tasks (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path, sink)
