"""End-to-end runs on real data (scikit-learn's digits): accuracy, forgetting, determinism,
resume, finished-run handling, MLflow."""

import json

import numpy as np
import pytest
import torch

from conftest import ROOT
from hypermask.cli.main import main
from hypermask.config import ExperimentConfig, load_experiment
from hypermask.data.tasks import Split, Task
from hypermask.engine.loop import train_task
from hypermask.engine.run import run
from hypermask.events import Events
from hypermask.methods import build_method
from hypermask.nets import build_target
from hypermask.tracking.tracker import Tracker


def _metrics(results, exp, seed):
    exp = exp if "/" in exp else f"{exp}/hypermask"
    return json.loads((results / "runs" / exp / f"seed_{seed}" / "metrics.json").read_text())


def _train(params, results, exp="tiny", seed=1, *extra):
    rc = main(
        [
            "--params",
            str(params),
            "train",
            exp,
            "--seed",
            str(seed),
            "--results",
            str(results),
            "--quiet",
            *extra,
        ]
    )
    assert rc == 0


@pytest.mark.slow
def test_digits_permuted_remembers_and_finetune_forgets(tmp_path):
    """The repository's digits_permuted experiment (real data, 5 tasks x 500 iterations)."""
    params = ROOT / "params.yaml"
    _train(params, tmp_path, "digits_permuted", 1, "--no-tracking")
    _train(params, tmp_path, "digits_permuted/finetune", 1, "--no-tracking")
    hm = _metrics(tmp_path, "digits_permuted", 1)
    ft = _metrics(tmp_path, "digits_permuted/finetune", 1)
    A, F = np.array(hm["accuracy_matrix"]), np.array(ft["accuracy_matrix"])
    assert A.shape == (5, 5)
    assert hm["average_accuracy"] >= 85.0, hm["average_accuracy"]
    # the values the digits study chose (objective: validation accuracy after the last task, not
    # BWT) forget more than the earlier ones: seed 1 measured -4.22 on an AMD EPYC and -5.17 on an
    # Intel Xeon (the CPU's kernels change the order of float reductions, and so the run)
    assert hm["bwt"] >= -7.0, hm["bwt"]
    assert F[0, 0] - F[-1, 0] >= 10.0, F[:, 0]  # fine-tuning forgets the first task
    assert hm["bwt"] > ft["bwt"] + 10
    # without the task id: entropy picks the right task far above chance (20% for 5 tasks);
    # measured 52.6% for seed 1 (the class is right for 51.4% of the samples)
    assert hm["entropy"]["final_task_accuracy"] >= 35.0, hm["entropy"]
    assert hm["entropy"]["task_accuracy"][0] == 100.0
    # the four metrics agree with the stored matrix
    T = 5
    assert hm["bwt"] == pytest.approx(np.mean([A[-1, j] - A[j, j] for j in range(T - 1)]), abs=1e-3)
    R = np.array(hm["random_init_accuracy"])
    assert hm["fwt"] == pytest.approx(np.mean([A[j - 1, j] - R[j] for j in range(1, T)]), abs=1e-3)
    assert 0 < R.mean() < 30  # an untrained model is near chance (10 classes)
    run_dir = tmp_path / "runs" / "digits_permuted" / "hypermask" / "seed_1"
    assert (run_dir / "accuracy_matrix.csv").read_text().startswith("after_task,task_0")
    assert (run_dir / "accuracy_matrix.png").stat().st_size > 1000
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        f"task_{t:03d}.pt" for t in range(5)
    ]
    for key in (
        "wall_seconds",
        "seconds_per_iteration",
        "device",
        "torch_version",
        "python_version",
        "git_commit",
        "config",
    ):
        assert key in hm


def test_same_command_twice_gives_identical_metrics(tiny_params, tmp_path):
    _train(tiny_params, tmp_path / "a", "tiny", 1, "--no-tracking")
    _train(tiny_params, tmp_path / "b", "tiny", 1, "--no-tracking")
    a, b = _metrics(tmp_path / "a", "tiny", 1), _metrics(tmp_path / "b", "tiny", 1)
    assert a["accuracy_matrix"] == b["accuracy_matrix"]
    assert a["random_init_accuracy"] == b["random_init_accuracy"]
    _train(tiny_params, tmp_path / "c", "tiny", 2, "--no-tracking")
    assert _metrics(tmp_path / "c", "tiny", 2)["accuracy_matrix"] != a["accuracy_matrix"]


