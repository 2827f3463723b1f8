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
    cfg = ExperimentConfig.model_validate(
        {
            "name": f"x/{method}",
            "seeds": [1],
            "method": method,
            **({method: block} if block else {}),
            "data": data,
            "target": {"kind": "mlp", "hidden": [16, 12]},
            "train": {"iterations": 8, "batch_size": 16},
        }
    )
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
    hand = sum(float(a[k]) * (1 - float(m.cumulative[k])) for k in range(len(a))) / float(
        (1 - m.cumulative).sum()
    )
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
    assert torch.allclose(
        out, F.linear(h, head.weight.view(3, 10, -1)[2], head.bias.view(3, 10)[2]), atol=1e-6
    )


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
    assert new.shape == (6, 1) and torch.allclose(
        new.abs().t() @ U[:, 4:5].abs(), torch.ones(1, 1), atol=1e-4
    )
    assert energy_basis(R, M, 0.9).shape == (6, 0)  # already captured: nothing appended


def test_gpm_projects_gradients_off_the_stored_basis():
    for scenario in ("permuted", "split"):  # one head per task on both: only the trunk is projected
        _, m = _run("gpm", scenario)
        assert m.target.n_heads == 3 and m.layers == list(m.target.layers)[:-1], scenario
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


@pytest.mark.parametrize("scenario", ["permuted", "split"])
def test_gpm_step_of_a_later_task_keeps_the_trunk_off_the_basis_and_other_heads_unchanged(scenario):
    """Per-task heads on permuted benchmarks too: after a full optimiser step of task t > 0 the
    trunk's applied gradient satisfies g M = 0 to float precision, the heads of the other tasks
    are bit-identical and task t's own head (not projected) has moved."""
    tasks, m = _run("gpm", scenario)
    _learn(m, tasks[0])
    _learn(m, tasks[1])
    head = m.target.head()
    assert m.target.n_heads == 3 and head not in m.layers
    opt = m.make_optimizer(1e-2)
    for t in (1, 2):
        w0 = [layer.weight.detach().clone() for layer in m.layers]
        b0 = [layer.bias.detach().clone() for layer in m.layers]
        hw0, hb0 = (
            head.weight.detach().clone().view(3, -1, head.weight.shape[1]),
            head.bias.detach().clone().view(3, -1),
        )
        x, y = m.batch(tasks[t], torch.arange(16), torch.Generator().manual_seed(t))
        loss, _ = m.loss(x, y, t, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for i, layer in enumerate(m.layers):
            M = m.basis(i)
            assert M.shape[1] > 0
            g = torch.cat([layer.weight.grad, layer.bias.grad.unsqueeze(1)], 1)
            assert g.abs().max() > 0
            assert (g @ M).abs().max() <= 1e-4 * g.abs().max(), (t, i)  # float32: eps 1.2e-7 x the dims
            assert not torch.equal(layer.weight, w0[i]) or not torch.equal(
                layer.bias, b0[i]
            )  # the step moved it
        hw, hb = head.weight.detach().view(3, -1, head.weight.shape[1]), head.bias.detach().view(3, -1)
        for other in {0, 1, 2} - {t}:
            assert torch.equal(hw[other], hw0[other]) and torch.equal(hb[other], hb0[other]), (t, other)
        assert not torch.equal(hw[t], hw0[t])


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
def test_er_memory_equals_per_class_ring_buffers_pushed_step_by_step_and_is_counted_in_bytes():
    """The memory read at each task's end equals a naive first-in-first-out buffer of m slots
    per class, pushed every presented sample of every step (Chaudhry et al.'s ring buffer); it is
    class-balanced, holds only the task's own samples and is counted in bytes."""
    from collections import deque

    per_class = 3
    tasks, m = _run("er", "split", per_class=per_class)
    for task in tasks:
        t = task.index
        gen = torch.Generator().manual_seed(10 + t)
        rings: dict[int, deque] = {}
        position = 0
        m.start_task(t, 6)
        for _ in range(6):  # the pushes: 16 random indices a step
            idx = torch.randint(len(task.train.y), (16,), generator=gen)
            m.batch(task, idx, gen)
            for i in idx.tolist():
                rings.setdefault(int(task.train.y[i]), deque(maxlen=per_class)).append((position, i))
                position += 1
        m.end_task(t, task)
        held = sorted(p for ring in rings.values() for p in ring)  # every ring's slots, in push order
        n = int(m.filled[t])
        assert n == len(held) == sum(min(per_class, sum(1 for _ in ring)) for ring in rings.values())
        assert torch.equal(m.memory_x[t, :n], task.train.x[[i for _, i in held]])
        assert torch.equal(m.memory_y[t, :n], task.train.y[[i for _, i in held]])
        counts = m.memory_y[t, :n].bincount(minlength=task.n_classes)
        assert (counts == per_class).all()  # 96 pushes of 2 classes fill every ring: balanced
    mem = m.memory()
    sample = m.memory_x[0, 0].numel() * m.memory_x.element_size()
    assert mem["parts"]["memory_x"] == 3 * 2 * per_class * sample  # tasks x classes x m samples
    assert mem["parts"]["memory_y"] == m.memory_y.numel() * m.memory_y.element_size()
    m.start_task(2, 1)
    x, y = m.batch(tasks[2], torch.arange(16), torch.Generator().manual_seed(1))
    counts = m.row_task.bincount(minlength=3)
    assert counts[2] == 16 and counts[0] + counts[1] == 16  # a same-size batch of the earlier tasks


def test_er_ring_keeps_the_last_m_pushes_of_each_class():
    from hypermask.methods.er import ER

    labels = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2, 2, 2])
    # class 0 at 0, 2, 4, 6 -> last two 4, 6; class 1 at 1, 5; class 2 at 3, 7, 8, 9 -> 8, 9
    assert ER.ring_contents(labels, 2).tolist() == [1, 4, 5, 6, 8, 9]
    assert ER.ring_contents(labels, 10).tolist() == list(range(10))
    assert ER.ring_contents(labels[:0], 2).tolist() == []


def test_er_replayed_samples_go_through_their_own_tasks_head():
    tasks, m = _run("er", "permuted", per_class=3)
    _learn(m, tasks[0])
    _learn(m, tasks[1])
    m.start_task(2, 1)
    x, y = m.batch(tasks[2], torch.arange(8), torch.Generator().manual_seed(2))
    assert set(m.row_task[8:].tolist()) <= {0, 1} and (m.row_task[:8] == 2).all()
    _, ce = m.loss(x, y, 2, 0)
    hand = torch.stack(
        [F.cross_entropy(m.target(x[k : k + 1], int(m.row_task[k])), y[k : k + 1]) for k in range(len(y))]
    ).mean()
    assert ce.item() == pytest.approx(hand.item(), rel=1e-5)
    # a replayed row is its task's transform of a stored raw sample: task 0's permutation
    k = int((m.row_task == 0).nonzero()[0])
    assert any(
        torch.equal(x[k], tasks[0].inputs(m.memory_x[0][j : j + 1])[0]) for j in range(int(m.filled[0]))
    )
