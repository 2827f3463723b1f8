"""Class-incremental evaluation with FeCAM on HyperMask's features (Goswami et al.,
"FeCAM: Exploiting the Heterogeneity of Class Distributions in Exemplar-Free Continual
Learning", NeurIPS 2023), as the HyperMask paper applies it.

For every learned task k: penultimate features of task k's training samples under mask
m_k give, per class of task k, a prototype (mean) and a covariance, shrunk (twice, as the
reference) and normalised to a correlation matrix. They are fitted once, right after task k is
learned, and kept (`STATS_ATTR` on the learner, carried in the run's checkpoints): FeCAM is
exemplar-free, a task's data is never seen again. (Refitting every task's statistics with the
final network on its stored training data would let a shared network use the old tasks' data:
fine-tuning reached 88.7% class-incremental accuracy on `digits_permuted` that way. For a
forget-free method, whose features under mask k do not change, both give the same.) A test sample is passed through every
task's mask; under mask k its L2-normalised features are compared with the normalised
prototypes of task k's classes by Mahalanobis distance; the class with the smallest distance
over all classes of all tasks wins. No task id is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from hypermask.config import EvaluationConfig, FeCAMConfig
    from hypermask.data.tasks import Task
    from hypermask.methods import EvalContext, Method, TaskInference


def shrink_cov(cov: Tensor, times: int = 1) -> Tensor:
    """FeCAM's shrinkage: cov + mean(diag) * I + mean(nonzero off-diagonal) * (1 - I)."""
    d = cov.shape[0]
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    for _ in range(times):
        diag_mean = cov.diagonal().mean()
        off = cov * (1 - eye)
        nonzero = off != 0
        off_mean = off.sum() / nonzero.sum().clamp(min=1)
        cov = cov + diag_mean * eye + off_mean * (1 - eye)
    return cov


def normalize_cov(cov: Tensor) -> Tensor:
    sd = cov.diagonal().sqrt()
    return cov / (sd[:, None] * sd[None, :])


@dataclass
class ClassStats:
    means: Tensor  # (C, D) prototypes of one task's classes
    precisions: Tensor  # (C, D, D) pseudo-inverses of their (shrunk, normalised) covariances


def fit_task(features: Tensor, labels: Tensor, n_classes: int, cfg: FeCAMConfig) -> ClassStats:
    """Per class of one task: the prototype and the precision of its (shrunk, normalised)
    covariance. A class whose statistics are not finite (a diverged network's features, or
    features that are all zero, whose correlation is 0/0) gets a prototype that matches nothing
    (NaN: every distance to it is NaN, never the nearest), not a failed run."""
    f = features.double()
    d = f.shape[1]
    means, precs = [], []
    for c in range(n_classes):
        fc = f[labels == c]
        cov = torch.cov(fc.T) if len(fc) > 1 else torch.zeros(d, d, dtype=f.dtype, device=f.device)
        cov = shrink_cov(cov, cfg.shrink_times)
        if cfg.normalize_covariance:
            cov = normalize_cov(cov)
        mean = fc.mean(0)
        if bool(torch.isfinite(cov).all()) and bool(torch.isfinite(mean).all()):
            means.append(mean)
            precs.append(torch.linalg.pinv(cov + 1e-8))  # + 1e-8: the reference's guard for the SVD
        else:
            means.append(torch.full((d,), float("nan"), dtype=f.dtype, device=f.device))
            precs.append(torch.eye(d, dtype=f.dtype, device=f.device))
    return ClassStats(torch.stack(means), torch.stack(precs))


def mahalanobis(features: Tensor, stats: ClassStats, normalize: bool) -> Tensor:
    """(N, D) features -> (N, C) squared Mahalanobis distances to each class of one task."""
    x = features.double()
    mu = stats.means
    if normalize:
        x, mu = F.normalize(x, dim=-1), F.normalize(mu, dim=-1)
    diff = x[:, None, :] - mu[None, :, :]  # (N, C, D)
    return torch.einsum("ncd,cde,nce->nc", diff, stats.precisions, diff)


