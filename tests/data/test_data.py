"""Sources and scenarios on real data."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FMNIST, TINY, write_params
from hypermask.config import ConfigError, DataConfig
from hypermask.data.sources import read_idx
from hypermask.data.tasks import BatchStream, build_tasks, random_crop


@pytest.mark.skipif(
    not FMNIST.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed (apt install dataset-fashion-mnist)",
)
def test_fashion_mnist_reader_on_debian_data():
    tr = read_idx(FMNIST / "train-images-idx3-ubyte.gz")
    ty = read_idx(FMNIST / "train-labels-idx1-ubyte.gz")
    te = read_idx(FMNIST / "t10k-images-idx3-ubyte.gz")
    assert tr.shape == (60000, 28, 28) and te.shape == (10000, 28, 28) and tr.dtype == np.uint8
    assert np.bincount(ty).tolist() == [6000] * 10
    cfg = DataConfig(
        source="fashion_mnist",
        root=str(FMNIST),
        scenario="split",
        n_tasks=5,
        classes_per_task=2,
        validation_size=1000,
    )
    tasks = build_tasks(cfg, seed=1)
    assert [t.classes for t in tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert (
        len(tasks[0].train.y) == 12000 - 1000 and len(tasks[0].val.y) == 1000 and len(tasks[0].test.y) == 2000
    )
    assert set(tasks[3].test.y.tolist()) == {0, 1}  # local labels


def test_truncated_idx_file_is_detected(tmp_path):
    import gzip

    p = tmp_path / "x.gz"
    p.write_bytes(
        gzip.compress(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + b"\x00" * 7)
    )
    with pytest.raises(ConfigError, match="truncated"):
        read_idx(p)
    p.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=str(p)):
        read_idx(p)


def test_permuted_digits_tasks():
    cfg = DataConfig(source="digits", scenario="permuted", n_tasks=3, padding=2, validation_size=100)
    a = build_tasks(cfg, seed=1)
    b = build_tasks(cfg, seed=1)
    c = build_tasks(cfg, seed=2)
    assert a[0].perm.shape == (144,)  # (8 + 2*2)^2
    assert torch.equal(a[1].perm, b[1].perm) and not torch.equal(a[1].perm, c[1].perm)
    assert not torch.equal(a[0].perm, torch.arange(144))  # the first task is permuted too (reference)
    x = a[1].inputs(a[1].test.x[:5])
    raw = a[1].test.x[:5]  # stored unpadded uint8 (N, 1, 8, 8); the zero border comes per batch
    assert raw.shape[1:] == (1, 8, 8)
    padded = torch.zeros(5, 1, 12, 12)
    padded[:, :, 2:10, 2:10] = raw.float().div(255)
    assert torch.equal(x, padded.flatten(1)[:, a[1].perm])
    assert len(a[0].val.y) == 100 and len(a[0].train.y) == 1347 - 100


def test_split_seeded_and_explicit_class_order():
    cfg = DataConfig(
        source="digits", scenario="split", n_tasks=2, classes_per_task=[3, 2], class_order="seeded"
    )
    tasks = build_tasks(cfg, seed=5)
    expected = np.random.default_rng(5).permutation(10).tolist()
    assert tasks[0].classes == expected[:3] and tasks[1].classes == expected[3:5]
    cfg = DataConfig(
        source="digits", scenario="split", n_tasks=2, classes_per_task=2, class_order=[9, 3, 4, 1]
    )
    tasks = build_tasks(cfg, seed=5)
    assert tasks[0].classes == [9, 3]
    assert set(tasks[0].train.y.tolist()) == {0, 1}


def test_batch_stream_is_endless_epochs_of_full_batches():
    g = torch.Generator().manual_seed(0)
    s = BatchStream(10, 4, g)
    batches = [s.next() for _ in range(5)]  # 20 indices = two epochs of 10, in full batches of 4
    assert [len(b) for b in batches] == [4] * 5  # a batch spans the epoch boundary, never short
    idx = torch.cat(batches)
    assert sorted(idx[:10].tolist()) == list(range(10)) and sorted(idx[10:].tolist()) == list(range(10))


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    out = random_crop(x, 4, g)
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for b in range(16):
        found = any(torch.equal(out[b], xp[b, :, i : i + 8, j : j + 8]) for i in range(9) for j in range(9))
        assert found


# --------------------------------------------------------------------------- raw data of the wrong size
def _write_idx(path: Path, arr: np.ndarray) -> None:
    """An uncompressed IDX file (the reader takes both; gzip would cost seconds here)."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _idx_source(root: Path, n_train=60000, n_test=10000, side=28, max_label=9) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side), dtype=np.uint8))
        labels = rng.integers(0, 10, n)
        labels[0] = max_label
        _write_idx(root / f"{split}-labels-idx1-ubyte", labels)
    return root


RAW_CASES = [
    (
        "50 training images",
        {"n_train": 50},
        {},
        "train split has 50 images, the source has 60000; set data.reduced",
    ),
    (
        "more test images than the source",
        {"n_test": 10001},
        {},
        "test split has 10001 images, the source has 10000",
    ),
    ("10x10 images", {"side": 10}, {}, "train images are (1, 10, 10), expected (1, 28, 28)"),
    ("label out of range", {"max_label": 12}, {}, "train labels span 0..12, expected 0..9"),
    (
        "reduced copy with wrong images",
        {"n_train": 50, "side": 10},
        {"reduced": True},
        "expected (1, 28, 28)",
    ),
]


@pytest.mark.parametrize("name,shape,extra,fragment", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_raw_data_of_the_wrong_size_is_refused(tmp_path, capsys, name, shape, extra, fragment):
    from hypermask.cli.main import main

    root = _idx_source(tmp_path / "fm", **shape)
    params = copy.deepcopy(TINY)
    params["benchmarks"]["tiny"]["data"].update(source="fashion_mnist", root=str(root), **extra)
    params["pipeline"] = {"data_cache": str(tmp_path / "cache")}
    p = write_params(tmp_path / "params.yaml", params)
    for cmd in (
        ["prepare", "tiny"],
        ["train", "tiny", "--seed", "1", "--no-tracking", "--quiet", "--results", str(tmp_path)],
    ):
        assert main(["--params", str(p), *cmd]) == 2, cmd
        err = capsys.readouterr().err
        assert f"data.root: {root}" in err and fragment in err, err
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.rglob("*.npz"))


def test_a_deliberately_reduced_copy_is_accepted_with_the_opt_out(tmp_path):
    from hypermask.config import DataConfig
    from hypermask.data.sources import load_source

    root = _idx_source(tmp_path / "fm", n_train=500, n_test=100)
    cfg = DataConfig(source="fashion_mnist", root=str(root), scenario="permuted", n_tasks=2, reduced=True)
    raw = load_source(cfg)
    assert raw.x_train.shape == (500, 1, 28, 28) and raw.x_test.shape == (100, 1, 28, 28)
