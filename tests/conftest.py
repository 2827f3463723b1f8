import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist")

# A CPU-seconds experiment on real data (scikit-learn's digits) for loop-level tests.
TINY = {
    "suite": "demo",
    "suites": {"demo": {"benchmarks": ["tiny"], "methods": ["hypermask"]}},
    "defaults": {"train": {"lr": 1e-3, "val_every": 20, "log_every": 20}},
    "benchmarks": {
        "tiny": {
            "seeds": [1, 2],
            "data": {"source": "digits", "scenario": "permuted", "n_tasks": 3, "validation_size": 50},
            "target": {"kind": "mlp", "hidden": [32]},
            "train": {"iterations": 60, "batch_size": 32},
        }
    },
    "methods": {
        "hypermask": {"settings": {"hypermask": {"hnet_hidden": [10], "embedding_dim": 8, "beta": 5e-3,
                                                 "lambda": 1e-2, "sparsity": 20}}},
        "finetune": {},
    },
}


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def tiny_params(tmp_path) -> Path:
    return write_params(tmp_path / "params.yaml", copy.deepcopy(TINY))
