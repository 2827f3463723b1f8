"""The class-incremental methods (ER class-IL, DER++, LwF, joint_ci) against hand computations
and naive loops: the softmax over every class seen, the reservoir, DER++'s and LwF's losses,
and the prediction without the task id by the one head."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import learn
from hypermask.config import ExperimentConfig
from hypermask.data.tasks import Split, Task
from hypermask.evaluation.accuracy import class_incremental_inference
from hypermask.methods import build_method, heads_of
from hypermask.methods.derpp import reservoir_slots
from hypermask.methods.lwf import distillation
from hypermask.methods.shared.class_incremental import seen_cross_entropy
from hypermask.nets import build_target

C = 2  # classes per task


def _build(method: str, n_tasks: int = 3, **block):
    cfg = ExperimentConfig.model_validate(
        {
            "name": f"x/{method}",
            "seeds": [1],
            "method": method,
            **({method: block} if block else {}),
            "data": {"source": "digits", "scenario": "split", "n_tasks": n_tasks, "classes_per_task": C},
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 1, "batch_size": 16},
        }
    )
    torch.manual_seed(0)
    m = build_method(cfg, build_target(cfg.target, (64,), C, n_tasks, heads_of(cfg)))
    g = torch.Generator().manual_seed(3)
    tasks = []
    for t in range(n_tasks):
        split = Split(torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, C, (40,), generator=g))
        tasks.append(Task(t, [C * t, C * t + 1], split, split, split))
    m.attach(tasks)
    return m, tasks


def _hand_logits(m, x):
    """The one head over all classes by hand: the MLP's ReLU layer, then the whole output layer."""
    net = m.target
    h = net.features(x)
    return h @ net.head().weight.t() + net.head().bias


