"""HNET: the authors' code (chrhenning/hypercl) and `hypermask train --method hnet` on the same
configuration, 3 seeds a side, as JSON (issue 41; the shared pieces are bench/verify/harness.py).

The paper: J. von Oswald, C. Henning, B. F. Grewe, J. Sacramento, "Continual learning with
hypernetworks", ICLR 2020. The official code: github.com/chrhenning/hypercl at e325678 (its
newest commit), the MNIST experiments: mnist/train_permutedMNIST.py and mnist/train_splitMNIST.py
with `--infer_task_id --cl_scenario 1` (HNET in the task-incremental scenario CL1: the classifier's
weights come from a chunked hypernetwork, `ChunkedHyperNetworkHandler` in
mnist/chunked_hyper_model.py; no replay model and no task inference network are trained).

    python bench/verify/verify_hnet.py --official /tmp/official/hypercl \\
        --out bench/results/verify_hnet.json
    python bench/verify/verify_hnet.py --official /tmp/official/hypercl --iterations 20   # a quick check

bench/results/verify_hnet.json came from successive invocations on the 2-core machine shared
with other jobs, run in order (the record's command lists them; running them in that order
rewrites the same file): the first ran fmnist_permuted (its Split runs were stopped for time),
later ones fmnist_split alone with --keep-rows, which keeps the other benchmarks' rows; the
last one's Split row is the one the file holds (a first Split pass at --iterations 200, about
2 minutes an official run, preceded the full one, about 7-8).

--official is a checkout of chrhenning/hypercl at e325678 (checked with check_checkout; nothing is
written into it). Under --workdir (default /tmp/verify-hnet): official/, a fresh copy of the
checkout with the edits below, made once per invocation; datasets/MNIST/, Fashion-MNIST's IDX
files (--fashion-mnist, Debian's dataset-fashion-mnist) linked under the names hypercl's
MNISTData reads (it downloads MNIST from yann.lecun.com otherwise; it writes its pickle of the
dataset there on the first read); out/, the official runs' output folders; official.log and
hypermask.log. One training process at a time, each with 1 thread (OMP_NUM_THREADS =
MKL_NUM_THREADS = 1) at niceness +10 (--nice; the script's own, which both sides' processes
inherit), on the CPU (`--no_cuda` for the official side).

The configuration: the project's benchmark (params.yaml `benchmarks:`) and hnet's settings for it
(params.yaml `methods: hnet: benchmarks:`), passed to the official code on its command line with
`--dont_set_default` (its train_args_default.py otherwise overwrites them with the paper's
values):
- fmnist_permuted: Permuted Fashion-MNIST, 5 tasks, 28x28 padded by 2 (1024 inputs), target MLP
  100-100 ReLU; hypernetwork [100, 75, 50] ELU, task embedding 64, chunk embedding 12, chunk
  size 2000 (hypercl's "small capacity" Permuted MNIST network), beta 0.184 (the project's study);
  Adam lr 1e-3 for the hypernetwork and the task embedding; 1000 iterations of 128 per task;
  validation = the first 5000 training samples (not used for training on either side);
  `python train_permutedMNIST.py --dont_set_default --infer_task_id --cl_scenario 1
  --train_class_embeddings --num_tasks 5 --padding 2 --class_fc_arch 100,100
  --class_hnet_arch 100,75,50 --class_hnet_act elu --class_temb_size 64 --class_emb_size 12
  --class_hyper_chunks 2000 --class_beta 0.184 --class_lr 0.001 --class_lr_emb 0.001
  --n_iter 1000 --batch_size 128 --random_seed S --data_random_seed S --no_cuda
  --data_dir WORKDIR/datasets --out_dir WORKDIR/out/...`
- fmnist_split: Split Fashion-MNIST, 5 tasks of 2 classes (0/1, 2/3, ...), target MLP 400-400
  ReLU; hypernetwork [10, 10] ReLU, task embedding 96, chunk embedding 96, chunk size 42000
  (hypercl's Split MNIST network), beta 0.0448 (the project's study), Adam lr 1e-3, 1000
  iterations of 128, validation = the first 1000 training samples of each task;
  `python train_splitMNIST.py` with the same flags and --class_fc_arch 400,400
  --class_hnet_arch 10,10 --class_hnet_act relu --class_temb_size 96 --class_emb_size 96
  --class_hyper_chunks 42000 --class_beta 0.0448 (no --padding: 0).
Both sides: hypercl's initialisation (Xavier-uniform weights, zero biases, N(0, 1) task and chunk
embeddings), the look-ahead on (hypercl's default, `hnet.look_ahead` here), a fresh Adam per
task, only the current task's embedding trained, the regulariser (beta / t) sum_{j<t}
||H(e_j; Phi + dPhi) - H*_j||^2 over every generated weight. Seeds 1, 2, 3 a side (the official
code's --random_seed, and --data_random_seed for Permuted's permutations, which Split does not
take; ours `--seed`). The figures: the test accuracies
after the last task, averaged over the tasks, and BWT = mean over tasks j < T-1 of (accuracy of
j after the last task - accuracy of j right after learning it), both sides from their own
accuracy lists (hypercl's performance_overview.txt: acc_after_list, acc_during_list; ours
metrics.json).

Every difference between the two sides (also in each row's "differences"):
- output heads: hypercl's classifier has one block of outputs per task in a single generated
  output layer (10 x 5 outputs on Permuted, 2 x 5 on Split; task t reads its block, CL1), so its
  hypernetwork generates and regularises the other tasks' blocks too (117,650 and 478,410 target
  weights; 59 and 12 chunks); ours generates one head per task (113,610 and 475,202 weights; 57
  and 12 chunks). Every weight is generated per task on both sides, so the function each task
  computes has the same form;
- data order and permutations: hypercl's own batch generator (its data handler's epochs) and, on
  Permuted, its own permutations from --data_random_seed with task 0 unpermuted (identity);
  ours permutes every task from the seed. A fully connected first layer with an
  input-permutation-invariant initialisation makes both equivalent in distribution;
- Split inputs: hypercl feeds [0, 1] pixels without augmentation; the project's fmnist_split
  normalises with MNIST's mean and std and random-crops (padding 4) the training batches
  (data.augmentation: true), which the official code cannot do with configuration edits only;
- Adam's candidate step in the look-ahead: both use hypercl's formula (eps added to sqrt(v')
  before the bias correction of the step size); ours reads the state of its fused Adam;
- evaluation: hypercl tests on the full test set in batches of 128; ours in its own batches (no
  effect on accuracy); ours also checks validation every 100 iterations (not used: selection =
  last).
The edits of the copy (configuration and compatibility only, listed in the JSON): the validation
split of each data handler (5000 / 1000 first training samples, as ours; hypercl's default
trains on all 60,000), a stand-in `tensorboardX` package (hypercl's logging; not installed here,
its writer's output is not used), and the data links.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    Edit,
    check_checkout,
    copy_with_edits,
    fail,
    machine,
    run_ours,
    summary_of,
    thread_env,
    verdict,
    write_result,
)

COMMIT = "e32567889f772f8de783a437ff0beb2d426bc7b6"
REPO = "chrhenning/hypercl"
PAPER = 'J. von Oswald, C. Henning, B. F. Grewe, J. Sacramento, "Continual learning with hypernetworks", ICLR 2020'
FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]

EDITS = [
    Edit(
        "data/dataset.py",
        ", np.int,",
        ", int,",
        "compatibility: NumPy >= 1.24 removed the alias np.int (the batch generators' index dtype; int is "
        "what it meant)",
        count=3,
    ),
    Edit(
        "data/special/split_mnist.py",
        "dtype=np.bool)",
        "dtype=bool)",
        "compatibility: NumPy >= 1.24 removed the alias np.bool (the label mask; bool is what it meant)",
    ),
    Edit(
        "utils/misc.py",
        "'text.latex.preamble': [r'\\usepackage[scaled]{helvet}',\n                                r'\\usepackage{sfmath}'],",
        "'text.latex.preamble': r'\\usepackage[scaled]{helvet} \\usepackage{sfmath}',",
        "compatibility: matplotlib >= 3.3 takes the LaTeX preamble as one string, not a list (toy_example "
        "imports this at start-up; no figure is drawn in these runs)",
    ),
    Edit(
        "mnist/train_utils.py",
        "return PermutedMNISTList(permutations, config.data_dir,\n                padding=config.padding, show_perm_change_msg=False)",
        "return PermutedMNISTList(permutations, config.data_dir, validation_size=5000,\n"
        "                padding=config.padding, show_perm_change_msg=False)",
        "configuration: the project's fmnist_permuted holds out the first 5000 training samples as "
        "validation (hypercl's default: none, all 60,000 trained on)",
    ),
    Edit(
        "mnist/train_utils.py",
        "return get_split_MNIST_handlers(config.data_dir, steps = steps)",
        "return get_split_MNIST_handlers(config.data_dir, steps = steps, validation_size=1000)",
        "configuration: the project's fmnist_split holds out the first 1000 training samples of "
        "each task as validation (hypercl's default: none)",
    ),
]
TENSORBOARDX_STUB = '''"""A stand-in for tensorboardX (not installed here): hypercl's SummaryWriter calls log
scalars and figures to TensorBoard only; nothing of the run's results goes through them."""


