"""HAT, GPM and experience replay (hypermask/methods/hat.py, gpm.py, er.py) against hand
computations and their defining guarantees."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import learn

from hypermask.config import ExperimentConfig
from hypermask.engine.loop import build_run
from hypermask.methods.gpm import energy_basis
from hypermask.methods.hat import THRES_COSH, anneal


def _run(method: str, scenario: str = "permuted", **block):
    data = {"source": "digits", "scenario": scenario, "n_tasks": 3, "validation_size": 20}
    if scenario == "split":
        data["classes_per_task"] = 2
    cfg = ExperimentConfig.model_validate({
        "name": f"x/{method}", "seeds": [1], "method": method, **({method: block} if block else {}),
        "data": data, "target": {"kind": "mlp", "hidden": [16, 12]}, "train": {"iterations": 8, "batch_size": 16}})
    return build_run(cfg, 1, torch.device("cpu"))


def _learn(m, task, steps: int = 8) -> None:
    learn(m, task, steps)


# --------------------------------------------------------------------------- HAT
def test_hat_anneals_s_by_the_official_formula_within_each_epoch():
    s_max, n, bs = 400.0, 100, 32  # 4 batches an epoch, starting at samples 0, 32, 64, 96
    per_epoch = math.ceil(n / bs)
    got = [anneal(i, per_epoch, n, bs, s_max) for i in range(6)]
    hand = [1 / s_max + (s_max - 1 / s_max) * start / n for start in (0, 32, 64, 96, 0, 32)]
    assert got == pytest.approx(hand)


def test_hat_regulariser_and_embedding_compensation_by_hand():
    tasks, m = _run("hat", c=0.5, s_max=50.0)
    with torch.no_grad():
        m.cumulative.copy_(torch.rand_like(m.cumulative))
    gates = m.gates(1, 3.0)
    a = torch.cat(gates)
    a = a.detach()
    hand = sum(float(a[k]) * (1 - float(m.cumulative[k])) for k in range(len(a))) / float((1 - m.cumulative).sum())
    assert m.attention_regularizer(gates, 1).item() == pytest.approx(hand, rel=1e-5)
    assert m.attention_regularizer(gates, 0).item() == pytest.approx(float(a.mean()), rel=1e-6)
    m.s = 3.0
    m.embeddings.grad = torch.ones_like(m.embeddings)
    e = m.embeddings.detach().clone()
    m.compensate_embeddings()
    num = torch.cosh(torch.clamp(3.0 * e, -THRES_COSH, THRES_COSH)) + 1
    assert torch.allclose(m.embeddings.grad, 50.0 / 3.0 * num / (torch.cosh(e) + 1))


def test_hat_freezes_every_weight_between_two_units_an_earlier_task_uses():
    tasks, m = _run("hat")
    _learn(m, tasks[0])
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # binary cumulative gates: about half the units used by task 0
        m.cumulative.copy_((torch.rand(m.cumulative.shape, generator=g) < 0.5).float())
    used = [u.bool() for u in m.cumulative.split(m.units)]
    before = [(layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in m.hidden]
    _learn(m, tasks[1])
    moved = 0
    for i, (layer, (w0, b0)) in enumerate(zip(m.hidden, before)):
        post = used[i].unsqueeze(1)
        both = post.expand_as(w0) if i == 0 else post & used[i - 1].unsqueeze(0)
        assert torch.equal(layer.weight[both], w0[both]), i  # exactly zero update
        assert torch.equal(layer.bias[used[i]], b0[used[i]])
        moved += int((layer.weight[~both] != w0[~both]).sum())
    assert moved > 0


def test_hat_tests_with_near_binary_gates_and_reads_its_tasks_head():
    tasks, m = _run("hat")
    x = tasks[0].inputs(tasks[0].test.x[:5])
    out = m.logits({}, x, 2)
    h = x.flatten(1)
    for layer, e in zip(m.hidden, m.embeddings[2].split(m.units)):
        h = F.relu(layer(h)) * torch.sigmoid(m.hp.s_max * e)
    head = m.target.head()
    assert torch.allclose(out, F.linear(h, head.weight.view(3, 10, -1)[2], head.bias.view(3, 10)[2]), atol=1e-6)


# --------------------------------------------------------------------------- GPM
def test_gpm_energy_criterion_picks_the_hand_count_of_vectors():
    torch.manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(6, 6))
    V, _ = torch.linalg.qr(torch.randn(8, 8))
    s = torch.tensor([3.0, 2.0, 1.0, 0.5])
    R = U[:, :4] @ torch.diag(s) @ V[:, :4].t()
    # energies 9, 4, 1, 0.25 of 14.25: 9/14.25 = 0.63 < 0.9 <= 13/14.25 = 0.91 -> 2 vectors
    M = energy_basis(R, None, 0.9)
    assert M.shape == (6, 2)
    assert torch.allclose((M.t() @ U[:, :2]).abs(), torch.eye(2), atol=1e-5)
    # a second task: R2 = the old directions plus a new one (U[:, 4], energy 16 of 16 + 13 = 29)
    R2 = torch.cat([R, 4.0 * U[:, 4:5]], 1)
    # kept ||M M^T R2||^2 = 13; 13/29 = 0.45 < 0.9; + 16 (the new direction) = 29/29 -> 1 vector
    new = energy_basis(R2, M, 0.9)
    assert new.shape == (6, 1) and torch.allclose(new.abs().t() @ U[:, 4:5].abs(), torch.ones(1, 1), atol=1e-4)
    assert energy_basis(R, M, 0.9).shape == (6, 0)  # already captured: nothing appended


def test_gpm_projects_gradients_off_the_stored_basis():
    _, split = _run("gpm", "split")  # one head per task there: only the trunk is projected
    assert split.target.n_heads == 3 and split.layers == list(split.target.layers)[:-1]
    tasks, m = _run("gpm")
    _learn(m, tasks[0])
    assert all(m.basis(i).shape[1] > 0 for i in range(len(m.layers)))
    x, y = m.batch(tasks[1], torch.arange(16), torch.Generator().manual_seed(0))
    loss, _ = m.loss(x, y, 1, 0)
    loss.backward()
    m.project_gradients()
    for i, layer in enumerate(m.layers):
        g = torch.cat([layer.weight.grad, layer.bias.grad.unsqueeze(1)], 1)
        assert (g @ m.basis(i)).abs().max() < 1e-5
        assert torch.allclose(m.basis(i).t() @ m.basis(i), torch.eye(m.basis(i).shape[1]), atol=1e-4)


def test_gpm_changes_an_earlier_tasks_outputs_far_less_than_the_same_sgd_without_projection():
    drift = {}
    for name, th in (("gpm", 0.97), ("sgd", 0.0)):  # threshold 0: no basis, plain SGD
        tasks, m = _run("gpm", threshold_first=th, threshold=th, lr=0.05)
        _learn(m, tasks[0], steps=40)
        x = tasks[0].inputs(tasks[0].test.x)
        before = m.logits({}, x, 0).detach()
        _learn(m, tasks[1], steps=40)
        drift[name] = float((m.logits({}, x, 0).detach() - before).abs().mean())
    assert drift["gpm"] < 0.2 * drift["sgd"], drift


# --------------------------------------------------------------------------- ER
def test_er_memory_is_balanced_per_task_and_counted_in_bytes():
    tasks, m = _run("er", "split", per_task=50)
    for t in range(3):
        _learn(m, tasks[t])
    assert m.stored.all()
    for t, task in enumerate(tasks):
        pool = task.train.x.flatten(1)
        assert all((pool == r).all(1).any() for r in m.memory_x[t].flatten(1))  # task t's own samples
        assert len({tuple(r.tolist()) for r in m.memory_x[t].flatten(1)}) == 50  # drawn without replacement
    mem = m.memory()
    assert mem["parts"]["memory_x"] == m.memory_x.numel() * m.memory_x.element_size() == 3 * 50 * m.memory_x[0, 0].numel() * m.memory_x.element_size()
    assert mem["parts"]["memory_y"] == m.memory_y.numel() * m.memory_y.element_size()
    x, y = m.batch(tasks[2], torch.arange(16), torch.Generator().manual_seed(1))
    counts = m.row_task.bincount(minlength=3)
    assert counts[2] == 16 and counts[0] + counts[1] == 16  # a same-size batch of the earlier tasks


def test_er_replayed_samples_go_through_their_own_tasks_head():
    tasks, m = _run("er", "permuted", per_task=30)
    _learn(m, tasks[0])
    _learn(m, tasks[1])
    x, y = m.batch(tasks[2], torch.arange(8), torch.Generator().manual_seed(2))
    assert set(m.row_task[8:].tolist()) <= {0, 1} and (m.row_task[:8] == 2).all()
    _, ce = m.loss(x, y, 2, 0)
    hand = torch.stack([F.cross_entropy(m.target(x[k : k + 1], int(m.row_task[k])), y[k : k + 1]) for k in range(len(y))]).mean()
    assert ce.item() == pytest.approx(hand.item(), rel=1e-5)
    # a replayed row is its task's transform of a stored raw sample: task 0's permutation
    k = int((m.row_task == 0).nonzero()[0])
    assert any(torch.equal(x[k], tasks[0].inputs(m.memory_x[0][j : j + 1])[0]) for j in range(30))