def test_resume_after_second_task_equals_uninterrupted(tiny_params, tmp_path, capsys):
    _train(tiny_params, tmp_path / "full", "tiny", 1, "--no-tracking")
    _train(tiny_params, tmp_path / "cut", "tiny", 1, "--no-tracking", "--stop-after-task", "2")
    run_dir = tmp_path / "cut" / "runs" / "tiny" / "hypermask" / "seed_1"
    assert not (run_dir / "metrics.json").exists()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["task_000.pt", "task_001.pt"]
    rc = main(
        [
            "--params",
            str(tiny_params),
            "train",
            "tiny",
            "--seed",
            "1",
            "--results",
            str(tmp_path / "cut"),
            "--no-tracking",
        ]
    )
    assert rc == 0
    assert "resuming tiny/hypermask seed 1 after task 1" in capsys.readouterr().err
    full, cut = _metrics(tmp_path / "full", "tiny", 1), _metrics(tmp_path / "cut", "tiny", 1)
    assert full["accuracy_matrix"] == cut["accuracy_matrix"]
    for k in ("average_accuracy", "bwt", "fwt", "forgetting"):
        assert full[k] == cut[k]


def test_finished_run_is_left_alone_unless_forced(tiny_params, tmp_path, capsys):
    _train(tiny_params, tmp_path, "tiny", 1, "--no-tracking")
    m = tmp_path / "runs" / "tiny" / "hypermask" / "seed_1" / "metrics.json"
    before = m.stat().st_mtime_ns
    _train(tiny_params, tmp_path, "tiny", 1, "--no-tracking")
    assert m.stat().st_mtime_ns == before
    _train(tiny_params, tmp_path, "tiny", 1, "--no-tracking", "--force")
    assert m.stat().st_mtime_ns != before


def test_several_seeds_in_one_process_equal_each_seed_alone(tiny_params, tmp_path, capsys):
    """`train --seed 2 1`: each seed's results as if trained alone (no state leaks from the
    seed before); `--stage` writes them under staged/, a later plain `train` adopts them."""
    _train(tiny_params, tmp_path / "one", "tiny", 1, "--no-tracking")
    rc = main(
        [
            "--params",
            str(tiny_params),
            "train",
            "tiny",
            "--seed",
            "2",
            "1",
            "--results",
            str(tmp_path / "both"),
            "--quiet",
            "--no-tracking",
            "--stage",
        ]
    )
    assert rc == 0
    staged = tmp_path / "both/runs/tiny/hypermask/seed_1/staged/metrics.json"
    assert (
        json.loads(staged.read_text())["accuracy_matrix"]
        == _metrics(tmp_path / "one", "tiny", 1)["accuracy_matrix"]
    )
    assert not (tmp_path / "both/runs/tiny/hypermask/seed_1/metrics.json").exists()
    capsys.readouterr()
    rc = main(
        [
            "--params",
            str(tiny_params),
            "train",
            "tiny",
            "--seed",
            "1",
            "2",
            "--results",
            str(tmp_path / "both"),
            "--no-tracking",
            "--stage",
        ]
    )  # both staged with these settings: nothing to train
    assert rc == 0 and capsys.readouterr().out.count("nothing to do") == 2
    _train(tiny_params, tmp_path / "both", "tiny", 1, "--no-tracking")  # adopts
    assert (
        not staged.exists()
        and _metrics(tmp_path / "both", "tiny", 1)["accuracy_matrix"]
        == _metrics(tmp_path / "one", "tiny", 1)["accuracy_matrix"]
    )