def test_seen_cross_entropy_is_a_softmax_over_the_seen_tasks_classes():
    out = torch.randn(6, 3 * C, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    task = torch.tensor([0, 0, 1, 1, 1, 0])
    hand = 0.0
    for i in range(6):  # a softmax over classes 0..2C-1 (tasks 0 and 1), the global class t*C + y
        logp = out[i, : 2 * C] - torch.logsumexp(out[i, : 2 * C], 0)
        hand -= float(logp[int(task[i]) * C + int(y[i])]) / 6
    assert float(seen_cross_entropy(out, y, task, 2, C)) == pytest.approx(hand, rel=1e-6)


def test_er_class_incremental_loss_and_memory_are_ers():
    m, tasks = _build("er_ci", per_class=3)
    learn(m, tasks[0], 4)
    gen = torch.Generator().manual_seed(0)
    m.start_task(1, 1)
    x, y = m.batch(tasks[1], torch.arange(8), gen)
    assert len(x) == 16 and (m.row_task[:8] == 1).all() and (m.row_task[8:] == 0).all()
    loss, _ = m.loss(x, y, 1, 0)
    out = _hand_logits(m, x)[:, : 2 * C]  # tasks 0 and 1 seen: 4 classes
    hand = F.cross_entropy(out, y + C * m.row_task)
    assert float(loss.detach()) == pytest.approx(float(hand), rel=1e-6)
    assert int(m.filled[0]) == 3 * C  # ER's declared memory: per_class slots for each class


def _sequential_reservoir(seen: int, size: int, batch: int, u: np.ndarray) -> dict[int, int]:
    """Vitter's algorithm R one sample at a time, with the same uniform numbers: slot -> sample."""
    held: dict[int, int] = {}
    k = 0
    for i in range(batch):
        n = seen + i  # samples offered before this one
        if n < size:
            held[n] = i
        else:
            j = int(np.floor(u[k] * (n + 1)))
            k += 1
            if j < size:
                held[j] = i
    return held


@pytest.mark.parametrize("seen", [0, 5, 40])
def test_reservoir_slots_equal_a_sequential_reservoir(seen):
    size, batch = 10, 16
    slots = reservoir_slots(seen, size, batch, np.random.default_rng(7))
    n_late = int(np.sum(seen + np.arange(batch) >= size))
    u = np.random.default_rng(7).random(n_late)
    held = _sequential_reservoir(seen, size, batch, u)
    assert {int(s): i for i, s in enumerate(slots) if s >= 0} == held


def test_reservoir_keeps_each_sample_with_probability_size_over_seen():
    """After n offers, every offered sample is in a reservoir of M slots with probability M / n."""
    size, n, runs = 5, 20, 4000
    count = np.zeros(n)
    rng = np.random.default_rng(0)
    for _ in range(runs):
        slots = reservoir_slots(0, size, n, rng)
        count[slots >= 0] += 1
    assert np.allclose(count / runs, size / n, atol=0.04)


def test_derpp_loss_is_the_papers():
    """L = CE(current) + alpha MSE(h(x'), z') + beta CE(h(x''), y''), by hand from the batch it built,
    each over the whole head; the reservoir then holds the current batch's samples with the logits of that step."""
    m, tasks = _build("derpp", per_class=4, alpha=0.3, beta=0.7)
    learn(m, tasks[0], 3)
    assert m.seen == 3 * 16 and int(m.offered) == 48
    gen = torch.Generator().manual_seed(1)
    m.start_task(1, 1)
    idx = torch.arange(8)
    x, y = m.batch(tasks[1], idx, gen)
    n1, z1, n2 = m.replay
    assert len(x) == 8 + n1 + n2 and n1 == n2 == 8
    before = m.buffer_logits.clone()
    loss, ce = m.loss(x, y, 1, 0)
    out = _hand_logits(m, x)

    # every term over the whole head, all 3 tasks' classes (the authors' Mammoth): a softmax
    # over the 6 outputs by hand, the third task's unseen classes included
    def hand_cross_entropy(logits, labels):
        return -(logits - logits.exp().sum(1, keepdim=True).log())[torch.arange(len(labels)), labels].mean()

    assert out.shape[1] == 3 * C
    hand_ce = hand_cross_entropy(out[:8], tasks[1].train.y[:8] + C)
    hand = (
        hand_ce + 0.3 * ((out[8 : 8 + n1] - z1) ** 2).mean() + 0.7 * hand_cross_entropy(out[8 + n1 :], y[8:])
    )
    assert float(hand_ce) != pytest.approx(float(F.cross_entropy(out[:8, : 2 * C], tasks[1].train.y[:8] + C)))
    assert float(ce.detach()) == pytest.approx(float(hand_ce), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(float(hand), rel=1e-6)
    changed = (m.buffer_logits != before).any(1).nonzero().flatten()
    for s in changed.tolist():  # a replaced slot holds a current sample, its class, task, logits
        i = int((tasks[1].train.x[:8] == m.buffer_x[s]).flatten(1).all(1).nonzero()[0])
        assert int(m.buffer_task[s]) == 1 and int(m.buffer_y[s]) == int(tasks[1].train.y[i]) + C
        assert torch.allclose(m.buffer_logits[s], out[i].detach(), atol=1e-6)


def test_lwf_distils_the_earlier_classes_from_its_frozen_copy():
    m, tasks = _build("lwf", **{"lambda": 0.5, "temperature": 2.0})
    learn(m, tasks[0], 4)
    frozen = {k: v.clone() for k, v in m.target.state_dict().items()}
    assert all(torch.equal(v, m.previous.state_dict()[k]) for k, v in frozen.items())
    learn(m, tasks[1], 3)  # the copy is task 0's network until task 1 ends
    x, y = tasks[1].train.x[:10], tasks[1].train.y[:10]
    x = tasks[1].inputs(x)
    m.previous.load_state_dict(frozen)
    loss, ce = m.loss(x, y, 1, 0)
    new = _hand_logits(m, x)
    with torch.no_grad():
        old = m.previous.head()(m.previous.features(x))[:, :C]
    soft = torch.softmax(old / 2, 1)
    kd = -(soft * torch.log_softmax(new[:, :C] / 2, 1)).sum(1).mean() * 4
    hand_ce = F.cross_entropy(new[:, : 2 * C], y + C)
    assert float(ce.detach()) == pytest.approx(float(hand_ce), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(float(hand_ce + 0.5 * kd), rel=1e-6)
    assert float(distillation(old, old, 2.0)) == pytest.approx(
        float(-(soft * soft.log()).sum(1).mean() * 4), rel=1e-6
    )
    assert m.trained_parameters() == sum(p.numel() for p in m.target.parameters())


def test_joint_ci_trains_one_softmax_over_every_class():
    m, tasks = _build("joint_ci")
    gen = torch.Generator().manual_seed(0)
    x, y = m.batch(tasks[0], torch.arange(12), gen)
    loss, _ = m.loss(x, y, 0, 0)
    hand = F.cross_entropy(_hand_logits(m, x), y + C * m.row_task)  # all 3 x C classes from the start
    assert float(loss.detach()) == pytest.approx(float(hand), rel=1e-6)


@pytest.mark.parametrize("method", ["er_ci", "derpp", "lwf", "joint_ci"])
def test_class_incremental_prediction_is_the_argmax_over_seen_classes(method):
    """Without the task id: per sample, the argmax of the one head over the classes of the seen
    tasks, right when it is the sample's global class (a naive per-sample loop)."""
    m, tasks = _build(method)
    for t in range(2):
        learn(m, tasks[t], 5)
    got = class_incremental_inference(m.eval(), tasks, 2, batch_size=7)
    hits = task_hits = total = 0
    with torch.no_grad():
        for j in range(2):
            for i in range(len(tasks[j].test.y)):
                out = _hand_logits(m, tasks[j].inputs(tasks[j].test.x[i : i + 1]))[0, : 2 * C]
                g = int(out.argmax())
                hits += int(g == j * C + int(tasks[j].test.y[i]))
                task_hits += int(g // C == j)
                total += 1
    assert got["class_accuracy"] == pytest.approx(100 * hits / total)
    assert got["task_accuracy"] == pytest.approx(100 * task_hits / total)


def test_a_sweeps_class_incremental_score_reads_the_validation_samples_only():
    """evaluate_settings(split="val") (a study's objective): the classil setting over the tasks'
    validation samples, against a naive loop over them; the test samples (other data) give another
    figure, and the tasks themselves are left as they were."""
    from hypermask.engine.loop import evaluate_settings

    m, tasks = _build("er_ci")
    g = torch.Generator().manual_seed(11)
    for t, task in enumerate(tasks):  # validation samples of their own, 25 a task
        tasks[t] = Task(
            t,
            task.classes,
            task.train,
            Split(torch.rand(25, 1, 8, 8, generator=g), torch.randint(0, C, (25,), generator=g)),
            task.test,
        )
    for t in range(2):
        learn(m, tasks[t], 5)
    cfg = ExperimentConfig.model_validate(
        {
            "name": "x/er_ci",
            "seeds": [1],
            "method": "er_ci",
            "data": {"source": "digits", "scenario": "split", "n_tasks": 3, "classes_per_task": C},
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 1, "batch_size": 16},
            "evaluation": {"settings": ["til", "classil"], "batch_size": 9},
        }
    )
    m.eval()
    got = evaluate_settings(m, tasks, 1, cfg, split="val")["classil"]
    hits = total = 0
    with torch.no_grad():
        for j in range(2):
            out = _hand_logits(m, tasks[j].inputs(tasks[j].val.x))[:, : 2 * C]
            hits += int((out.argmax(1) == j * C + tasks[j].val.y).sum())
            total += len(tasks[j].val.y)
    assert total == 50 and got["class_accuracy"] == pytest.approx(100 * hits / total)
    on_test = evaluate_settings(m, tasks, 1, cfg)["classil"]
    assert on_test == class_incremental_inference(m, tasks, 2, batch_size=9)
    assert len(tasks[0].test.y) == 40  # the tasks were not changed
