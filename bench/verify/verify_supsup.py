"""SupSup (Wortsman et al., "Supermasks in Superposition", NeurIPS 2020) side by side with its
authors' code, RAIVNLab/supsup at 6a31878 (issue 41): the official `main.py` in its GG scenario
(task identity given while training and testing: `--adaptor gt`, `MultitaskMaskConv` layers,
one supermask per task over fixed signed-constant weights, the output layer masked and shared)
and `hypermask train BENCHMARK --method supsup`, 3 seeds a side, on fmnist_permuted and
fmnist_split; Welch's t-test on the seeds' final average accuracies (bench/verify/harness.py).

    python bench/verify/verify_supsup.py --official /tmp/official/supsup \\
        --out bench/results/verify_supsup.json
    python bench/verify/verify_supsup.py --official /tmp/official/supsup --iterations 20   # a quick check

bench/results/verify_supsup.json came from two invocations, one benchmark each (an --out that
exists keeps the rows of the benchmarks not run; --fresh drops them), the second with 250
iterations per task on both sides (the official split run takes about 4x ours on a loaded
2-core machine, most of it torchvision's per-sample transforms; 1000 did not fit the session):

    nice -n 10 python bench/verify/verify_supsup.py --official /tmp/official/supsup \
        --benchmarks fmnist_permuted --fresh --out bench/results/verify_supsup.json
    nice -n 10 python bench/verify/verify_supsup.py --official /tmp/official/supsup \
        --benchmarks fmnist_split --iterations 250 --out bench/results/verify_supsup.json

--official is a checkout of github.com/RAIVNLab/supsup at 6a31878 (checked with git; the
repository's image file is not needed). Nothing is written into it nor into this repository
except --out. Under --workdir (default /tmp/verify-supsup):

- data/mnist/MNIST/raw/: Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist,
  /usr/share/datasets/fashion-mnist), decompressed under the names torchvision's MNIST reads
  (the official loaders read `datasets.MNIST(os.path.join(args.data, "mnist"))`);
- official-BENCHMARK/: a fresh copy of the checkout with the edits listed in the JSON (below);
- runs/: the official runs' log folders (its adapt_results.csv is what is read back);
- official.log, hypermask.log: both sides' output.

Both sides run on this interpreter (the same torch and torchvision), one process at a time, one
thread each (OMP_NUM_THREADS = MKL_NUM_THREADS = 1; `hypermask train --threads 1`); run the
script under `nice -n 10` on a shared machine.

The configuration (the same on both sides; params.yaml's supsup settings for each benchmark,
given to the official code through its own command-line options):

- fmnist_permuted: Permuted Fashion-MNIST, 5 tasks, 28x28 padded by 2 to 32x32 (1024 inputs,
  pixels in [0, 1], no normalisation), every task permuted (task 0 included); the first 5000
  training samples held out (validation), 55,000 trained on, the 10,000 test samples scored;
  MLP 1024-100-100-10 without biases (official: `--model FC1024 --width-mult 0.09765625`, i.e.
  int(1024 * 100/1024) = 100 units, its input edited to 32 * 32); the 10 outputs one shared
  layer under each task's mask; keep 57.1 % of each layer's scores (`--sparsity 0.571`).
  Official command: python main.py --set MNISTPerm --model FC1024 --width-mult 0.09765625
  --conv_type MultitaskMaskConv --conv-init signed_constant --output-size 10 --num-tasks 5
  --sparsity 0.571 --optimizer adam --lr 0.001 --wd 0 --no-scheduler --batch-size 128
  --test-batch-size 128 --iter-lim 1000 --epochs 1000 --adaptor gt --eval-ckpts 5
  --seed S --data WORKDIR/data --log-dir WORKDIR/runs --name ... --log-interval 100
- fmnist_split: Split Fashion-MNIST, 5 tasks of classes (0,1), (2,3), ..., (8,9) with labels
  local to the task (0, 1) and a 2-output layer shared by the tasks under each task's mask;
  28x28 inputs normalised with MNIST's mean and std (0.1307, 0.3081) after a random crop with
  zero padding 4 (training only); the first 1000 training samples of each task held out; MLP
  784-400-400-2 without biases (`--width-mult 0.390625`: 400 units); keep 16.4 %
  (`--sparsity 0.164`). Official command as above with --set PartitionMNISTV2
  --width-mult 0.390625 --output-size 2 --sparsity 0.164.
- Both: 1000 iterations of batch 128 per task, Adam (default betas and eps) at lr 1e-3 over the
  current task's scores only, constant learning rate, no weight decay; the weights are never
  trained (`--train-weight-tasks 0`, the official default); signed-constant weights
  sign(w) * sqrt(2 / fan_in) and kaiming-uniform(a = sqrt(5)) scores on both sides; seeds 1 2 3.

The official epochs and --iter-lim: its trainer (trainers/default.py) trains the batches whose
running index is below --iter-lim and main.py stops a task after the first epoch past it, so
`--iter-lim N` with --epochs as a cap (N) trains exactly N batches per task from the authors'
shuffled DataLoader; its test pass after every epoch does not change training.

Read back: the official adapt_results.csv (written by main.py through utils.write_adapt_results
after the 5th task; --eval-ckpts 5, the last task, since main.py tests `num_tasks_learned in
args.eval_ckpts`, which fails on its default None): every task's test accuracy under its own
mask (adaptor `gt`) and its test accuracy right after its training ("Current Val"); the final
average over the 5 tasks, and BWT = mean over the first 4 tasks of (final - right after). Ours:
metrics.json (bench/verify/harness.py run_ours).

Differences that remain (also in each row's "differences"):
- permutations: the official MNISTPerm draws task i's permutation with np.random.seed(i + seed)
  (so seeds 1, 2, 3 share four of their five permutations), ours with one
  numpy.random.default_rng(seed) for the 5 tasks;
- batches: the official DataLoader reshuffles each epoch and ends each epoch with a partial
  batch (55,000 = 429 x 128 + 88; 11,000 = 85 x 128 + 120, different per task on split), ours
  cuts an endless stream of epoch permutations into full batches of 128 (a batch may straddle
  two epochs); the random streams (scores, weights, shuffling, crops) differ;
- the official code draws every task's scores when the model is built, ours at each task's start;
- the last layer: the official output layer has no bias and is masked; ours has a bias, which
  SupSup zeroes and freezes (hypermask/methods/supsup.py): the same function;
- the official code (and hence this script) reports accuracy on the test set after every epoch
  and keeps no model selection; ours validates every 100 iterations and keeps the last model
  (selection: last): the same final model;
- `--iterations N` runs N iterations per task on both sides (a quick check, or a shorter run
  where time is short; the row's configuration and differences say so).

Edits to the official copy (compatibility, configuration; each an exact text replacement, each
listed with its reason in the JSON): tensorboard and seaborn are not installed (main.py imports
both; the SummaryWriter becomes a stand-in that drops the scalars, the unused seaborn import is
dropped); the data (Fashion-MNIST in place of MNIST by the linked files; the validation hold-out;
for fmnist_permuted the padding to 32x32 and no normalisation, as the benchmark; for fmnist_split
the random crop, local labels, the authors' own commented-out `- torch.tensor(i)`) and the
first layer's 32 x 32 inputs of FC1024 on fmnist_permuted.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    Edit,
    check_checkout,
    copy_with_edits,
    emit,
    machine,
    run_ours,
    summary_of,
    thread_env,
    verdict,
)

REPO = "RAIVNLab/supsup"
COMMIT = "6a31878423c58ecf496712a23d418c7b1b05451e"
PAPER = 'M. Wortsman, V. Ramanujan, R. Liu, A. Kembhavi, M. Rastegari, J. Yosinski, A. Farhadi, "Supermasks in Superposition", NeurIPS 2020'
FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
N_TASKS = 5
BATCH = 128
ITERATIONS = 1000
LR = 1.0e-3
# params.yaml methods.supsup.benchmarks (the kept percentage of each layer's scores)
KEEP = {"fmnist_permuted": 57.1, "fmnist_split": 16.4}

COMMON_EDITS = [
    Edit(
        "main.py",
        "from torch.utils.tensorboard import SummaryWriter\n",
        "class SummaryWriter:  # verify_supsup: tensorboard is not installed; the logged scalars are not read\n"
        "    def __init__(self, *a, **k):\n        pass\n\n"
        "    def add_scalar(self, *a, **k):\n        pass\n",
        "compatibility: tensorboard is not installed here; main.py's SummaryWriter only logs scalars "
        "(train loss, test accuracy), which this comparison reads from adapt_results.csv instead",
    ),
    Edit(
        "main.py",
        "import seaborn as sns\n",
        "",
        "compatibility: seaborn is not installed here; main.py imports it and never uses it",
    ),
    Edit(
        "adaptors.py",
        "    alphas[task] = 1\n",
        "    with torch.no_grad():\n        alphas[task] = 1\n",
        "compatibility: current torch refuses an in-place write into a leaf tensor that requires grad "
        "(adaptor gt, the GG evaluation: alpha = 1 for the given task, 0 for the others; the same values)",
    ),
]

PERMUTED_EDITS = [
    Edit(
        "data/mnist.py",
        "transforms.Normalize((0.1307,), (0.3081,)),\n",
        "transforms.Pad(2),\n",
        "configuration: fmnist_permuted's inputs, pixels in [0, 1] zero-padded by 2 to 32x32 before the "
        "permutation (hypermask/data/tasks.py; the permuted benchmarks are not normalised), in MNISTPerm's "
        "train and test transforms",
        count=2,
    ),
    Edit(
        "data/mnist.py",
        "return out.view(1, 28, 28)",
        "return out.view(1, 32, 32)",
        "configuration: the permuted image is 32x32 (Permute)",
    ),
    Edit(
        "data/mnist.py",
        "np.random.permutation(784)",
        "np.random.permutation(1024)",
        "configuration: permutations of the 1024 padded pixels (MNISTPerm.update_task; its seeding kept)",
    ),
    Edit(
        "data/mnist.py",
        "                    self.permuter,\n                ]\n            ),\n        )\n\n        # Data loading code\n",
        "                    self.permuter,\n                ]\n            ),\n        )\n"
        "        # verify_supsup: the first 5000 training samples are the validation split, not trained on\n"
        "        train_dataset = torch.utils.data.Subset(train_dataset, range(5000, len(train_dataset)))\n\n"
        "        # Data loading code\n",
        "configuration: fmnist_permuted holds out the first 5000 training samples (validation); "
        "MNISTPerm trains on all 60,000",
    ),
    Edit(
        "models/small.py",
        "builder.conv1x1(28 * 28, int(args.width_mult * 1024), first_layer=True)",
        "builder.conv1x1(32 * 32, int(args.width_mult * 1024), first_layer=True)",
        "configuration: FC1024's first layer takes the 1024 padded pixels",
    ),
    Edit(
        "models/small.py",
        "out = x.view(x.size(0), 28 * 28, 1, 1)",
        "out = x.view(x.size(0), -1, 1, 1)",
        "configuration: the models flatten whatever image they get (32x32 here); the same for 28x28",
        count=3,
    ),
]

SPLIT_EDITS = [
    Edit(
        "data/partitionmnistv2.py",
        "def partition_dataset(dataset, i):",
        "def partition_dataset(dataset, i, skip=0):",
        "configuration: the task's first `skip` training samples are held out (below)",
    ),
    Edit(
        "data/partitionmnistv2.py",
        "label #- torch.tensor(i)",
        "label - torch.tensor(i)",
        "configuration: labels local to the task (0, 1) for a 2-output layer, as fmnist_split; the "
        "authors' own commented-out alternative (their default keeps the global labels 0-9)",
    ),
    Edit(
        "data/partitionmnistv2.py",
        "    ]\n    return newdataset\n",
        "    ]\n    newdataset.data, newdataset.targets = newdataset.data[skip:], newdataset.targets[skip:]\n"
        "    return newdataset\n",
        "configuration: fmnist_split holds out the first 1000 training samples of each task (validation)",
    ),
    Edit(
        "data/partitionmnistv2.py",
        "(partition_dataset(train_dataset, 2*i), partition_dataset(val_dataset, 2*i))",
        "(partition_dataset(train_dataset, 2*i, skip=1000), partition_dataset(val_dataset, 2*i))",
        "configuration: the 1000 held-out samples per task (training split only; the test split whole)",
    ),
    Edit(
        "data/partitionmnistv2.py",
        "            train=True,\n            download=True,\n            transform=transforms.Compose(\n"
        "                [transforms.ToTensor(),",
        "            train=True,\n            download=True,\n            transform=transforms.Compose(\n"
        "                [transforms.RandomCrop(28, padding=4), transforms.ToTensor(),",
        "configuration: fmnist_split's augmentation, a random 28x28 crop of the image zero-padded by 4, "
        "before normalisation, training samples only (hypermask/data/tasks.py random_crop)",
    ),
]

BENCHMARKS = {
    "fmnist_permuted": {
        "set": "MNISTPerm",
        "width_mult": 100 / 1024,
        "output_size": 10,
        "edits": PERMUTED_EDITS,
        "configuration": "Permuted Fashion-MNIST, 5 tasks, 32x32 padded inputs in [0,1], MLP "
        "1024-100-100-10 without biases, one shared masked output layer, keep 57.1 %, "
        "Adam lr 1e-3 on the task's scores, {iterations} iterations of 128 per task, "
        "first 5000 training samples held out, task id given (GG)",
    },
    "fmnist_split": {
        "set": "PartitionMNISTV2",
        "width_mult": 400 / 1024,
        "output_size": 2,
        "edits": SPLIT_EDITS,
        "configuration": "Split Fashion-MNIST, 5 tasks of 2 classes with local labels, MLP 784-400-400-2 "
        "without biases, one shared masked output layer, keep 16.4 %, random crop "
        "(padding 4) and MNIST normalisation, Adam lr 1e-3 on the task's scores, {iterations} "
        "iterations of 128 per task, first 1000 training samples of each task held out, "
        "task id given (GG)",
    },
}

COMMON_DIFFERENCES = [
    "batches: the official DataLoader reshuffles each epoch and ends each epoch with a partial batch; ours cuts "
    "an endless stream of epoch permutations into full batches of 128",
    "random streams differ (weights, scores, shuffling): the official code draws every task's scores when the "
    "model is built, ours at each task's start",
    "the official layers have no biases; ours has biases that SupSup zeroes and freezes (the same function)",
    "the official weight decay default (1e-4) and cosine schedule are turned off (--wd 0 --no-scheduler) to match "
    "ours (Adam without weight decay, constant lr)",
]


def prepare_data(workdir: Path) -> Path:
    """Fashion-MNIST's IDX files, decompressed where torchvision's MNIST reads them."""
    raw = workdir / "data" / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        dst = raw / name
        if not dst.exists():
            with gzip.open(FASHION / f"{name}.gz", "rb") as fi, open(dst.with_suffix(".part"), "wb") as fo:
                shutil.copyfileobj(fi, fo)
            dst.with_suffix(".part").rename(dst)
    return workdir / "data"


def official_command(
    bench: str, seed: int, iterations: int, data: Path, logdir: Path, name: str
) -> list[str]:
    b = BENCHMARKS[bench]
    return [
        sys.executable,
        "main.py",
        "--set",
        b["set"],
        "--model",
        "FC1024",
        "--width-mult",
        repr(b["width_mult"]),
        "--conv_type",
        "MultitaskMaskConv",
        "--conv-init",
        "signed_constant",
        "--output-size",
        str(b["output_size"]),
        "--num-tasks",
        str(N_TASKS),
        "--sparsity",
        repr(round(KEEP[bench] / 100, 6)),
        "--optimizer",
        "adam",
        "--lr",
        repr(LR),
        "--wd",
        "0",
        "--no-scheduler",
        "--batch-size",
        str(BATCH),
        "--test-batch-size",
        str(BATCH),
        "--iter-lim",
        str(iterations),
        "--epochs",
        str(iterations),
        "--adaptor",
        "gt",
        "--eval-ckpts",
        str(N_TASKS),
        "--seed",
        str(seed),
        "--data",
        str(data),
        "--log-dir",
        str(logdir),
        "--name",
        name,
        "--log-interval",
        "100",
    ]


def read_official(run_dir: Path, seed: int) -> dict:
    """From adapt_results.csv (written once, after the last task): each task's accuracy under its
    own mask now ("Adapt Val") and right after its training ("Current Val", main.py's test pass
    after the task's last epoch), in percent. The accuracy matrix holds those two: its last row
    and its diagonal (the other entries are not measured: None)."""
    final: dict[int, float] = {}
    after: dict[int, float] = {}
    with open(run_dir / "adapt_results.csv") as fh:
        for row in csv.DictReader(fh, skipinitialspace=True):
            if int(row["Num Tasks Learned"]) != N_TASKS:
                continue
            i = int(row["Name"].rsplit("tasknumber=", 1)[1])
            final[i] = 100.0 * float(row["Adapt Val"])
            after[i] = 100.0 * float(row["Current Val"])
    T = N_TASKS
    if sorted(final) != list(range(T)):
        raise SystemExit(f"official run {run_dir}: adapt_results.csv lacks tasks of the final evaluation")
    matrix = [[None] * T for _ in range(T)]
    for i in range(T):
        matrix[i][i] = after[i]
        matrix[T - 1][i] = final[i]
    bwt = sum(final[i] - after[i] for i in range(T - 1)) / (T - 1)
    return {
        "seed": seed,
        "average_accuracy": sum(final[i] for i in range(T)) / T,
        "bwt": bwt,
        "accuracy_matrix": matrix,
    }


def run_official(
    copy: Path, bench: str, seed: int, iterations: int, data: Path, workdir: Path, log: Path
) -> dict:
    logdir = workdir / "runs" / bench
    name = f"supsup-seed{seed}-it{iterations}"
    for old in logdir.glob(f"{name}~try=*"):
        shutil.rmtree(old)
    cmd = official_command(bench, seed, iterations, data, logdir, name)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, env=thread_env(1))
    wall = time.perf_counter() - t0
    with open(log, "a") as fh:
        fh.write(f"$ (cd {copy}; {' '.join(cmd)})\n{out.stdout[-20000:]}\n{out.stderr[-20000:]}\n")
    if out.returncode != 0:
        raise SystemExit(f"official run failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    r = read_official(logdir / f"{name}~try=0", seed)
    r["wall_seconds"] = round(wall, 1)
    return r


def side(runs: list[dict]) -> dict:
    s = summary_of(runs)
    s["wall_seconds"] = [r["wall_seconds"] for r in runs]
    s["accuracy_matrix"] = [r["accuracy_matrix"] for r in runs]
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="a checkout of RAIVNLab/supsup at 6a31878")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    ap.add_argument(
        "--iterations", type=int, default=ITERATIONS, help="per task, both sides (a quick check: 20)"
    )
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/verify-supsup"))
    ap.add_argument("--allow-modified", action="store_true", help="run a checkout at another commit")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the JSON here (atomically; rows of other benchmarks already there are kept); else print it",
    )
    ap.add_argument("--fresh", action="store_true", help="with --out: drop the rows already there")
    args = ap.parse_args()

    src = check_checkout(args.official, COMMIT[:7], allow_modified=args.allow_modified)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(workdir)
    all_edits: list[dict] = []
    rows = []
    for bench in args.benchmarks:
        b = BENCHMARKS[bench]
        copy = workdir / f"official-{bench}"
        done = copy_with_edits(src, copy, COMMON_EDITS + b["edits"])
        for d in done:
            d = {"file": d["file"], "why": d["why"], "benchmark": bench, "old": d["old"], "new": d["new"]}
            all_edits.append(d)
        overrides = {"supsup.keep": KEEP[bench]}
        if args.iterations != ITERATIONS:
            overrides["train.iterations"] = args.iterations
        off, ours = [], []
        for seed in args.seeds:
            print(f"[{time.strftime('%H:%M:%S')}] {bench} seed {seed}: official", flush=True)
            off.append(
                run_official(copy, bench, seed, args.iterations, data, workdir, workdir / "official.log")
            )
            print(f"    {off[-1]['average_accuracy']:.2f} ({off[-1]['wall_seconds']} s)", flush=True)
            print(f"[{time.strftime('%H:%M:%S')}] {bench} seed {seed}: ours", flush=True)
            ours.append(run_ours(bench, "supsup", seed, overrides, threads=1, log=workdir / "hypermask.log"))
            print(f"    {ours[-1]['average_accuracy']:.2f} ({ours[-1]['wall_seconds']} s)", flush=True)
        diffs = list(COMMON_DIFFERENCES)
        if bench == "fmnist_permuted":
            diffs.insert(
                0,
                "permutations: the official MNISTPerm seeds task i's permutation with np.random.seed(i + seed) "
                "(seeds 1, 2, 3 share four of their five permutations); ours draws the 5 from "
                "numpy.random.default_rng(seed)",
            )
            diffs.append("the official epoch of 55,000 samples is 429 full batches and one of 88")
        else:
            diffs.insert(
                0,
                "the official epoch of 11,000 samples per task is 85 full batches and one of 120; "
                "crop offsets drawn per sample by torchvision (official) or per batch on the tensor (ours)",
            )
        if args.iterations != ITERATIONS:
            diffs.append(
                f"fewer iterations: {args.iterations} per task on both sides, not the benchmark's {ITERATIONS} "
                "(a quick check, or the time a run had)"
            )
        o_side, u_side = side(off), side(ours)
        u_side["overrides"] = overrides
        rows.append(
            {
                "benchmark": bench,
                "configuration": b["configuration"].format(iterations=args.iterations),
                "differences": diffs,
                "official": o_side,
                "ours": u_side,
                "official_command": " ".join(
                    official_command(bench, 0, args.iterations, Path("DATA"), Path("LOGDIR"), "NAME")
                ).replace(" --seed 0", " --seed S"),
                "verdict": verdict(o_side["average_accuracy"], u_side["average_accuracy"]),
            }
        )
    record = {
        "method": "supsup",
        "official": {"repo": REPO, "commit": COMMIT, "paper": PAPER},
        "status": "verified",
        "edits": all_edits,
        "rows": rows,
        "machine": machine(),
        "command": "python bench/verify/verify_supsup.py "
        + " ".join(a if " " not in a else json.dumps(a) for a in sys.argv[1:]),
    }
    if args.out is not None and args.out.exists() and not args.fresh:
        # rows of benchmarks not run now are kept from the existing file (one benchmark per invocation)
        old = json.loads(args.out.read_text())
        kept = [r for r in old.get("rows", []) if r["benchmark"] not in args.benchmarks]
        if kept:
            names = {r["benchmark"] for r in kept}
            record["rows"] = sorted(kept + rows, key=lambda r: list(BENCHMARKS).index(r["benchmark"]))
            record["edits"] = [e for e in old.get("edits", []) if e.get("benchmark") in names] + all_edits
            record["command"] = old["command"] + "; " + record["command"]
            rows = record["rows"]
    emit(record, args.out)
    for r in rows:
        v = r["verdict"]
        print(
            f"{r['benchmark']}: official {r['official']['mean']:.2f} ± {r['official']['std']:.2f}, "
            f"ours {r['ours']['mean']:.2f} ± {r['ours']['std']:.2f}, p = {v['p']:.3g}, agree = {v['agree']}"
        )


if __name__ == "__main__":
    main()
