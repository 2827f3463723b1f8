"""Online EWC (hypermask/methods/ewc.py) against naive loops and hand computations."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config import ExperimentConfig
from hypermask.data.tasks import Split, Task
from hypermask.methods import build_method
from hypermask.nets import build_target


def _ewc(**ewc) -> tuple:
    cfg = ExperimentConfig.model_validate(
        {
            "name": "x",
            "seeds": [1],
            "method": "ewc",
            "ewc": {"lambda": 3.0, **ewc},
            "data": {"source": "digits", "scenario": "permuted", "n_tasks": 2},
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 1},
        }
    )
    torch.manual_seed(0)
    return cfg, build_method(cfg, build_target(cfg.target, (64,), 5, 2)).double()


def _task(t: int, n: int, seed: int) -> Task:
    g = torch.Generator().manual_seed(seed)
    split = Split(
        torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 5, (n,), generator=g)
    )
    return Task(t, list(range(5)), split, split, split)


def _naive_fisher(target, task: Task, n: int) -> list[torch.Tensor]:
    out = [torch.zeros_like(p) for p in target.parameters()]
    for i in range(n):
        target.zero_grad()
        x = task.inputs(task.train.x[i : i + 1])
        F.cross_entropy(target(x, task.index), task.train.y[i : i + 1]).backward()
        for o, p in zip(out, target.parameters()):
            o += p.grad.pow(2)
    return [o / n for o in out]


def test_fisher_equals_a_loop_over_samples_of_squared_gradients():
    _, m = _ewc(fisher_samples=30, fisher_batch_size=7)  # chunks of 7: 7+7+7+7+2
    task = _task(0, 40, seed=1)
    got = m.fisher(task)
    want = _naive_fisher(m.target, task, 30)  # only the first fisher_samples samples
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_online_accumulation_anchor_and_penalty():
    cfg, m = _ewc(gamma=0.5, fisher_samples=20)
    t0, t1 = _task(0, 20, seed=1), _task(1, 20, seed=2)
    f0 = _naive_fisher(m.target, t0, 20)
    m.end_task(0, t0)
    with torch.no_grad():
        for p in m.target.parameters():
            p.add_(0.1)  # as if task 1 had been learned
    f1 = _naive_fisher(m.target, t1, 20)
    m.end_task(1, t1)
    for (p, f, a), a0, a1 in zip(m._pairs(), f0, f1):
        torch.testing.assert_close(f, 0.5 * a0 + a1)  # F = gamma * F_prev + F^t
        assert torch.equal(a, p.detach())  # theta* = theta at the end of the task
    with torch.no_grad():
        for p in m.target.parameters():
            p.sub_(0.25)
    hand = sum((f * (p - a) ** 2).sum() for p, f, a in m._pairs())
    assert m.penalty().item() == pytest.approx(sum((f * 0.25**2).sum().item() for _, f, _ in m._pairs()))
    x, y = t1.train.x[:8], t1.train.y[:8]
    loss, ce = m.loss(t1.inputs(x), y, 1, 0)
    assert loss.item() == pytest.approx(ce.item() + cfg.ewc.lambda_ / 2 * hand.item())
    loss0, ce0 = m.loss(t0.inputs(x), y, 0, 0)
    assert loss0.item() == ce0.item()  # no penalty while learning the first task


def test_ewc_run_resumes_exactly_and_forgets_less_than_finetuning(tmp_path):
    """On real data: the Fisher and anchor travel in the checkpoint (a resumed run equals an
    uninterrupted one), and a strong penalty keeps the first task better than fine-tuning."""
    p = copy.deepcopy(TINY)
    p["methods"]["ewc"] = {"settings": {"ewc": {"lambda": 5000.0, "fisher_samples": 300}}}
    p["benchmarks"]["tiny"]["train"]["iterations"] = 150
    params = write_params(tmp_path / "params.yaml", p)

    def train(exp, results, *extra):
        assert (
            main(
                [
                    "--params",
                    str(params),
                    "train",
                    exp,
                    "--seed",
                    "1",
                    "--results",
                    str(tmp_path / results),
                    "--no-tracking",
                    "--quiet",
                    "--threads",
                    "1",
                    *extra,
                ]
            )
            == 0
        )
        path = tmp_path / results / "runs" / exp / "seed_1" / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    full = train("tiny/ewc", "full")
    assert full["memory"]["parts"].keys() == {"target", "fisher", "anchor"}
    assert train("tiny/ewc", "cut", "--stop-after-task", "1") is None
    assert train("tiny/ewc", "cut")["accuracy_matrix"] == full["accuracy_matrix"]
    ft = train("tiny/finetune", "full")
    assert full["accuracy_matrix"][-1][0] > ft["accuracy_matrix"][-1][0]  # task 0 after the last task
    assert full["bwt"] > ft["bwt"]
