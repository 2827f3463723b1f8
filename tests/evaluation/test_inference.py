"""Task-id-free settings: entropy task inference and FeCAM, against naive loops; the
batched evaluation of all masks against the per-task loop; `hypermask evaluate`."""

import json

import numpy as np
import pytest
import torch

from conftest import FMNIST, ROOT, TINY
from hypermask.cli.main import main
from hypermask.config import FeCAMConfig
from hypermask.evaluation.accuracy import entropy_select
from hypermask.evaluation.fecam import (
    ClassStats,
    fit_task,
    mahalanobis,
    nearest_class,
    normalize_cov,
    shrink_cov,
)
from hypermask.methods.hypermask import semi_binary_masks
from hypermask.methods.shared.functional import masked_forward, stacked_masked_forward
from hypermask.methods.shared.hypernetwork import HyperNetwork
from hypermask.nets import MLP, ResNet20, ZenkeNet


def test_entropy_selection_equals_per_sample_loop():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 50, 3, generator=g) * 3
    task, cls = entropy_select(out)
    for n in range(50):  # the reference's loop: softmax, entropy per task, argmin, argmax
        ent = []
        for k in range(4):
            p = torch.softmax(out[k, n], -1)
            ent.append(float(-(p * torch.log(p)).sum()))
        k = int(np.argmin(ent))
        assert task[n] == k and cls[n] == int(out[k, n].argmax())


def _np_shrink(cov):
    diag_mean = np.mean(np.diagonal(cov))
    off = np.copy(cov)
    np.fill_diagonal(off, 0.0)
    mask = off != 0.0
    off_mean = (off * mask).sum() / mask.sum()
    iden = np.eye(cov.shape[0])
    return cov + diag_mean * iden + off_mean * (1 - iden)


def test_fecam_statistics_and_distances_equal_naive_loops():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 5)) + 1
    labels = rng.integers(0, 3, 60)
    stats = fit_task(torch.tensor(feats), torch.tensor(labels), 3, FeCAMConfig())
    test = rng.normal(size=(7, 5)) + 1
    d = mahalanobis(torch.tensor(test), stats, normalize=True).numpy()
    for c in range(3):
        fc = feats[labels == c]
        cov = _np_shrink(_np_shrink(np.cov(fc, rowvar=False)))
        sd = np.sqrt(np.diagonal(cov))
        cov = cov / np.outer(sd, sd)
        inv = np.linalg.pinv(cov + 1e-8)
        mu = fc.mean(0) / np.linalg.norm(fc.mean(0))
        for n in range(7):
            x = test[n] / np.linalg.norm(test[n])
            assert d[n, c] == pytest.approx(float((x - mu) @ inv @ (x - mu)), rel=1e-8)
    assert torch.allclose(
        shrink_cov(torch.tensor(np.cov(feats, rowvar=False)), 1),
        torch.tensor(_np_shrink(np.cov(feats, rowvar=False))),
    )
    assert torch.allclose(
        normalize_cov(torch.tensor([[4.0, 2.0], [2.0, 9.0]])), torch.tensor([[1.0, 1 / 3], [1 / 3, 1.0]])
    )


def test_nearest_class_over_tasks_equals_naive_loop():
    g = torch.Generator().manual_seed(1)
    stats = [
        ClassStats(
            torch.randn(c, 4, generator=g, dtype=torch.float64),
            torch.eye(4, dtype=torch.float64).expand(c, 4, 4).clone(),
        )
        for c in (2, 3, 1)
    ]
    feats = torch.randn(3, 9, 4, generator=g)
    task, cls = nearest_class(feats, stats, normalize=False)
    for n in range(9):
        best = min(
            (float(((feats[k, n].double() - stats[k].means[c]) ** 2).sum()), k, c)
            for k in range(3)
            for c in range(len(stats[k].means))
        )
        assert (task[n].item(), cls[n].item()) == best[1:]


@pytest.mark.parametrize(
    "net,shape",
    [
        (MLP(64, [16], 5), (7, 64)),
        (ResNet20(3, 4, n_tasks=3, width=1), (5, 3, 32, 32)),
        (ZenkeNet("cifar", 4), (5, 3, 32, 32)),
    ],
)
def test_batched_masks_equal_per_task_loop(net, shape):
    torch.manual_seed(0)
    net.eval()
    hnet = HyperNetwork(net.masked_shapes(), 3, 4, [6])
    h = hnet(torch.arange(3))
    masks = [semi_binary_masks(h[k], net.masked_shapes(), 30.0) for k in range(3)]
    x = torch.randn(shape)
    with torch.no_grad():
        fast = stacked_masked_forward(net, masks, x)
        slow = torch.stack([masked_forward(net, m, x, None) for m in masks])
        fast_f = stacked_masked_forward(net, masks, x, features=True)
        slow_f = torch.stack([masked_forward(net, m, x, None, features=True) for m in masks])
    assert torch.allclose(fast, slow, atol=1e-5) and torch.allclose(fast_f, slow_f, atol=1e-5)


