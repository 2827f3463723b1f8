"""Continual-learning metrics from an accuracy matrix A (Lopez-Paz and Ranzato, "Gradient Episodic Memory for
Continual Learning", NeurIPS 2017, for BWT and FWT; Chaudhry et al., ECCV 2018, for forgetting).

A[t, j]: test accuracy (%) on task j after learning task t, for every j (tasks not yet
learned included). R[j]: accuracy of the randomly initialised model on task j.

Each metric declares when it is defined (`MIN_TASKS`): BWT, FWT and forgetting compare a task
with a later one, so a single task has none of them. An undefined metric is None, never 0.0:
metrics.json stores null, MLflow does not log it and the tables print "n/a", never bold and
never averaged.
"""

from __future__ import annotations

import numpy as np

# The fewest tasks each metric is defined for.
MIN_TASKS = {"average_accuracy": 1, "bwt": 2, "fwt": 2, "forgetting": 2}


def average_accuracy(A: np.ndarray) -> float:
    """mean_j A[T-1, j]: the headline number."""
    return float(np.mean(A[-1]))


def backward_transfer(A: np.ndarray) -> float | None:
    """1/(T-1) sum_{j<T-1} (A[T-1, j] - A[j, j]); None for one task."""
    T = A.shape[0]
    if T < MIN_TASKS["bwt"]:
        return None
    return float(np.mean([A[T - 1, j] - A[j, j] for j in range(T - 1)]))


def forward_transfer(A: np.ndarray, R: np.ndarray) -> float | None:
    """1/(T-1) sum_{j>=1} (A[j-1, j] - R[j]); None for one task."""
    T = A.shape[0]
    if T < MIN_TASKS["fwt"]:
        return None
    return float(np.mean([A[j - 1, j] - R[j] for j in range(1, T)]))


def forgetting(A: np.ndarray) -> float | None:
    """1/(T-1) sum_{j<T-1} (max_{j<=t<T-1} A[t, j] - A[T-1, j]) (Chaudhry et al., ECCV 2018): the
    drop from the best accuracy task j had *after it was learned*; rows before task j (an
    untrained head or mask evaluated on it) do not count. None for one task."""
    T = A.shape[0]
    if T < MIN_TASKS["forgetting"]:
        return None
    return float(np.mean([A[j : T - 1, j].max() - A[T - 1, j] for j in range(T - 1)]))


def summary(A: np.ndarray, R: np.ndarray) -> dict[str, float | None]:
    return {
        "average_accuracy": average_accuracy(A),
        "bwt": backward_transfer(A),
        "fwt": forward_transfer(A, R),
        "forgetting": forgetting(A),
    }


def shown(value: float | None, digits: int = 2) -> str:
    """A metric as the console and the figures print it: "n/a" where it is undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"
