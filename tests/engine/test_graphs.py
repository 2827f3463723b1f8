"""The training step replayed from a CUDA graph (hypermask/engine/graphs.py): which iterations may be
replayed (anywhere), and, on a GPU, that the graphed loop trains to the same bits as the eager
one (skipped without CUDA: CI has no GPU; run on one with `pytest tests/engine/test_graphs.py`)."""

import copy

import pytest
import torch

from conftest import TINY, write_params
from hypermask.config import load_experiment
from hypermask.data.tasks import BatchStream
from hypermask.engine.graphs import GraphedSteps
from hypermask.engine.loop import build_run, train_task
from hypermask.engine.step import training_step
from hypermask.events import Events

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _params(tmp_path, method: str, target: dict | None = None, selection: str = "last"):
    p = copy.deepcopy(TINY)
    p["methods"]["hnet"] = {"settings": {"hnet": {"hnet_hidden": [10], "embedding_dim": 8, "beta": 1e-2}}}
    if selection == "best_val":  # validation, selection and the scheduler at every epoch's end
        tr = p["benchmarks"]["tiny"]["train"]
        del tr["iterations"]
        tr.update(selection="best_val", lr_scheduler=True, epochs=20, batch_size=64)
    if target:
        p["benchmarks"]["tiny"]["target"] = target
    path = write_params(tmp_path / "params.yaml", p)
    return load_experiment(path, f"tiny/{method}")


def _steps(cfg, device, t: int):
    tasks, learner = build_run(cfg, 1, torch.device(device))
    learner.start_task(t, cfg.train.iterations)
    learner.train()
    opt = learner.make_optimizer(cfg.train.lr)
    gen = torch.Generator(device=device).manual_seed(0)
    steps = GraphedSteps(learner, opt, tasks[t], BatchStream(len(tasks[t].train.y), 32, gen), gen)
    steps.tasks = tasks
    return learner, steps


def test_keys_follow_the_sparsity_ramp_the_learning_rate_and_dropout(tmp_path):
    cfg = _params(tmp_path, "hypermask")
    learner, steps = _steps(cfg, "cpu", 0)
    steps.enabled = True  # the key alone; nothing is captured on a CPU
    ramp = [steps._key(i) for i in range(3)]
    assert len(set(ramp)) == 3  # task 0 ramps p: every iteration its own graph
    learner.start_task(1, cfg.train.iterations)
    steps.task = steps.tasks[1]
    assert steps._key(5) == steps._key(50)  # after the first task p is fixed
    before = steps._key(5)
    steps.opt.lr *= 0.5
    assert steps._key(5) != before  # the scheduler's change captures again
    drop = _params(tmp_path, "hypermask", {"kind": "mlp", "hidden": [32]})
    learner2, steps2 = _steps(drop, "cpu", 1)
    steps2.enabled = True
    learner2.add_module("drop", torch.nn.Dropout(0.5))
    assert steps2._key(5) is None  # active dropout: eager
    learner2.drop.eval()
    assert steps2._key(5) is not None


def test_methods_without_a_key_and_cpus_run_the_eager_step(tmp_path):
    cfg = _params(tmp_path, "finetune")
    learner, steps = _steps(cfg, "cpu", 1)
    assert not steps.enabled and learner.graph_key(1, 5) is None
    learner_b, steps_b = _steps(cfg, "cpu", 1)
    for i in range(5):
        a = steps(i)
        b = training_step(learner_b, steps_b.opt, steps_b.task, steps_b.stream, steps_b.gen, i)
        assert torch.equal(a, b)


def _train_two_tasks(cfg, monkeypatch, graphs: bool):
    monkeypatch.setenv("HYPERMASK_CUDA_GRAPHS", "1" if graphs else "0")
    tasks, learner = build_run(cfg, 1, torch.device("cuda"))
    for t in range(2):
        train_task(learner, tasks[t], cfg, 1, Events([]), 0)
    return {k: v.detach().cpu() for k, v in learner.state_dict().items()}


@cuda
@pytest.mark.parametrize(
    "method,selection", [("hypermask", "last"), ("hnet", "last"), ("hypermask", "best_val")]
)
def test_the_graphed_loop_trains_to_the_same_bits_as_the_eager_one(tmp_path, monkeypatch, method, selection):
    cfg = _params(tmp_path, method, selection=selection)
    captures = []
    real = GraphedSteps._capture
    monkeypatch.setattr(GraphedSteps, "_capture", lambda self, *a: (captures.append(1), real(self, *a))[1])
    graphed = _train_two_tasks(cfg, monkeypatch, True)
    assert captures, "no step was captured"
    eager = _train_two_tasks(cfg, monkeypatch, False)
    assert graphed.keys() == eager.keys()
    for k in eager:
        assert torch.equal(graphed[k], eager[k]), k
