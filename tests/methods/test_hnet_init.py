"""hnet as hypercl builds and trains it: its hypernetwork's initialisation (mnist/train_utils.py,
generate_classifier) and the look-ahead of its regulariser (utils/optim_step.py adam_step and
mnist/train_splitMNIST.py, train_class_one_t), checked against hand computations."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from hypermask.config import ExperimentConfig
from hypermask.data.tasks import Split, Task
from hypermask.methods import build_method, heads_of
from hypermask.methods.hnet import ChunkedHyperNetwork, adam_candidate
from hypermask.nets import build_target
from hypermask.optim import FusedAdam


def _build(**block):
    cfg = ExperimentConfig.model_validate(
        {
            "name": "x/hnet",
            "seeds": [1],
            "method": "hnet",
            "hnet": block,
            "data": {"source": "digits", "scenario": "permuted", "n_tasks": 3},
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 1, "batch_size": 16},
        }
    )
    torch.manual_seed(0)
    return build_method(cfg, build_target(cfg.target, (64,), 5, 3, heads_of(cfg)))


def _task(t: int, n: int = 40) -> Task:
    g = torch.Generator().manual_seed(t)
    split = Split(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g))
    return Task(t, list(range(5)), split, split, split)


def test_chunked_hypernetwork_is_initialised_as_hypercl_does():
    """Xavier-uniform weight matrices (U(-b, b), b = sqrt(6 / (fan_in + fan_out))), zero biases,
    task and chunk embeddings N(0, 1) (hypercl's --std_normal_temb and --std_normal_emb, 1)."""
    torch.manual_seed(0)
    h = ChunkedHyperNetwork(
        total=200_000, n_tasks=400, emb_dim=64, chunk_emb_dim=12, chunk_size=2000, hidden=[100, 75, 50]
    )
    for layer in [*h.hidden, h.out]:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = layer.weight.detach()
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.99 * bound  # fills the interval: not a narrower law
        # the variance of U(-b, b) is b^2 / 3 (within 5 standard errors of the sample's)
        n = w.numel()
        assert abs(w.var().item() - bound**2 / 3) < 5 * (bound**2 / 3) * math.sqrt(0.8 / n)
        assert torch.count_nonzero(layer.bias) == 0
    for emb in (h.embeddings, h.chunk_embeddings):
        e = emb.detach()
        n = e.numel()
        assert abs(e.mean().item()) < 5 / math.sqrt(n)
        assert abs(e.std().item() - 1.0) < 5 * math.sqrt(0.5 / n)


def test_the_method_uses_that_initialisation():
    m = _build(hnet_hidden=[8], embedding_dim=4, chunk_embedding_dim=3, chunk_size=100)
    for layer in [*m.hnet.hidden, m.hnet.out]:
        fan_out, fan_in = layer.weight.shape
        assert layer.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0


def _naive_adam_step(p, g, m, v, step, lr, b1=0.9, b2=0.999, eps=1e-8):
    """hypercl's adam_step written out for one tensor."""
    s = step + 1
    m2 = b1 * m + (1 - b1) * g
    v2 = b2 * v + (1 - b2) * g * g
    return -(lr * math.sqrt(1 - b2**s) / (1 - b1**s)) * (m2 / (v2.sqrt() + eps))


@pytest.mark.parametrize("kind", ["fused", "torch"])
def test_adam_candidate_is_hypercls_step_and_leaves_the_optimiser_alone(kind):
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(30))
    opt = FusedAdam([p], lr=0.01) if kind == "fused" else torch.optim.Adam([p], lr=0.01)
    m = torch.zeros(30)
    v = torch.zeros(30)
    # the first step from a fresh state, then one after three real steps
    g = torch.randn(30)
    assert torch.allclose(adam_candidate(opt, [p], [g])[0], _naive_adam_step(p, g, m, v, 0, 0.01), atol=1e-7)
    for _ in range(3):
        p.grad = torch.randn(30)
        gr = p.grad.clone()
        m, v = 0.9 * m + 0.1 * gr, 0.999 * v + 0.001 * gr * gr
        opt.step()
    state = copy.deepcopy(opt.exp_avg if kind == "fused" else opt.state[p])
    g = torch.randn(30)
    cand = adam_candidate(opt, [p], [g])[0]
    assert torch.allclose(cand, _naive_adam_step(p, g, m, v, 3, 0.01), atol=1e-7)
    after = opt.exp_avg if kind == "fused" else opt.state[p]
    if kind == "fused":
        assert all(torch.equal(a, b) for a, b in zip(after, state))
    else:
        assert torch.equal(after["exp_avg"], state["exp_avg"]) and int(after["step"]) == 3
    # the step the optimiser then takes on g is the candidate (hypercl's eps placement differs
    # from torch's by eps * (1 - sqrt(1 - b2^s)): far below float32's precision here)
    before = p.detach().clone()
    p.grad = g.clone()
    opt.step()
    assert torch.allclose(p.detach() - before, cand, atol=1e-6)