def test_chunked_evaluation_equals_whole_split():
    """The default evaluation batches an MLP's split in chunks of EVAL_CHUNK rows; the
    accuracy is the one of the whole split in one batch. A batch-statistics ResNet always sees
    the whole split (its outputs depend on the batch)."""
    from hypermask.config import load_experiment
    from hypermask.data.tasks import Split, Task
    from hypermask.evaluation.accuracy import EVAL_CHUNK, split_accuracy
    from hypermask.methods.hypermask import HyperMask

    torch.manual_seed(0)
    cfg = load_experiment(ROOT / "params.yaml", "digits_split")
    n = 2 * EVAL_CHUNK + 37
    g = torch.Generator().manual_seed(3)
    for target, x in (
        (MLP(64, [16], 2), torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)),
        (ResNet20(3, 2, n_tasks=5, width=1), torch.rand(300, 3, 8, 8, generator=g)),
    ):
        learner = HyperMask(cfg, target).eval()
        split = Split(x, torch.randint(0, 2, (len(x),), generator=g))
        task = Task(0, [0, 1], split, split, split)
        learner.sparsity = 30.0
        ctx = learner.eval_context([0])
        whole = split_accuracy(learner, ctx, task, split, len(x))
        assert split_accuracy(learner, ctx, task, split, None) == whole
        assert target.batch_dependent == isinstance(target, ResNet20)
        if target.batch_dependent:  # chunks would change the batch statistics, hence the rule
            assert split_accuracy(learner, ctx, task, split, 64) != whole


