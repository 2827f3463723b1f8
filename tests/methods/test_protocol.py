"""The task-incremental protocol of the comparison tables: every method is told the task id at
test time, the methods with one head per task train only that task's head (checked by
weights), WSN and PackNet keep an earlier task's head and trunk bit-identical, and the
independent networks each see their own task's data only."""

import pytest
import torch

from conftest import learn
from hypermask.config import ExperimentConfig
from hypermask.engine.loop import build_run
from hypermask.evaluation.accuracy import evaluate_tasks
from hypermask.methods import METHODS, heads_of

# joint trains every task's head in every phase, ER the earlier tasks' heads on replayed samples,
# a class-incremental method every seen task's classes (its one head over all classes)
PER_TASK_HEAD = [
    m for m, e in METHODS.items() if e.per_task_head and not e.class_incremental and m not in ("joint", "er")
]


def _cfg(method: str, scenario: str) -> ExperimentConfig:
    data = {"source": "digits", "scenario": scenario, "n_tasks": 3, "validation_size": 20}
    if scenario == "split":
        data["classes_per_task"] = 2
    return ExperimentConfig.model_validate(
        {
            "name": f"x/{method}",
            "seeds": [1],
            "method": method,
            "data": data,
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 5, "batch_size": 16},
        }
    )


def _learn(m, task, steps: int = 5) -> None:
    learn(m, task, steps)


@pytest.mark.parametrize("scenario", ["permuted", "split"])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_is_told_the_task_id_at_test_time(method, scenario):
    cfg = _cfg(method, scenario)
    tasks, m = build_run(cfg, 1, torch.device("cpu"))
    seen = []
    logits = m.logits
    m.logits = lambda ctx, x, t, features=False: seen.append(t) or logits(ctx, x, t, features)
    evaluate_tasks(m, tasks, None)
    assert seen == [0, 1, 2]
    per_task = METHODS[method].per_task_head
    assert heads_of(cfg) == (3 if per_task is True or (per_task == "split" and scenario == "split") else 1)


@pytest.mark.parametrize("scenario", ["permuted", "split"])
@pytest.mark.parametrize("method", PER_TASK_HEAD)
def test_only_the_current_tasks_head_changes_while_it_trains(method, scenario):
    cfg = _cfg(method, scenario)
    if heads_of(cfg) == 1:
        pytest.skip(f"{method}: one shared head on {scenario} benchmarks")
    tasks, m = build_run(cfg, 1, torch.device("cpu"))
    head = m.target.head()
    n = m.target.n_heads
    assert n == 3
    for t in range(3):
        w0, b0 = head.weight.detach().clone().view(n, -1), head.bias.detach().clone().view(n, -1)
        _learn(m, tasks[t])
        w1, b1 = head.weight.detach().view(n, -1), head.bias.detach().view(n, -1)
        for j in range(n):
            same = torch.equal(w1[j], w0[j]) and torch.equal(b1[j], b0[j])
            assert same == (j != t), (method, t, j)  # task t's head moved, every other one is bit-identical


@pytest.mark.parametrize("method", ["wsn", "packnet"])
def test_wsn_and_packnet_keep_an_earlier_tasks_head_and_its_weights_bit_identical(method):
    cfg = _cfg(method, "permuted")
    tasks, m = build_run(cfg, 1, torch.device("cpu"))
    _learn(m, tasks[0])
    state = {k: v.detach().clone() for k, v in m.target.state_dict().items()}
    x = tasks[0].inputs(tasks[0].test.x)
    out0 = m.logits(m.eval_context([0]), x, 0).detach()
    ctx0 = {
        n: v.detach().clone() for n, v in m.eval_context([0])[0].items()
    }  # task 0's trunk as it is served
    for t in (1, 2):
        _learn(m, tasks[t])
    after = m.eval_context([0])[0]
    assert ctx0.keys() == after.keys() and all(torch.equal(ctx0[n], after[n]) for n in ctx0)
    head = m.target.head_names()
    for name in head:
        assert torch.equal(m.target.state_dict()[name].view(3, -1)[0], state[name].view(3, -1)[0])
    assert torch.equal(m.logits(m.eval_context([0]), x, 0), out0)


def test_independent_trains_one_network_per_task_on_its_own_data_only():
    cfg = _cfg("independent", "permuted")
    tasks, m = build_run(cfg, 1, torch.device("cpu"))
    nets = [m.net(t) for t in range(3)]
    assert len({id(n) for n in nets}) == 3
    assert not torch.equal(nets[0].head().weight, nets[1].head().weight)  # drawn independently
    seen: dict[int, list[torch.Tensor]] = {0: [], 1: [], 2: []}
    for t, net in enumerate(nets):
        forward = net.forward
        net.forward = (
            lambda f, k: lambda x, task=None, features=False: seen[k].append(x) or f(x, task, features)
        )(forward, t)
    for t in range(3):
        before = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
        seen = {0: [], 1: [], 2: []}
        _learn(m, tasks[t])
        assert seen[t] and all(not seen[j] for j in range(3) if j != t)  # only network t ran
        pool = tasks[t].inputs(tasks[t].train.x, train=False)
        for x in seen[t]:  # every training input is one of task t's own (permuted) samples
            assert all((pool == r).all(1).any() for r in x.flatten(1))
        for j, n in enumerate(nets):
            moved = any(not torch.equal(v, before[j][k]) for k, v in n.state_dict().items())
            assert moved == (j == t)
    mem = m.memory()
    per_net = sum(p.numel() * p.element_size() for p in nets[0].parameters())
    assert mem["bytes"] == 3 * per_net and mem["trained_parameters"] == 3 * sum(
        p.numel() for p in nets[0].parameters()
    )
