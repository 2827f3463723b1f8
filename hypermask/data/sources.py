"""The raw datasets (sources): scikit-learn's digits, MNIST and Fashion-MNIST from IDX files,
CIFAR-100, TinyImageNet; read, checked against their known sizes, and whether they are there.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypermask.config import ConfigError, DataConfig

MNIST_STATS = ((0.1307,), (0.3081,))


IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class RawData:
    """A whole source: uint8 images (N, C, H, W) and integer labels, train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# --------------------------------------------------------------------------- sources
def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or plain), checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ConfigError(f"{path}: unreadable IDX file ({e})") from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ConfigError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ConfigError(
            f"{path}: truncated or corrupt IDX file ({len(raw) - offset} bytes, header says {expected})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims).copy()


def _find_idx(root: Path, stem: str) -> Path | None:
    for d in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
    return None


def load_idx_source(cfg: DataConfig) -> RawData:
    root = Path(cfg.root) if cfg.root else Path("/usr/share/datasets/fashion-mnist")
    missing = [s for s in IDX_FILES.values() if _find_idx(root, s) is None]
    if missing and cfg.download:
        from torchvision import datasets

        cls = datasets.MNIST if cfg.source == "mnist" else datasets.FashionMNIST
        for train in (True, False):
            cls(str(root), train=train, download=True)
        missing = [s for s in IDX_FILES.values() if _find_idx(root, s) is None]
    if missing:
        hint = (
            "install Debian's package dataset-fashion-mnist (files under /usr/share/datasets/fashion-mnist)"
            if cfg.source == "fashion_mnist"
            else "put the four MNIST IDX .gz files there, or set data.download: true on a machine with internet"
        )
        raise ConfigError(f"data.root: {root} lacks {', '.join(m + '.gz' for m in missing)}; {hint}")
    # every file is there (none missing)
    arr = {k: read_idx(p) for k, s in IDX_FILES.items() if (p := _find_idx(root, s)) is not None}
    for split in ("train", "test"):
        if len(arr[f"{split}_x"]) != len(arr[f"{split}_y"]):
            raise ConfigError(f"data.root: {root}: {split} images and labels differ in count")
    return RawData(
        arr["train_x"][:, None],
        arr["train_y"].astype(np.int64),
        arr["test_x"][:, None],
        arr["test_y"].astype(np.int64),
    )


def load_digits_source(cfg: DataConfig) -> RawData:
    """scikit-learn's bundled 8x8 digits (0..16), scaled to 0..255; fixed 1347/450 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    n_train = 1347
    return RawData(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _given_root(cfg: DataConfig) -> Path:
    """data.root of a source that needs one (DataConfig refuses the source without it)."""
    assert cfg.root is not None
    return Path(cfg.root)


def load_cifar100_source(cfg: DataConfig) -> RawData:
    from torchvision import datasets

    root = _given_root(cfg)
    if not cfg.download and not (root / "cifar-100-python").is_dir():
        raise ConfigError(
            f"data.root: {root} has no cifar-100-python/ folder; put the extracted CIFAR-100 "
            "(python version) there, or set data.download: true on a machine with internet"
        )
    try:
        tr = datasets.CIFAR100(str(root), train=True, download=cfg.download)
        te = datasets.CIFAR100(str(root), train=False, download=cfg.download)
    except RuntimeError as e:
        raise ConfigError(f"data.root: {root}: {e}") from None
    return RawData(
        tr.data.transpose(0, 3, 1, 2).copy(),
        np.asarray(tr.targets, np.int64),
        te.data.transpose(0, 3, 1, 2).copy(),
        np.asarray(te.targets, np.int64),
    )


def load_tinyimagenet_source(cfg: DataConfig) -> RawData:
    """tiny-imagenet-200 (folder or zip): train/<wnid>/images, val/ with val_annotations.txt.

    Classes are the sorted wnids of wnids.txt; the labelled val folder is the test set.
    """
    from PIL import Image

    root = _given_root(cfg)
    candidates = [root, root / "tiny-imagenet-200"]
    base = next((c for c in candidates if (c / "wnids.txt").is_file()), None)
    zpath = next(
        (p for p in (root / "tiny-imagenet-200.zip", root) if p.is_file() and p.suffix == ".zip"), None
    )
    if base is None:
        if zpath is None:
            raise ConfigError(f"data.root: {root} holds neither tiny-imagenet-200/ nor tiny-imagenet-200.zip")
        with zipfile.ZipFile(zpath) as z:
            z.extractall(zpath.parent)
        base = zpath.parent / "tiny-imagenet-200"
    wnids = sorted((base / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}

    def load(paths: list[Path]) -> np.ndarray:
        return (
            np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).transpose(0, 3, 1, 2).copy()
        )

    train_paths, train_y = [], []
    for w in wnids:
        files = sorted((base / "train" / w / "images").glob("*.JPEG"))
        train_paths += files
        train_y += [index[w]] * len(files)
    test_paths, test_y = [], []
    for line in (base / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            test_paths.append(base / "val" / "images" / parts[0])
            test_y.append(index[parts[1]])
    return RawData(load(train_paths), np.asarray(train_y), load(test_paths), np.asarray(test_y))


SOURCES = {
    "digits": load_digits_source,
    "mnist": load_idx_source,
    "fashion_mnist": load_idx_source,
    "cifar100": load_cifar100_source,
    "tinyimagenet": load_tinyimagenet_source,
}


# What each source is: (training images, test images, image shape C x H x W).
KNOWN_SIZES = {
    "digits": (1347, 450, (1, 8, 8)),
    "mnist": (60000, 10000, (1, 28, 28)),
    "fashion_mnist": (60000, 10000, (1, 28, 28)),
    "cifar100": (50000, 10000, (3, 32, 32)),
    "tinyimagenet": (100000, 10000, (3, 64, 64)),
}


def check_raw(raw: RawData, cfg: DataConfig, where: str | Path | None = None) -> None:
    """A source's images and labels against what the source is: counts, image shape, dtype and
    label range. A copy with fewer images passes only with `data.reduced: true`."""
    from hypermask.config import N_CLASSES

    src = cfg.source
    where = f"{where or cfg.root or src}"
    n_known = dict(zip(("train", "test"), KNOWN_SIZES[src][:2]))
    shape = KNOWN_SIZES[src][2]
    for split in ("train", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if x.dtype != np.uint8 or x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
            raise ConfigError(
                f"data.root: {where}: {src} {split} split malformed (images {x.shape} {x.dtype}, labels {y.shape})"
            )
        if tuple(x.shape[1:]) != shape:
            raise ConfigError(
                f"data.root: {where}: {src} {split} images are {tuple(x.shape[1:])}, expected {shape}"
            )
        if y.min() < 0 or y.max() >= N_CLASSES[src]:
            raise ConfigError(
                f"data.root: {where}: {src} {split} labels span {y.min()}..{y.max()}, expected 0..{N_CLASSES[src] - 1}"
            )
        n = len(y)
        if n > n_known[split] or (n < n_known[split] and not cfg.reduced):
            raise ConfigError(
                f"data.root: {where}: {src} {split} split has {n} images, the source has {n_known[split]}"
                + (
                    "; set data.reduced: true to use a deliberately reduced copy"
                    if n < n_known[split]
                    else ""
                )
            )


def load_source(cfg: DataConfig) -> RawData:
    """The raw source, read and checked (check_raw)."""
    raw = SOURCES[cfg.source](cfg)
    check_raw(raw, cfg)
    return raw


def check_source_available(cfg: DataConfig) -> None:
    """Cheap check, before any work, that the raw data is where the config says."""
    if cfg.source == "digits":
        return
    if cfg.source in ("mnist", "fashion_mnist"):
        root = Path(cfg.root) if cfg.root else Path("/usr/share/datasets/fashion-mnist")
        missing = [s for s in IDX_FILES.values() if _find_idx(root, s) is None]
        if missing and not cfg.download:
            load_idx_source(cfg)  # raises the detailed message
        for s in IDX_FILES.values():
            p = _find_idx(root, s)
            if p is not None and not os.access(p, os.R_OK):
                raise ConfigError(f"data.root: {p}: not readable")
        return
    root = _given_root(cfg)
    if not root.exists() and not cfg.download:
        raise ConfigError(f"data.root: {root}: no such directory")