def test_evaluate_reproduces_stored_til_and_entropy(tiny_params, tmp_path, capsys):
    import yaml

    p = yaml.safe_load(tiny_params.read_text())
    p["benchmarks"]["tiny"]["evaluation"] = {"settings": ["til", "entropy", "fecam"]}
    tiny_params.write_text(yaml.safe_dump(p))
    args = ["--params", str(tiny_params)]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (
        main(
            [
                *args,
                "train",
                "tiny",
                "--seed",
                "1",
                "--results",
                str(tmp_path),
                "--quiet",
                "--tracking-uri",
                uri,
            ]
        )
        == 0
    )
    run = tmp_path / "runs/tiny/hypermask/seed_1"
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["entropy"]) >= {"task_accuracy", "class_accuracy", "final_task_accuracy"}
    assert (
        len(m["entropy"]["task_accuracy"]) == 3 and m["entropy"]["task_accuracy"][0] == 100.0
    )  # one task: no doubt
    assert 0 <= m["fecam"]["final_accuracy"] <= 100
    for setting in ("til", "entropy", "fecam"):
        assert (
            main(
                [
                    *args,
                    "evaluate",
                    "tiny",
                    "--seed",
                    "1",
                    "--setting",
                    setting,
                    "--results",
                    str(tmp_path),
                    "--tracking-uri",
                    uri,
                ]
            )
            == 0
        )
    til = json.loads((run / "eval_til.json").read_text())
    assert til["after_task"] == [0, 1, 2]
    assert til["accuracy_rows"] == m["accuracy_matrix"] and til["max_abs_difference_to_metrics_json"] == 0.0
    ent = json.loads((run / "eval_entropy.json").read_text())
    assert ent["task_accuracy"] == m["entropy"]["task_accuracy"]
    fe = json.loads((run / "eval_fecam.json").read_text())
    assert fe["accuracy"] == m["fecam"]["accuracy"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 1  # evaluation logged into the training run
    assert [
        x.step for x in client.get_metric_history(runs[0].info.run_id, "posthoc_entropy_task_accuracy")
    ] == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fecam_class_incremental_on_split_fashion_mnist(tmp_path):
    """The FeCAM path on real data: Split Fashion-MNIST, 5 tasks, a short budget."""
    import copy

    import yaml

    p = copy.deepcopy(TINY)
    p["benchmarks"]["fm"] = {
        "seeds": [1],
        "data": {
            "source": "fashion_mnist",
            "root": str(FMNIST),
            "scenario": "split",
            "n_tasks": 5,
            "classes_per_task": 2,
            "validation_size": 500,
        },
        "target": {"kind": "mlp", "hidden": [100, 100]},
        "train": {"iterations": 150, "batch_size": 128},
        "evaluation": {"settings": ["til", "fecam"], "batch_size": 2000},
    }
    p["methods"]["hypermask"]["benchmarks"] = {
        "fm": {
            "hypermask": {
                "hnet_hidden": [25, 25],
                "embedding_dim": 24,
                "beta": 1e-3,
                "lambda": 1e-3,
                "sparsity": 30,
            }
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    assert (
        main(
            [
                "--params",
                str(tmp_path / "params.yaml"),
                "train",
                "fm",
                "--seed",
                "1",
                "--results",
                str(tmp_path),
                "--quiet",
                "--no-tracking",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "runs/fm/hypermask/seed_1/metrics.json").read_text())
    assert m["fecam"]["accuracy"][0] > 90  # one task of 2 classes
    assert m["fecam"]["final_accuracy"] > 40, m["fecam"]  # 10 classes in competition; chance is 10%


# ------------------------------------------------------------------ task inference for every method
def _method_on_three_tasks(method: str, scenario: str, learn_tasks: int = 3):
    """`method` as its record builds it (its heads) on a 3-task MLP, with the tasks attached and
    the first `learn_tasks` of them learned."""
    from hypermask.config import ExperimentConfig
    from hypermask.data.tasks import Split, Task
    from hypermask.methods import build_method, heads_of
    from hypermask.nets import build_target

    data = {"source": "digits", "scenario": scenario, "n_tasks": 3}
    if scenario == "split":
        data["classes_per_task"] = 2
    cfg = ExperimentConfig.model_validate(
        {
            "name": f"x/{method}",
            "seeds": [1],
            "method": method,
            "data": data,
            "target": {"kind": "mlp", "hidden": [16]},
            "train": {"iterations": 1, "batch_size": 16},
        }
    )
    torch.manual_seed(0)
    n_out = 2 if scenario == "split" else 5
    m = build_method(cfg, build_target(cfg.target, (64,), n_out, 3, heads_of(cfg)))
    g = torch.Generator().manual_seed(1)
    tasks = []
    for t in range(3):
        split = Split(torch.rand(30, 1, 8, 8, generator=g), torch.randint(0, n_out, (30,), generator=g))
        tasks.append(Task(t, list(range(n_out)), split, split, split))
    m.attach(tasks)
    for t, task in enumerate(tasks[:learn_tasks]):  # each learned for a few steps, as the loop runs them
        m.start_task(t, 3)
        opt = m.make_optimizer(1e-2)
        for i in range(3):
            x, y = m.batch(task, torch.arange(16), torch.Generator().manual_seed(i))
            loss, _ = m.loss(x, y, t, i)
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.end_task(t, task)
    return m.eval(), tasks


@pytest.mark.parametrize("scenario", ["permuted", "split"])
def test_every_method_is_evaluated_without_the_task_id(scenario):
    """Every method has a model per task (its own parts, or a head of its own over the shared
    trunk), so the entropy and FeCAM settings apply to all of them: `all_task_outputs` is, task
    by task, the method's own output for that task, and entropy inference picks per sample the
    task a naive loop over the tasks' softmax entropies picks."""
    from hypermask.evaluation.accuracy import entropy_inference
    from hypermask.evaluation.settings import supported
    from hypermask.methods import METHODS

    for name, record in METHODS.items():
        assert supported("entropy", record) and supported("fecam", record), name
        m, tasks = _method_on_three_tasks(name, scenario)
        ctx = m.eval_context([0, 1, 2])
        x = tasks[1].inputs(tasks[1].test.x)
        for features in (False, True):
            loop = torch.stack([m.logits(ctx, x, t, features=features) for t in range(3)])
            assert torch.allclose(m.all_task_outputs(ctx, [0, 1, 2], x, features), loop, atol=1e-5), name
        got = entropy_inference(m, tasks, 3, batch_size=7)
        hits = total = 0
        for j, task in enumerate(tasks):  # the naive loop: per sample, per task, softmax entropy
            for i in range(len(task.test.y)):
                xi = task.inputs(task.test.x[i : i + 1])
                ent = []
                for t in range(3):
                    with torch.no_grad():
                        p = torch.softmax(m.logits(m.eval_context([t]), xi, t), dim=-1)
                    ent.append(float(-(p * p.clamp_min(1e-30).log()).sum()))
                hits += int(int(np.argmin(ent)) == j)
                total += 1
        assert got["task_accuracy"] == pytest.approx(100.0 * hits / total, abs=1e-9), name


def test_a_shared_heads_features_are_the_trunks_for_every_task():
    """A shared-network method's features under 'task k' are its trunk's, the same for every k
    (FeCAM then fits each task's class prototypes in one feature space), and its outputs under
    task k are the trunk through head block k, by hand."""
    m, tasks = _method_on_three_tasks("finetune", "permuted")
    x = tasks[0].inputs(tasks[0].test.x)
    feats = m.all_task_outputs({}, [0, 1, 2], x, features=True)
    assert torch.equal(feats[0], feats[1]) and torch.equal(feats[1], feats[2])
    head = m.target.head()
    out = m.all_task_outputs({}, [0, 1, 2], x)
    for k in range(3):
        hand = feats[0] @ head.weight.view(3, 5, -1)[k].t() + head.bias.view(3, 5)[k]
        assert torch.allclose(out[k], hand, atol=1e-6)


def test_fecam_fits_each_tasks_statistics_once_right_after_it_is_learned():
    """FeCAM is exemplar-free: task 0's prototypes and covariances are the ones fitted after task 0,
    not refitted with a later network on task 0's data; a checkpoint carries them to a resume."""
    from hypermask.config import FeCAMConfig
    from hypermask.engine.checkpoint import Progress
    from hypermask.evaluation.fecam import fecam_inference, fit_task, kept_stats, load_stats, task_features

    m, tasks = _method_on_three_tasks("finetune", "permuted")  # every task learned: the final network
    m2, _ = _method_on_three_tasks("finetune", "permuted")
    cfg = FeCAMConfig()
    # task 0's statistics as fitted after task 0 (a network that has learned task 0 only)
    first, _ = _method_on_three_tasks("finetune", "permuted", learn_tasks=1)
    fecam_inference(first, tasks, 1, cfg, 64)
    after_task0 = kept_stats(first)[0]
    load_stats(
        m, {"0": {"means": after_task0.means, "precisions": after_task0.precisions}}, torch.device("cpu")
    )
    fecam_inference(m, tasks, 3, cfg, 64)
    assert torch.equal(kept_stats(m)[0].means, after_task0.means)  # kept, not refitted
    refit = fit_task(task_features(m, {}, tasks[0], tasks[0].train.x, 64), tasks[0].train.y, 5, cfg)
    assert not torch.allclose(refit.means, after_task0.means)  # the final network's features differ
    assert torch.allclose(
        kept_stats(m)[1].means,
        fit_task(task_features(m, {}, tasks[1], tasks[1].train.x, 64), tasks[1].train.y, 5, cfg).means,
    )
    state = Progress(np.zeros(3), [np.zeros(3)]).checkpoint(m, 0.0, "{}")["fecam_stats"]
    load_stats(m2, state, torch.device("cpu"))
    assert set(kept_stats(m2)) == {0, 1, 2}
    assert all(torch.equal(kept_stats(m2)[k].precisions, kept_stats(m)[k].precisions) for k in range(3))


def test_fecam_of_a_diverged_network_counts_its_samples_wrong_instead_of_failing():
    """Non-finite features (a network that diverged, HNET at a width its beta was not tuned for)
    give prototypes that match nothing: FeCAM's accuracy counts those samples wrong, the run goes on."""
    from hypermask.config import FeCAMConfig
    from hypermask.evaluation.fecam import fit_task, nearest_class

    g = torch.Generator().manual_seed(0)
    good = fit_task(torch.randn(40, 6, generator=g), torch.arange(40) % 2, 2, FeCAMConfig())
    bad = fit_task(torch.full((40, 6), float("nan")), torch.arange(40) % 2, 2, FeCAMConfig())
    assert torch.isnan(bad.means).all()
    dead = fit_task(torch.zeros(40, 6), torch.arange(40) % 2, 2, FeCAMConfig())  # 0/0 correlations
    assert torch.isnan(dead.means).all() and torch.isfinite(dead.precisions).all()
    feats = torch.stack([torch.randn(5, 6, generator=g), torch.full((5, 6), float("nan"))])
    task, _ = nearest_class(feats, [good, bad], True)
    assert (task == 0).all()  # the diverged task's model is never the nearest
