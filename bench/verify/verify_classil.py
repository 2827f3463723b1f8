"""The class-incremental methods beside a maintained implementation: `er_ci`, `derpp` and `lwf`
against Avalanche's Replay, DER and LwF strategies (ContinualAI/avalanche, avalanche-lib 0.6.0)
on digits_split, 5 seeds a side, as JSON (issue 42; the shared pieces are bench/verify/harness.py).

Avalanche is not the authors' code of any of the three (ER: Chaudhry et al. 2019; DER++: Buzzega
et al., NeurIPS 2020, whose own code is Mammoth; LwF: Li and Hoiem, ECCV 2016): it is the
maintained library a reviewer reaches for, so the question here is whether our implementations
and the library's, given the same data, network, initialisation, budget and hyperparameters,
reach the same class-incremental accuracy (every test sample of every task, the argmax over all
classes seen, no task id) within the seeds' spread.

    python3 -m venv /tmp/avvenv
    .venv/bin/python -c 'import site; print(site.getsitepackages()[0])' \\
        > /tmp/avvenv/lib/python3.11/site-packages/project.pth    # torch and the project's packages
    /tmp/avvenv/bin/pip install avalanche-lib==0.6.0
    /tmp/avvenv/bin/python bench/verify/verify_classil.py --out bench/results/reference_classil.json
    /tmp/avvenv/bin/python bench/verify/verify_classil.py --seeds 1 --methods lwf   # a quick check
    /tmp/avvenv/bin/python bench/verify/verify_classil.py --methods derpp --keep-rows \
        --out bench/results/reference_classil.json       # one method again, the others' rows kept

For DER++ the script also runs ours with one of Avalanche's departures from the paper put in
(ISOLATION: the stored logits refreshed by the finished model at each task's end), so the record
says how much of a difference that departure explains.

Avalanche lives in its own environment layered on the project's (it pulls in wandb, tensorboard
and others that the project does not need); our side runs as `hypermask train` (harness.run_ours,
the project's own interpreter) in a temporary results folder, Avalanche's in this process. One
training process at a time, each with 1 thread, on the CPU.

The same on both sides, per seed: the tasks (build_tasks: the same 5 tasks of 2 classes, the
same training split with the same 30 validation images held out, inputs as the target sees them;
labels made global, task k's classes 2k and 2k + 1); the network (the project's target, built and
initialised by the project's build_run for that seed, so both sides start from the same weights;
Avalanche sees it as a module returning all 10 logits); Adam at the benchmark's learning rate,
its state reset at each task (Avalanche: `reset_optimizer_state=True`); 300 iterations of 64 per
task (Avalanche: whole epochs, 50 epochs of ceil(n / 64) = 6 batches, the last one short); the
declared memory, 5 samples per class = 50; the method's hyperparameters from params.yaml.

What differs is each library's own algorithm, listed per row in `differences` (none of them is
a setting either side exposes for this): where the replayed samples come from, when the buffer
is filled, which logits DER stores and over which classes its cross-entropy runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, emit, machine, mean_std, run_ours, verdict  # noqa: E402

sys.path.insert(0, str(ROOT))

BENCHMARK = "digits_split"
LIBRARY = {"repo": "ContinualAI/avalanche", "package": "avalanche-lib", "version": "0.6.0"}
STRATEGIES = {
    "er_ci": "avalanche.training.Replay",
    "derpp": "avalanche.training.DER",
    "lwf": "avalanche.training.LwF",
}
DIFFERENCES = {
    "er_ci": [
        "memory: ours keeps 5 ring-buffer slots per class of the tasks seen, filled during training; "
        "Avalanche's ReplayPlugin an experience-balanced buffer of 50 samples (ExperienceBalancedBuffer, "
        "random samples of each finished task, all 50 slots used from the second task on)",
        "batch: both join 64 current and 64 replayed samples; ours draws the replayed ones uniformly "
        "from the filled slots, Avalanche's ReplayDataLoader cycles through a shuffled loader over the buffer",
        "loss: the same, the cross-entropy over the classes seen (Avalanche's MaskedCrossEntropy(mask='seen'))",
    ],
    "derpp": [
        "buffer: ours is the paper's reservoir (Algorithm 1) over the stream, filled at every step with "
        "the logits of that step; Avalanche's DER fills a class-balanced buffer at the end of each "
        "experience with the logits of the finished model (ClassBalancedBufferWithLogits)",
        "replay: ours draws two independent batches, one for the logit MSE and one for the label CE "
        "(the paper's x' and x''); Avalanche uses one draw for both",
        "cross-entropy: the same, over all 10 outputs, the classes not yet seen included (ours as the "
        "authors' Mammoth computes it; Avalanche's F.cross_entropy in DER.training_epoch)",
        "replayed batch: ours min(64, samples stored); Avalanche needs batch_size_mem <= its buffer, "
        "set to 50 (the whole memory; with 64 it would never replay)",
    ],
    "lwf": [
        "distillation: ours is T^2 times the cross-entropy of the softened outputs (Hinton et al.'s "
        "scaling), Avalanche's the KL divergence without T^2; they differ by the teacher's entropy, a "
        "constant, so their gradients agree when Avalanche's alpha = lambda * T^2 (set so here)",
        "loss over classes: the same, the cross-entropy over the classes seen (MaskedCrossEntropy("
        "mask='seen')) and the distillation over the earlier tasks' classes",
    ],
}


HYPER = {  # the method's own settings, as the configuration cell names them
    "er_ci": lambda cfg: "nothing else to set",
    "derpp": lambda cfg: f"alpha {cfg.derpp.alpha:g}, beta {cfg.derpp.beta:g}",
    "lwf": lambda cfg: f"lambda {cfg.lwf.lambda_:g}, temperature {cfg.lwf.temperature:g}",
}


def config_of(method: str):
    from hypermask.config import load_experiment

    return load_experiment(ROOT / "params.yaml", f"{BENCHMARK}/{method}")


def stream(cfg, seed: int):
    """The tasks and the freshly initialised target of (cfg, seed), as the project builds them."""
    import torch

    from hypermask.engine.loop import build_run

    tasks, learner = build_run(cfg, seed, torch.device("cpu"), data_cache=ROOT / "data" / "prepared")
    return tasks, learner.target


def all_classes(target):
    """The project's target as a plain classifier over every class of every task."""
    import torch

    from hypermask.methods.shared.class_incremental import all_class_logits

    class AllClasses(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.target = target

        def forward(self, x):
            return all_class_logits(self.target, x)

    return AllClasses()


def avalanche_side(method: str, seed: int) -> dict:
    """One Avalanche run: class-incremental accuracy over every test sample after the last task."""
    import torch
    from avalanche.benchmarks import tensors_benchmark
    from avalanche.training import DER, LwF, Replay
    from avalanche.training.losses import MaskedCrossEntropy
    from avalanche.training.plugins import EvaluationPlugin

    cfg = config_of(method)
    tasks, target = stream(cfg, seed)
    width = max(t.n_classes for t in tasks)
    train, test = [], []
    for k, task in enumerate(tasks):
        train.append((task.inputs(task.train.x, train=False), task.train.y + k * width))
        test.append((task.inputs(task.test.x, train=False), task.test.y + k * width))
    bench = tensors_benchmark(train_tensors=train, test_tensors=test, task_labels=[0] * len(tasks))
    model = all_classes(target)
    b, iters = cfg.train.batch_size, cfg.train.iterations
    per_epoch = math.ceil(len(tasks[0].train.y) / b)
    epochs = max(1, round(iters / per_epoch))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    memory = cfg.er_ci.per_class * sum(t.n_classes for t in tasks)
    common = {
        "model": model,
        "optimizer": opt,
        "train_mb_size": b,
        "train_epochs": epochs,
        "eval_mb_size": 1000,
        "device": "cpu",
        "evaluator": EvaluationPlugin(loggers=[]),
    }
    if method == "er_ci":
        strategy = Replay(criterion=MaskedCrossEntropy(mask="seen"), mem_size=memory, **common)
        hyper = {"mem_size": memory}
    elif method == "derpp":
        mem = cfg.derpp.per_class * sum(t.n_classes for t in tasks)
        alpha, beta = cfg.derpp.alpha, cfg.derpp.beta
        strategy = DER(mem_size=mem, batch_size_mem=min(b, mem), alpha=alpha, beta=beta, **common)
        hyper = {"mem_size": mem, "batch_size_mem": min(b, mem), "alpha": alpha, "beta": beta}
    elif method == "lwf":
        lam, temp = cfg.lwf.lambda_, cfg.lwf.temperature
        strategy = LwF(
            criterion=MaskedCrossEntropy(mask="seen"), alpha=lam * temp**2, temperature=temp, **common
        )
        hyper = {"alpha": lam * temp**2, "temperature": temp}
    else:
        raise SystemExit(f"error: no Avalanche strategy for {method!r} (choose from {sorted(STRATEGIES)})")
    torch.manual_seed(seed)  # Avalanche's shuffling and buffer sampling
    t0 = time.perf_counter()
    for exp in bench.train_stream:
        strategy.train(exp, reset_optimizer_state=True, num_workers=0)
    wall = time.perf_counter() - t0
    model.eval()
    correct = total = 0
    per_task = []
    with torch.no_grad():
        for x, y in test:
            hit = int((model(x).argmax(1) == y).sum())
            per_task.append(100.0 * hit / len(y))
            correct, total = correct + hit, total + len(y)
    return {
        "seed": seed,
        "class_accuracy": 100.0 * correct / total,
        "per_task_after_last": per_task,
        "epochs": epochs,
        "iterations_per_task": epochs * per_epoch,
        "hyperparameters": hyper,
        "wall_seconds": round(wall, 1),
    }


def our_side(method: str, seed: int, log: Path | None) -> dict:
    r = run_ours(BENCHMARK, method, seed, log=log)
    return {
        "seed": seed,
        "class_accuracy": r["classil"]["final_class_accuracy"],
        "per_task_after_last": r["classil"]["per_task_after_last"],
        "wall_seconds": r["wall_seconds"],
    }


ISOLATION = {
    "derpp": "ours with one of Avalanche's departures from the paper: at the end of each task, the "
    "logits stored with that task's samples are replaced by the finished model's (evaluation mode), as "
    "Avalanche's buffer stores them, instead of the logits of the step that inserted each sample"
}


def isolation_side(method: str, seed: int) -> dict:
    """Our method in this process with ISOLATION[method]'s change (DER++: the logits refreshed at each
    task's end), to tell how much of a difference that departure explains."""
    import tempfile

    import torch

    from hypermask.engine.run import run
    from hypermask.methods.derpp import DERPP
    from hypermask.methods.shared.class_incremental import all_class_logits
    from hypermask.tracking.tracker import Tracker

    assert method == "derpp", method
    plain = DERPP.end_task

    @torch.no_grad()
    def end_task(self, t, task):
        was = self.training
        self.eval()
        rows = (self.buffer_task == t).nonzero().flatten()
        if len(rows):
            x = task.inputs(self.buffer_x.index_select(0, rows), train=False)
            self.buffer_logits.index_copy_(0, rows, all_class_logits(self.target, x))
        self.train(was)
        return plain(self, t, task)

    DERPP.end_task = end_task
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = run(
                config_of(method),
                seed,
                Path(tmp),
                "cpu",
                Tracker(False, None),
                quiet=True,
                data_cache=ROOT / "data" / "prepared",
            )
    finally:
        DERPP.end_task = plain
    assert out is not None
    return {"seed": seed, "class_accuracy": out["classil"]["final_class_accuracy"]}


def side(runs: list[dict]) -> dict:
    acc = [r["class_accuracy"] for r in runs]
    m, s = mean_std(acc)
    return {"seeds": [r["seed"] for r in runs], "class_accuracy": acc, "mean": m, "std": s, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--log", default="/tmp/verify-classil.log", help="our side's training output")
    ap.add_argument("--out", help="the JSON (printed without it)")
    ap.add_argument(
        "--keep-rows",
        action="store_true",
        help="keep --out's rows of the methods not run now (its `commands` lists every invocation)",
    )
    args = ap.parse_args(argv)
    try:
        import avalanche
    except ImportError:
        raise SystemExit(
            "error: avalanche is not importable; run this with an interpreter that has avalanche-lib "
            "0.6.0 and the project (see this script's docstring)"
        ) from None
    import torch

    torch.set_num_threads(1)
    rows = []
    for method in args.methods:
        cfg = config_of(method)
        theirs = [avalanche_side(method, s) for s in args.seeds]
        ours = [our_side(method, s, Path(args.log)) for s in args.seeds]
        a, o = side(theirs), side(ours)
        extra = {}
        if method in ISOLATION:
            iso = side([isolation_side(method, s) for s in args.seeds])
            extra["isolation"] = {
                "what": ISOLATION[method],
                **iso,
                "verdict_against_avalanche": verdict(a["class_accuracy"], iso["class_accuracy"]),
            }
        rows.append(
            {
                "method": method,
                "strategy": STRATEGIES[method],
                "benchmark": BENCHMARK,
                "configuration": (
                    f"{cfg.description}; {cfg.train.iterations} iterations of {cfg.train.batch_size} per "
                    f"task, Adam lr {cfg.train.lr:g}; "
                    + (
                        f"memory {getattr(cfg, method).per_class} samples per class"
                        if method in ("er_ci", "derpp")
                        else "no memory"
                    )
                    + f"; {HYPER[method](cfg)}"
                ),
                "differences": DIFFERENCES[method],
                "avalanche": a,
                "ours": o,
                "verdict": verdict(a["class_accuracy"], o["class_accuracy"]),
                **extra,
            }
        )
        print(
            f"{method}: avalanche {a['mean']:.2f} ± {a['std']:.2f}, ours {o['mean']:.2f} ± {o['std']:.2f}, "
            f"p {rows[-1]['verdict']['p']:.3g}",
            file=sys.stderr,
        )
    command = " ".join(["python", "bench/verify/verify_classil.py", *(argv or sys.argv[1:])])
    commands = [command]
    if args.keep_rows and args.out and Path(args.out).is_file():
        import json

        before = json.loads(Path(args.out).read_text())
        run_now = {r["method"] for r in rows}
        kept = [r for r in before.get("rows", []) if r["method"] not in run_now]
        rows = sorted(kept + rows, key=lambda r: list(STRATEGIES).index(r["method"]))
        commands = [*before.get("commands", [before.get("command", "")]), command]
    record = {
        "measure": "class-incremental accuracy (%) over every test sample of the 5 tasks after the last, "
        "argmax over all 10 classes, no task id",
        "reference": {**LIBRARY, "installed": getattr(avalanche, "__version__", "?")},
        "rows": rows,
        "machine": machine(),
        "torch": torch.__version__,
        "commands": commands,
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