@torch.no_grad()
def task_features(learner: Method, ctx: EvalContext, task: Task, x_raw: Tensor, batch_size: int) -> Tensor:
    """Penultimate features of raw samples of `task` under the task's own mask."""
    out = [
        learner.logits(ctx, task.inputs(x_raw[i : i + batch_size]), task.index, features=True)
        for i in range(0, len(x_raw), batch_size)
    ]
    return torch.cat(out)


STATS_ATTR = "fecam_stats"  # on the learner: task -> ClassStats, fitted right after the task


def kept_stats(learner: Method) -> dict[int, ClassStats]:
    """The learner's FeCAM statistics by task (created empty)."""
    if not hasattr(learner, STATS_ATTR):
        object.__setattr__(learner, STATS_ATTR, {})
    stats: dict[int, ClassStats] = getattr(learner, STATS_ATTR)
    return stats


def stats_state(learner: Method) -> dict[str, dict[str, Tensor]]:
    """The kept statistics as a checkpoint entry (tensors on the CPU, task ids as strings)."""
    return {
        str(k): {"means": v.means.cpu(), "precisions": v.precisions.cpu()}
        for k, v in kept_stats(learner).items()
    }


def load_stats(learner: Method, state: dict[str, dict[str, Tensor]] | None, device: torch.device) -> None:
    """The statistics a checkpoint kept (none in older checkpoints: refitted when next evaluated)."""
    kept = kept_stats(learner)
    kept.clear()
    for k, v in (state or {}).items():
        kept[int(k)] = ClassStats(v["means"].to(device), v["precisions"].to(device))


@torch.no_grad()
def fecam_inference(
    learner: TaskInference, tasks: list[Task], seen: int, cfg: FeCAMConfig, batch_size: int
) -> dict[str, Any]:
    """Class-incremental accuracy over the test samples of tasks 0..seen-1, classes of all
    seen tasks in competition."""
    was_training = learner.training
    learner.eval()
    ids = list(range(seen))
    ctx = learner.eval_context(ids)
    kept = kept_stats(learner)
    for k in ids:  # a task not seen by an earlier evaluation: the one just learned
        if k not in kept:
            kept[k] = fit_task(
                task_features(learner, ctx, tasks[k], tasks[k].train.x, batch_size),
                tasks[k].train.y,
                tasks[k].n_classes,
                cfg,
            )
    stats = [kept[k] for k in ids]
    hits, n_total, per_task = 0, 0, []
    for j in ids:
        task, split = tasks[j], tasks[j].test
        ok = 0
        for i in range(0, len(split.y), batch_size):
            x = task.inputs(split.x[i : i + batch_size])
            feats = learner.all_task_outputs(ctx, ids, x, features=True)  # (K, N, D)
            pred_task, pred_cls = nearest_class(feats, stats, cfg.normalize_features)
            ok += int(((pred_task == j) & (pred_cls == split.y[i : i + batch_size])).sum())
        per_task.append(100.0 * ok / len(split.y))
        hits, n_total = hits + ok, n_total + len(split.y)
    learner.train(was_training)
    return {"accuracy": 100.0 * hits / n_total, "accuracy_per_task": per_task}


def nearest_class(feats: Tensor, stats: list[ClassStats], normalize: bool) -> tuple[Tensor, Tensor]:
    """feats (K, N, D): features under each task's mask. Returns (task, class within task) of
    the nearest prototype over all classes of all K tasks."""
    # K x (N, C_k); NaN (a diverged network's features or prototypes) is never the nearest
    dists = [
        mahalanobis(feats[k], stats[k], normalize).nan_to_num(nan=float("inf")) for k in range(len(stats))
    ]
    width = max(d.shape[1] for d in dists)
    padded = torch.stack([F.pad(d, (0, width - d.shape[1]), value=float("inf")) for d in dists])  # (K, N, W)
    flat = padded.permute(1, 0, 2).reshape(padded.shape[1], -1).argmin(1)  # over (task, class)
    return flat // width, flat % width


def fecam_setting(
    learner: TaskInference, tasks: list[Task], seen: int, ev: EvaluationConfig
) -> dict[str, Any]:
    """The `fecam` evaluation setting's entry point (hypermask/evaluation/settings.py)."""
    return fecam_inference(learner, tasks, seen, ev.fecam, ev.batch_size)
