"""Sources (raw datasets) + scenarios (permuted, split) -> a stream of tasks.

Every source here fits in device memory as uint8 (the largest, TinyImageNet, is 1.2 GB;
one of its tasks 30 MB), so the images live on the training device, batches are cut by
indexing, and conversion, augmentation and normalisation run on the device for the whole
batch: no DataLoader, no worker processes, no per-sample Python.

Reference behaviour reproduced (the authors' datasets.py): validation = the first N training
samples of a task; Permuted MNIST pads 28x28 to 32x32 and permutes all tasks (task 0
included); inputs are in [0, 1] unless the source's reference pipeline normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hypermask.config import ConfigError, DataConfig
from hypermask.data.sources import IMAGENET_STATS, MNIST_STATS, RawData, load_source


# --------------------------------------------------------------------------- tasks
@dataclass
class Split:
    x: Tensor  # raw images, uint8 (or float in [0, 1]), (N, C, H, W); Task.inputs makes model inputs
    y: Tensor  # int64 labels local to the task, 0..k-1


@dataclass
class Task:
    index: int
    classes: list[int]  # the source's class ids, in the order of the local labels
    train: Split
    val: Split
    test: Split
    perm: Tensor | None = None  # permuted scenario: pixel permutation of the flattened padded image
    pad: int = 0  # zero border added per batch (stored images stay unpadded: no padded copy)
    augment: str | None = None  # None, "crop" (grey) or "crop_flip" (colour)
    mean: Tensor | None = None  # normalisation after augmentation, shape (1, C, 1, 1)
    std: Tensor | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def inputs(self, x: Tensor, train: bool = False, gen: torch.Generator | None = None) -> Tensor:
        """Model inputs from raw images: to [0, 1], augment (train only), normalise, permute."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.pad:
            x = torch.nn.functional.pad(x, (self.pad,) * 4)
        if train and self.augment is not None:
            x = random_crop(x, 4, gen)
            if self.augment == "crop_flip":
                x = random_hflip(x, gen)
        if self.mean is not None:
            assert self.std is not None  # set together
            x = (x - self.mean) / self.std
        if self.perm is not None:
            x = x.flatten(1).index_select(1, self.perm)  # the same copy as x[:, perm], 4x faster on a CPU
        return x


def random_crop(x: Tensor, pad: int, gen: torch.Generator | None) -> Tensor:
    """torchvision's RandomCrop(size, padding=pad) for a whole batch: zero padding, one offset per image."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (b, 2), generator=gen, device=x.device)
    rows = (off[:, 0:1] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[:, 1:2] + torch.arange(w, device=x.device))[:, None, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[bi, ci, rows, cols]


def random_hflip(x: Tensor, gen: torch.Generator | None) -> Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _class_order(cfg: DataConfig, seed: int) -> list[int]:
    from hypermask.config import N_CLASSES

    n = N_CLASSES[cfg.source]
    if isinstance(cfg.class_order, list):
        return list(cfg.class_order)
    if cfg.class_order == "seeded":
        return np.random.default_rng(seed).permutation(n).tolist()
    return list(range(n))


def _val_size(cfg: DataConfig, n_classes: int) -> int:
    if cfg.validation_per_class is not None:
        return cfg.validation_per_class * n_classes
    return cfg.validation_size


def build_tasks(
    cfg: DataConfig, seed: int, device: torch.device | str = "cpu", raw: RawData | None = None
) -> list[Task]:
    """The task stream of an experiment; the seed fixes permutations and class orders."""
    raw = raw if raw is not None else load_source(cfg)
    device = torch.device(device)
    x_train = torch.from_numpy(raw.x_train).to(device)  # uint8: a quarter of float32's memory
    x_test = torch.from_numpy(raw.x_test).to(device)
    y_train = torch.from_numpy(raw.y_train).to(device)
    y_test = torch.from_numpy(raw.y_test).to(device)
    channels = x_train.shape[1]

    mean = std = None
    normalise = cfg.augmentation or cfg.source == "tinyimagenet"
    if normalise:
        m, s = MNIST_STATS if channels == 1 else IMAGENET_STATS
        mean = torch.tensor(m, device=device).view(1, -1, 1, 1)
        std = torch.tensor(s, device=device).view(1, -1, 1, 1)
    augment = None
    if cfg.augmentation:
        augment = "crop" if channels == 1 else "crop_flip"

    tasks: list[Task] = []
    if cfg.scenario == "permuted":
        c, h, w = x_train.shape[1:]
        dim = c * (h + 2 * cfg.padding) * (w + 2 * cfg.padding)
        rng = np.random.default_rng(seed)
        n_val = cfg.validation_size
        if n_val >= len(x_train):
            raise ConfigError(f"data.validation_size: {n_val} >= {len(x_train)} training samples")
        for t in range(cfg.n_tasks):
            perm = torch.from_numpy(rng.permutation(dim)).to(device)
            tasks.append(
                Task(
                    t,
                    list(range(10)),
                    Split(x_train[n_val:], y_train[n_val:]),
                    Split(x_train[:n_val], y_train[:n_val]),
                    Split(x_test, y_test),
                    perm=perm,
                    pad=cfg.padding,
                    augment=augment,
                    mean=mean,
                    std=std,
                )
            )
        return tasks

    order = _class_order(cfg, seed)
    start = 0
    for t, k in enumerate(cfg.task_sizes()):
        classes = order[start : start + k]
        start += k
        lut = torch.full((int(max(order)) + 1,), -1, dtype=torch.int64, device=device)
        lut[torch.tensor(classes, device=device)] = torch.arange(k, device=device)
        tr = torch.isin(y_train, torch.tensor(classes, device=device)).nonzero().squeeze(1)
        te = torch.isin(y_test, torch.tensor(classes, device=device)).nonzero().squeeze(1)
        n_val = _val_size(cfg, k)
        if n_val >= len(tr):
            raise ConfigError(f"data.validation_size: {n_val} >= {len(tr)} training samples of task {t}")
        tr_x, tr_y = x_train[tr], lut[y_train[tr]]
        tasks.append(
            Task(
                t,
                classes,
                Split(tr_x[n_val:], tr_y[n_val:]),
                Split(tr_x[:n_val], tr_y[:n_val]),
                Split(x_test[te], lut[y_test[te]]),
                augment=augment,
                mean=mean,
                std=std,
            )
        )
    return tasks


class BatchStream:
    """The reference's batch generator: an endless stream of per-epoch permutations, cut into
    full batches (a batch may straddle two epochs). Indices are drawn on the data's device."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator):
        self.n, self.bs, self.gen = n, batch_size, gen
        self.device = gen.device
        self.perm = torch.randperm(n, generator=gen, device=self.device)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.bs <= self.n:
            idx = self.perm[self.pos : self.pos + self.bs]
            self.pos += self.bs
            return idx
        parts = [self.perm[self.pos :]]
        need = self.bs - (self.n - self.pos)
        while need > 0:
            self.perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            take = min(need, self.n)
            parts.append(self.perm[:take])
            self.pos = take
            need -= take
        return torch.cat(parts)