def test_look_ahead_gradient_equals_hypercls_two_backward_passes():
    """hypercl: task loss backward, dTheta = adam_step(optimizer) (detached), regulariser at
    theta + dTheta backward, gradients accumulated. Ours: one loss whose gradient is that sum."""
    m = _build(hnet_hidden=[8], embedding_dim=4, chunk_embedding_dim=3, chunk_size=100, beta=0.3)
    task0, task1 = _task(0), _task(1)
    m.start_task(0, 5)
    opt = m.make_optimizer(1e-2)
    for i in range(5):
        loss, _ = m.loss(task0.inputs(task0.train.x), task0.train.y, 0, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.start_task(1, 5)
    opt = m.make_optimizer(1e-2)
    x, y = task1.inputs(task1.train.x), task1.train.y
    for i in range(3):  # a state with history
        loss, _ = m.loss(x, y, 1, i)
        opt.zero_grad()
        loss.backward()
        opt.step()

    trained = [p for p in m.parameters() if p.requires_grad]
    # ours
    loss, ce = m.loss(x, y, 1, 3)
    opt.zero_grad()
    loss.backward()
    ours = [p.grad.clone() for p in trained]
    # hypercl's way, by hand
    opt.zero_grad()
    h = m.hnet(slice(1, 2))[0]
    ce_hand = F.cross_entropy(m.forward_with(m.generated(h), x, 1), y)
    ce_hand.backward()
    theta = m.theta()
    names = list(theta)
    grads = [theta[n].grad.clone() for n in names]
    if isinstance(opt, FusedAdam):
        at = {n: next(i for i, q in enumerate(opt.params) if q is theta[n]) for n in names}
        st = {n: (opt.exp_avg[i], opt.exp_avg_sq[i], int(opt.steps[i])) for n, i in at.items()}
    else:
        st = {
            n: (
                opt.state[theta[n]]["exp_avg"],
                opt.state[theta[n]]["exp_avg_sq"],
                int(opt.state[theta[n]]["step"]),
            )
            for n in names
        }
    dtheta = {n: _naive_adam_step(theta[n], g, *st[n], lr=1e-2) for n, g in zip(names, grads)}
    moved = {n: theta[n] + dtheta[n].detach() for n in names}
    earlier = torch.func.functional_call(m.hnet, moved, (slice(0, 1),))
    reg = ((earlier - m.h_star) ** 2).sum() / 1
    (0.3 * reg).backward()
    hand = [p.grad.clone() for p in trained]
    assert ce.item() == pytest.approx(ce_hand.item(), rel=1e-6)
    for a, b in zip(ours, hand):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    # the look-ahead moves the regulariser's point: its value differs from the one at theta
    assert loss.item() == pytest.approx(ce_hand.item() + 0.3 * reg.item(), rel=1e-5)
    at_theta = ((m.hnet(slice(0, 1)) - m.h_star) ** 2).sum()
    assert not torch.isclose(at_theta, reg)


def test_look_ahead_off_is_the_plain_regulariser():
    m = _build(
        hnet_hidden=[8], embedding_dim=4, chunk_embedding_dim=3, chunk_size=100, beta=0.3, look_ahead=False
    )
    m.start_task(1, 1)
    m.make_optimizer(1e-2)
    t = _task(1)
    loss, ce = m.loss(t.inputs(t.train.x), t.train.y, 1, 0)
    reg = ((m.hnet(slice(0, 1)) - m.h_star) ** 2).sum()
    assert loss.item() == pytest.approx(ce.item() + 0.3 * reg.item(), rel=1e-5)
    assert (
        m.graph_key(1, 0) == 1
        and _build(hnet_hidden=[8], embedding_dim=4, chunk_embedding_dim=3, chunk_size=100).graph_key(1, 0)
        is None
    )