@pytest.mark.slow
def test_mlflow_one_run_per_seed_resumed_run_continues(tiny_params, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _train(tiny_params, tmp_path, "tiny", 1, "--tracking-uri", uri, "--stop-after-task", "1")
    _train(tiny_params, tmp_path, "tiny", 1, "--tracking-uri", uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    r = runs[0]
    assert r.info.status == "FINISHED"
    assert (
        r.data.tags["seed"] == "1"
        and r.data.tags["method"] == "hypermask"
        and r.data.tags["experiment"] == "tiny/hypermask"
    )
    assert r.data.tags["benchmark"] == "tiny" and r.data.tags["protocol"] == "task-incremental"
    assert r.data.tags["mlflow.runName"] == "hypermask/seed_1"
    import getpass  # the run's user, as MLflow's fluent API records it (no tracking login here)

    assert r.info.user_id == r.data.tags["mlflow.user"] == getpass.getuser()
    assert "git_commit" in r.data.tags
    assert r.data.params["hypermask.lambda"] == "0.01" and r.data.params["train.iterations"] == "60"
    hist = client.get_metric_history(r.info.run_id, "test_accuracy_task_0")
    assert [m.step for m in hist] == [0, 1, 2]  # one row per task, none duplicated by the resume
    loss = client.get_metric_history(r.info.run_id, "train_loss")
    assert [m.step for m in loss] == [19, 39, 59, 79, 99, 119, 139, 159, 179]  # every 20 iterations
    assert len(client.get_metric_history(r.info.run_id, "val_accuracy")) > 0
    m = _metrics(tmp_path, "tiny", 1)
    assert r.data.metrics["average_accuracy"] == pytest.approx(m["average_accuracy"])
    assert r.data.metrics["memory_kib"] == m["memory"]["bytes"] / 1024  # the tables' unit
    # the shared settings and its own method's only: no other method's block in the compare view
    assert not any(k.split(".")[0] in ("ewc", "hat", "wsn", "hnet", "gpm") for k in r.data.params)
    assert "hypermask.beta" in r.data.params and "train.lr" in r.data.params
    assert r.data.metrics["trained_parameters"] == m["memory"]["trained_parameters"]
    arts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"metrics.json", "accuracy_matrix.png"} <= arts


def _epoch_run(tiny_params, **train):
    """Task 0 of the tiny benchmark trained under an epoch budget: (learner, its optimiser,
    the validation accuracies in order, train_task's result)."""
    from hypermask.engine.loop import build_run
    from hypermask.evaluation.accuracy import split_accuracy
    from hypermask.events import Subscriber

    cfg = load_experiment(tiny_params, "tiny").as_dict()
    cfg["train"].update(iterations=None, **train)
    cfg["method"] = "finetune"
    cfg = ExperimentConfig.model_validate(cfg)
    tasks, learner = build_run(cfg, 1, torch.device("cpu"))
    made = []
    make = learner.make_optimizer
    learner.make_optimizer = lambda lr: made.append(make(lr)) or made[-1]  # keep the task's optimiser

    class Seen(Subscriber):
        accs: list[float] = []

        def validation(self, t, i, step, accuracy):
            self.accs.append(accuracy)

    seen = Seen()
    out = train_task(learner, tasks[0], cfg, 1, Events([seen]), 0)
    learner.eval()
    with torch.no_grad():
        final = split_accuracy(learner, learner.eval_context([0]), tasks[0], tasks[0].val, None).item()
    return made[0], seen.accs, out, final


def test_epoch_budget_best_val_and_scheduler(tiny_params, tmp_path):
    cfg = load_experiment(tiny_params, "tiny").as_dict()
    cfg["train"].update(iterations=None, epochs=2, selection="best_val", lr_scheduler=True)
    cfg["method"] = "finetune"
    cfg = ExperimentConfig.model_validate(cfg)
    out = run(cfg, 1, tmp_path, "cpu", Tracker(False), quiet=True)
    # 1347 - 50 validation = 1297 training samples / 32 per batch -> 41 iterations per epoch
    assert [p["iterations"] for p in out["per_task"]] == [82, 82, 82]
    assert all(p["best_val_accuracy"] is not None for p in out["per_task"])


def test_plateau_scheduler_lowers_the_learning_rate_after_its_patience(tiny_params):
    """A learning rate too small to move the validation accuracy: after 1 + patience (5)
    epochs without improvement the plateau schedule multiplies it by sqrt(0.1), once in 8 epochs."""
    import math

    def lr_of(opt):  # whichever Adam hypermask.optim.adam returned
        return opt.lr if hasattr(opt, "lr") else opt.param_groups[0]["lr"]

    opt, accs, out, _ = _epoch_run(tiny_params, epochs=8, lr=2e-6, selection="last", lr_scheduler=True)
    assert len(set(accs)) == 1  # nothing improved
    assert lr_of(opt) == pytest.approx(2e-6 * math.sqrt(0.1), rel=1e-9)  # above min_lr (5e-7)
    opt, _, _, _ = _epoch_run(tiny_params, epochs=6, lr=2e-6, selection="last", lr_scheduler=True)
    assert lr_of(opt) == 2e-6  # 5 epochs without improvement: still within the patience
    opt, _, _, _ = _epoch_run(tiny_params, epochs=8, lr=2e-6, selection="last", lr_scheduler=False)
    assert lr_of(opt) == 2e-6  # without the schedule, untouched


def test_best_validation_weights_are_restored(tiny_params):
    """selection: best_val ends the task with the weights of its best validation check, not
    the last step's: the accuracy on the validation split after the task is the best seen, and
    here (validation every 5 steps: the accuracy wanders) it is not the last one seen."""
    _, accs, out, final = _epoch_run(
        tiny_params, epochs=3, lr=0.003, val_every=5, selection="best_val", lr_scheduler=False
    )
    assert out["best_val_accuracy"] == max(accs) and final == pytest.approx(max(accs), abs=1e-9)
    assert accs[-1] < max(accs)  # the restore changed something
    _, accs, out, final = _epoch_run(
        tiny_params, epochs=3, lr=0.003, val_every=5, selection="last", lr_scheduler=False
    )
    assert out["best_val_accuracy"] is None and final == pytest.approx(accs[-1], abs=1e-9)


@pytest.mark.parametrize(
    "kind,bn,side",
    [("resnet20", "per_task", 32), ("resnet20", "batch_stats", 64), ("zenkenet", "batch_stats", 32)],
)
def test_conv_targets_train_a_few_steps(kind, bn, side):
    """The conv targets through the whole HyperMask step (shapes of CIFAR-100 / TinyImageNet)."""
    g = torch.Generator().manual_seed(0)
    cfg = ExperimentConfig.model_validate(
        {
            "name": "conv",
            "seeds": [1],
            "data": {
                "source": "cifar100",
                "root": "unused",
                "scenario": "split",
                "n_tasks": 2,
                "classes_per_task": 5,
                "validation_size": 8,
            },
            "target": {"kind": kind, "width": 1, "batch_norm": bn},
            "hypermask": {"hnet_hidden": [8], "embedding_dim": 4, "sparsity": 30, "masked_l1": False},
            "train": {"iterations": 3, "batch_size": 4, "val_every": 2},
        }
    )

    def split(n):
        return Split(torch.rand(n, 3, side, side, generator=g), torch.randint(0, 5, (n,), generator=g))

    tasks = [Task(t, list(range(5)), split(16), split(8), split(8), augment="crop_flip") for t in range(2)]
    torch.manual_seed(0)
    learner = build_method(cfg, build_target(cfg.target, (3, side, side), 5, 2))
    for t in range(2):
        before = {k: v.clone() for k, v in learner.state_dict().items()}
        train_task(learner, tasks[t], cfg, 1, Events([]), 0)
        after = learner.state_dict()
        assert not torch.equal(before["hnet.out.weight_t"], after["hnet.out.weight_t"])  # the step reached
        assert not torch.equal(
            before["hnet.embeddings"][t], after["hnet.embeddings"][t]
        )  # this task's embedding
        if t == 1:  # an earlier task's embedding moves only through the regularizer, which keeps it close
            assert (before["hnet.embeddings"][0] - after["hnet.embeddings"][0]).abs().max() < 0.1
    if bn == "per_task":
        assert after["target.bns.0.running_mean"][1].abs().sum() > 0


def test_resume_refuses_a_checkpoint_of_other_settings_but_not_of_other_seeds(tiny_params, tmp_path, capsys):
    import yaml

    _train(tiny_params, tmp_path, "tiny", 1, "--no-tracking", "--stop-after-task", "1")
    params = yaml.safe_load(tiny_params.read_text())
    params["benchmarks"]["tiny"]["seeds"] = [1, 2, 3]  # harmless edit: resumes
    params["benchmarks"]["tiny"]["description"] = "edited"
    tiny_params.write_text(yaml.safe_dump(params))
    _train(tiny_params, tmp_path, "tiny", 1, "--no-tracking", "--stop-after-task", "2")
    params["methods"]["hypermask"]["settings"]["hypermask"]["beta"] = 0.5  # a different training setting
    tiny_params.write_text(yaml.safe_dump(params))
    rc = main(
        [
            "--params",
            str(tiny_params),
            "train",
            "tiny",
            "--seed",
            "1",
            "--results",
            str(tmp_path),
            "--no-tracking",
            "--quiet",
        ]
    )
    assert rc != 0
    assert "different configuration" in capsys.readouterr().err


@pytest.mark.slow
def test_run_killed_before_its_first_checkpoint_reuses_its_mlflow_run(tiny_params, tmp_path):
    """No checkpoint holds the run id yet: the unfinished run with the same run-dir tag is reopened."""
    from mlflow.tracking import MlflowClient

    from hypermask.tracking.tracker import RUN_ID_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("tiny")  # one MLflow experiment per benchmark
    run_dir = (tmp_path / "runs/tiny/hypermask/seed_1").resolve()
    orphan = client.create_run(
        exp_id, run_name="hypermask/seed_1", tags={RUN_ID_TAG: str(run_dir)}
    )  # killed early
    _train(tiny_params, tmp_path, "tiny", 1, "--tracking-uri", uri)
    runs = client.search_runs([exp_id])
    assert len(runs) == 1 and runs[0].info.run_id == orphan.info.run_id and runs[0].info.status == "FINISHED"
    _train(
        tiny_params, tmp_path, "tiny", 1, "--tracking-uri", uri, "--force"
    )  # a finished run is not reopened
    assert len(client.search_runs([exp_id])) == 2
