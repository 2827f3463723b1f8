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
        "hypermask": {
            "settings": {
                "hypermask": {
                    "hnet_hidden": [10],
                    "embedding_dim": 8,
                    "beta": 5e-3,
                    "lambda": 1e-2,
                    "sparsity": 20,
                }
            }
        },
        "finetune": {},
    },
}


def tiny_suite() -> dict:
    """TINY as a suite `demo` (HyperMask and fine-tuning) with a 3-trial study of HyperMask's beta:
    the pipeline's and the sweeps' tests."""
    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"]["iterations"] = 40
    p["benchmarks"]["tiny"]["evaluation"] = {"settings": ["til", "entropy"]}
    p["suites"] = {"demo": {"benchmarks": ["tiny"], "methods": ["hypermask", "finetune"]}}
    p["methods"]["finetune"] = {"benchmarks": {"tiny": {"train": {"lr": 1e-3}}}}  # an override to edit
    p["sweeps"] = {
        "n_trials": 3,
        "sampler": {"seed": 0, "n_startup_trials": 2},
        "benchmarks": ["tiny"],
        "spaces": {"hypermask": {"hypermask.beta": {"low": 1e-4, "high": 1e-1, "log": True}}},
    }
    return p


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def tiny_params(tmp_path) -> Path:
    return write_params(tmp_path / "params.yaml", copy.deepcopy(TINY))


def learn(m, task, steps: int = 5) -> None:
    """A few steps of `task` through the method's own hooks, as the loop runs them: its batches
    (16 random training indices a step, the task's generator), loss, optimiser and end_task."""
    import torch

    gen = torch.Generator().manual_seed(task.index)
    m.start_task(task.index, steps)
    opt = m.make_optimizer(1e-2)
    for i in range(steps):
        x, y = m.batch(task, torch.randint(len(task.train.y), (16,), generator=gen), gen)
        loss, _ = m.loss(x, y, task.index, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.end_task(task.index, task)
