"""Every registered method through the whole contract, on real digits: 2 tasks x 2 iterations
with the real step and loop, then what the rest of the project relies on: the checkpoint round
trip (a fresh learner loaded from the state gives identical outputs), `memory()` (the bytes of
the state it keeps, by part), the declared capabilities (task inference: `all_task_outputs`
equals each task's own outputs; one-shot inference; one head per task or one shared), the
CUDA-graph key and the fingerprint coverage of its settings block. A new method registered in
METHODS is tested here without a line added."""

from __future__ import annotations

import io

import pytest
import torch

from hypermask.config import ExperimentConfig, training_fingerprint
from hypermask.engine.loop import build_run, train_task
from hypermask.events import Events
from hypermask.methods import METHODS, Method, heads_of


def _cfg(name: str, scenario: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "contract",
            "seeds": [1],
            "method": name,
            "data": {
                "source": "digits",
                "scenario": scenario,
                "n_tasks": 2,
                "validation_size": 10,
                **({"classes_per_task": 2} if scenario == "split" else {}),
            },
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 2, "batch_size": 16, "val_every": 1},
        }
    )


def _outputs(learner, tasks, x):
    learner.eval()
    with torch.no_grad():
        ctx = learner.eval_context([0, 1])
        return ctx, torch.stack([learner.logits(ctx, x, t) for t in (0, 1)])


@pytest.mark.parametrize("scenario", ["permuted", "split"])
@pytest.mark.parametrize("name", list(METHODS))
def test_method_contract(name, scenario):
    entry = METHODS[name]
    cfg = _cfg(name, scenario)
    tasks, learner = build_run(cfg, 1, torch.device("cpu"))
    assert isinstance(learner, Method)
    assert hasattr(learner, "all_task_outputs") == entry.task_inference
    heads = (
        2 if entry.per_task_head is True or (entry.per_task_head == "split" and scenario == "split") else 1
    )
    assert heads_of(cfg) == heads == learner.target.n_heads
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    for t in (0, 1):
        out = train_task(learner, tasks[t], cfg, 1, Events([]), 2 * t)
        assert out["iterations"] == 2
        learner.end_task(t, tasks[t])
        key = learner.graph_key(t, 0)
        assert key is None or hash(key) == hash(learner.graph_key(t, 1))
    after = learner.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after), "nothing was trained"

    x = tasks[1].inputs(tasks[1].test.x[:7])
    ctx, y = _outputs(learner, tasks, x)
    assert y.shape == (2, 7, tasks[0].n_classes) and torch.isfinite(y).all()
    if entry.task_inference:
        stacked = learner.all_task_outputs(ctx, [0, 1], x)
        assert torch.allclose(stacked, y, atol=1e-5)
    assert hasattr(learner, "superposed_logits") == entry.one_shot
    if entry.one_shot:
        from hypermask.evaluation.accuracy import one_shot_gradient

        grad = one_shot_gradient(learner, ctx, [0, 1], x)
        assert grad.shape == (2,) and torch.isfinite(grad).all()

    # the checkpoint round trip: a fresh learner of the same run, loaded, gives the same outputs
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in learner.state_dict().items()}, buf)
    buf.seek(0)
    _, fresh = build_run(cfg, 1, torch.device("cpu"), tasks=tasks)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    _, y2 = _outputs(fresh, tasks, x)
    assert torch.equal(y, y2)

    # memory(): the bytes it keeps, by part, adding up, never more than its state holds; the
    # parameters it trained, at least one and no more than it has
    mem = learner.memory()
    assert mem["parts"] and all(isinstance(v, int) and v > 0 for v in mem["parts"].values()), mem
    assert mem["bytes"] == sum(mem["parts"].values())
    assert mem["bytes"] <= sum(v.numel() * v.element_size() for v in learner.state_dict().values())
    assert 0 < mem["trained_parameters"] <= sum(p.numel() for p in learner.parameters())

    # the fingerprint covers the method's own settings block, and only its own
    if entry.block:
        assert training_fingerprint(_nudged(cfg, entry.block)) != training_fingerprint(cfg)
    other = next(e.block for m, e in METHODS.items() if e.block and e.block != entry.block)
    assert training_fingerprint(_nudged(cfg, other)) == training_fingerprint(cfg)


def _nudged(cfg: ExperimentConfig, block: str) -> ExperimentConfig:
    """cfg with the first number of settings block `block` changed (within its bounds)."""
    d = cfg.as_dict()
    k, v = next(
        (k, v) for k, v in d[block].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    )
    d[block][k] = v + 1 if isinstance(v, int) else (v / 2 if v else 0.5)
    return ExperimentConfig.model_validate(d)


def _colour_tasks(n_tasks: int = 2, n: int = 24) -> list:
    """Two tasks of random 32x32 colour images (the conv targets' input; CIFAR-100 itself is
    not installed here: what is checked is that the method runs on the target, not accuracy)."""
    from hypermask.data.tasks import Split, Task

    g = torch.Generator().manual_seed(0)

    def split():
        return Split(
            torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 2, (n,), generator=g),
        )

    return [Task(t, [2 * t, 2 * t + 1], split(), split(), split()) for t in range(n_tasks)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["resnet20", "zenkenet"])
@pytest.mark.parametrize("name", list(METHODS))
def test_declared_target_networks(name, kind):
    """A method's record says which target networks it is implemented for: on those, it trains
    (2 tasks x 1 iteration, finite outputs); on the others, the configuration refuses it with
    the record's reason."""
    from pydantic import ValidationError

    record = METHODS[name]
    raw = {
        "name": "targets",
        "seeds": [1],
        "method": name,
        "data": {
            "source": "cifar100",
            "root": "unused",
            "scenario": "split",
            "n_tasks": 2,
            "classes_per_task": 2,
        },
        "target": {"kind": kind, "width": 1} if kind == "resnet20" else {"kind": kind},
        "train": {"iterations": 1, "batch_size": 8},
    }
    if kind not in record.targets:
        with pytest.raises(ValidationError, match=record.targets_why.split(" (")[0][:40]):
            ExperimentConfig.model_validate(raw)
        return
    cfg = ExperimentConfig.model_validate(raw)
    tasks = _colour_tasks()
    _, learner = build_run(cfg, 1, torch.device("cpu"), tasks=tasks)
    for t in (0, 1):
        train_task(learner, tasks[t], cfg, 1, Events([]), t)
        learner.end_task(t, tasks[t])
    x = tasks[1].inputs(tasks[1].test.x[:4])
    _, y = _outputs(learner, tasks, x)
    assert y.shape == (2, 4, 2) and torch.isfinite(y).all()