class SummaryWriter:
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
'''

# hnet's settings per benchmark (params.yaml `methods: hnet:`), the official flags for them
SETTINGS = {
    "fmnist_permuted": {
        "script": "train_permutedMNIST.py",
        "flags": [
            "--padding",
            "2",
            "--class_fc_arch",
            "100,100",
            "--class_hnet_arch",
            "100,75,50",
            "--class_hnet_act",
            "elu",
            "--class_temb_size",
            "64",
            "--class_emb_size",
            "12",
            "--class_hyper_chunks",
            "2000",
            "--class_beta",
            "0.184",
        ],
        "configuration": "Permuted Fashion-MNIST, 5 tasks, 1024 inputs, target MLP 100-100 ReLU; chunked "
        "hypernetwork [100, 75, 50] ELU, task embedding 64, chunk embedding 12, chunk size 2000, "
        "beta 0.184 (params.yaml), look-ahead on, Adam lr 1e-3, {iters} iterations of 128 per task, "
        "validation = first 5000 training samples; CPU, 1 thread",
    },
    "fmnist_split": {
        "script": "train_splitMNIST.py",
        "flags": [
            "--padding",
            "0",
            "--class_fc_arch",
            "400,400",
            "--class_hnet_arch",
            "10,10",
            "--class_hnet_act",
            "relu",
            "--class_temb_size",
            "96",
            "--class_emb_size",
            "96",
            "--class_hyper_chunks",
            "42000",
            "--class_beta",
            "0.0448",
        ],
        "configuration": "Split Fashion-MNIST, 5 tasks of 2 classes, target MLP 400-400 ReLU; chunked hypernetwork "
        "[10, 10] ReLU, task embedding 96, chunk embedding 96, chunk size 42000, beta 0.0448 "
        "(params.yaml), look-ahead on, Adam lr 1e-3, {iters} iterations of 128 per task, "
        "validation = first 1000 training samples of each task; CPU, 1 thread",
    },
}
COMMON_FLAGS = [
    "--dont_set_default",
    "--infer_task_id",
    "--cl_scenario",
    "1",
    "--train_class_embeddings",
    "--num_tasks",
    "5",
    "--class_lr",
    "0.001",
    "--class_lr_emb",
    "0.001",
    "--batch_size",
    "128",
    "--no_cuda",
]

# what the side-by-side review of hypercl found in ours (the record's "findings")
FINDINGS = [
    "fixed before these runs (issue 41): ours initialised the chunked hypernetwork with PyTorch's defaults; hypercl "
    "(mnist/train_utils.py generate_classifier) uses Xavier-uniform weights, zero biases and N(0, 1) task and chunk "
    "embeddings: ours now does the same (hypermask/methods/hnet.py, ChunkedHyperNetwork.reset_parameters)",
    "fixed before these runs (issue 41): hypercl evaluates the regulariser at theta + dTheta, dTheta Adam's candidate "
    "step on the task loss (utils/optim_step.py adam_step; on unless --no_lookahead); ours now does the same "
    "(hnet.look_ahead, on by default)",
    "left as is: hypercl's classifier generates one output block per task (CL1 multi-head in one generated layer) and "
    "regularises all blocks; ours generates one head per task (every weight is generated per task on both sides)",
]

DIFFERENCES = {
    "fmnist_permuted": [
        "output heads: hypercl's classifier has 10 outputs per task in one generated output layer (50 outputs, "
        "task t reads block t, CL1), so its hypernetwork generates and regularises 117,650 target weights "
        "(59 chunks); ours generates one 10-output head per task, 113,610 weights (57 chunks)",
        "permutations: hypercl's own, drawn from --data_random_seed with task 0 unpermuted; ours permutes "
        "every task from the seed (equivalent in distribution for a fully connected first layer)",
        "batch order: each side's own batch generator and seeds",
        "evaluation: ours also checks validation every 100 iterations (not used: the last weights are "
        "evaluated on both sides)",
    ],
    "fmnist_split": [
        "output heads: hypercl's classifier has 2 outputs per task in one generated output layer (10 outputs, "
        "task t reads block t, CL1): 478,410 generated target weights; ours one 2-output head per task, "
        "475,202 weights (12 chunks of 42000 on both sides)",
        "inputs: hypercl trains on [0, 1] pixels without augmentation; the project's fmnist_split normalises "
        "with MNIST's mean and std and random-crops training batches (padding 4), which hypercl cannot do "
        "with configuration edits",
        "batch order: each side's own batch generator and seeds",
        "evaluation: ours also checks validation every 100 iterations (not used: the last weights are "
        "evaluated on both sides)",
    ],
}


def prepare(official: Path, work: Path, fashion: Path) -> list[dict]:
    """The edited copy, the stand-in tensorboardX and the data links; the list of edits."""
    edits = copy_with_edits(official, work / "official", EDITS)
    stub = work / "official" / "tensorboardX" / "__init__.py"
    stub.parent.mkdir(parents=True)
    stub.write_text(TENSORBOARDX_STUB)
    edits.append(
        {
            "file": "tensorboardX/__init__.py (added)",
            "why": "compatibility: hypercl imports tensorboardX for its TensorBoard logging, not installed "
            "here; a SummaryWriter whose methods do nothing (no result goes through it)",
        }
    )
    data = work / "datasets" / "MNIST"
    data.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        src = fashion / name
        if not src.is_file():
            fail(f"Fashion-MNIST file {src} is missing (--fashion-mnist)")
        link = data / name
        if not link.exists():
            link.symlink_to(src)
    edits.append(
        {
            "file": "datasets/MNIST/*-ubyte.gz (links, outside the copy)",
            "why": "data: Fashion-MNIST's IDX files linked under the names hypercl's MNISTData reads "
            "(data/mnist_data.py downloads MNIST otherwise; no network here), passed as --data_dir",
        }
    )
    return edits


def parse_summary(path: Path) -> dict:
    """acc_after_list and acc_during_list of hypercl's performance_overview.txt."""
    out = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(" ")
        if key in ("acc_after_list", "acc_during_list"):
            out[key] = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", rest)]
    return out


def run_official(work: Path, benchmark: str, seed: int, iterations: int, log: Path, timeout: int) -> dict:
    s = SETTINGS[benchmark]
    out_dir = work / "out" / f"{benchmark}_seed{seed}_{time.strftime('%H%M%S')}"
    cmd = [
        sys.executable,
        s["script"],
        *COMMON_FLAGS,
        *s["flags"],
        "--n_iter",
        str(iterations),
        "--random_seed",
        str(seed),
        *(["--data_random_seed", str(seed)] if benchmark == "fmnist_permuted" else []),
        "--data_dir",
        str(work / "datasets"),
        "--out_dir",
        str(out_dir),
    ]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            cmd,
            cwd=work / "official" / "mnist",
            capture_output=True,
            text=True,
            env=thread_env(1),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise SystemExit(f"official run timed out after {timeout} s: {' '.join(cmd)}") from e
    wall = time.perf_counter() - t0
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{res.stdout[-20000:]}\n{res.stderr[-20000:]}\n")
    if res.returncode != 0:
        raise SystemExit(f"official run failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    acc = parse_summary(out_dir / "performance_overview.txt")
    after, during = acc["acc_after_list"], acc["acc_during_list"]
    n = len(after)
    bwt = sum(after[j] - during[j] for j in range(n - 1)) / (n - 1)
    return {
        "seed": seed,
        "average_accuracy": sum(after) / n,
        "bwt": bwt,
        "accuracy_after": after,
        "accuracy_during": during,
        "wall_seconds": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", required=True, help="a checkout of chrhenning/hypercl at e325678")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--benchmarks", nargs="+", default=["fmnist_permuted", "fmnist_split"], choices=list(SETTINGS)
    )
    ap.add_argument(
        "--iterations",
        type=int,
        default=1000,
        help="iterations per task on both sides (1000: the benchmarks')",
    )
    ap.add_argument("--workdir", default="/tmp/verify-hnet")
    ap.add_argument("--fashion-mnist", default=str(FASHION))
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per official run")
    ap.add_argument("--allow-modified", action="store_true")
    ap.add_argument(
        "--nice", type=int, default=10, help="niceness added for this process and both sides' runs"
    )
    ap.add_argument("--out", help="the JSON (printed without it)")
    ap.add_argument(
        "--keep-rows",
        action="store_true",
        help="keep the rows of other benchmarks already in --out (a benchmark rerun on its own, e.g. "
        "with other --iterations); the record's command then lists both invocations",
    )
    args = ap.parse_args(argv)

    official = check_checkout(args.official, COMMIT, allow_modified=args.allow_modified)
    os.nice(args.nice)  # both sides' training processes inherit it
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    edits = prepare(official, work, Path(args.fashion_mnist))
    olog, hlog = work / "official.log", work / "hypermask.log"

    command = "python bench/verify/verify_hnet.py " + " ".join(argv if argv is not None else sys.argv[1:])
    kept = []
    if args.keep_rows and args.out and Path(args.out).is_file():
        import json

        before = json.loads(Path(args.out).read_text())
        kept = [r for r in before.get("rows", []) if r["benchmark"] not in args.benchmarks]
        if kept:
            command = before["command"] + " && " + command
    rows, record = list(kept), {}
    for bench in args.benchmarks:
        overrides = {"train.iterations": args.iterations} if args.iterations != 1000 else {}
        off, ours = [], []
        for seed in args.seeds:
            off.append(run_official(work, bench, seed, args.iterations, olog, args.timeout))
            print(
                f"{bench} official seed {seed}: {off[-1]['average_accuracy']:.2f} ({off[-1]['wall_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
            ours.append(run_ours(bench, "hnet", seed, overrides or None, threads=1, log=hlog))
            print(
                f"{bench} ours seed {seed}: {ours[-1]['average_accuracy']:.2f} ({ours[-1]['wall_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
        diffs = list(DIFFERENCES[bench])
        if args.iterations != 1000:
            diffs.insert(
                0, f"{args.iterations} iterations per task on both sides (the benchmark's 1000 cut for time)"
            )
        o, u = summary_of(off), summary_of(ours)
        o["wall_seconds"] = [r["wall_seconds"] for r in off]
        o["accuracy_after"] = [r["accuracy_after"] for r in off]
        o["accuracy_during"] = [r["accuracy_during"] for r in off]
        u["wall_seconds"] = [r["wall_seconds"] for r in ours]
        u["overrides"] = overrides
        rows.append(
            {
                "benchmark": bench,
                "configuration": SETTINGS[bench]["configuration"].format(iters=args.iterations),
                "differences": diffs,
                "official": o,
                "ours": u,
                "verdict": verdict(o["average_accuracy"], u["average_accuracy"]),
            }
        )
        record = {
            "method": "hnet",
            "official": {"repo": REPO, "commit": COMMIT, "paper": PAPER},
            "status": "verified",
            "edits": edits,
            "rows": rows,
            "findings": FINDINGS,
            "machine": machine(),
            "command": command,
        }
        if args.out:  # after every row: a run cut short keeps the rows it finished
            write_result(args.out, record)
            print(f"wrote {args.out} ({bench})", file=sys.stderr)
    if not args.out:
        import json

        print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
