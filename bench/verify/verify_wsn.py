"""WSN side by side: the authors' code (ihaeyong/WSN) and `hypermask train --method wsn` on the
same configuration, 3 seeds a side, as JSON (issue 41; the shared pieces: bench/verify/harness.py).

The official code is H. Kang et al.'s for "Forget-free Continual Learning with Winning
Subnetworks" (ICML 2022), github.com/ihaeyong/WSN at f066982 (its newest commit): the Permuted
MNIST experiment `main_wsn_pmnist.py` with its MLP `networks/mlp.py` (SubnetMLPNet: two masked
bias-free layers, one dense bias-free head per task) and its masks `networks/subnet.py`. The
repository has no split MNIST-like experiment; for fmnist_split the same main script and MLP run
on a Split Fashion-MNIST loader that an edit adds to `dataloader/pmnist.py`.

    python bench/verify/verify_wsn.py --official /tmp/official/WSN --out bench/results/verify_wsn.json
    python bench/verify/verify_wsn.py --official /tmp/official/WSN --iterations 20   # a quick check, printed
    python bench/verify/verify_wsn.py --official /tmp/official/WSN --benchmarks fmnist_permuted \
        --bias-diagnostic --out bench/results/verify_wsn.json   # then: the diagnostic below, added to the rows

--bias-diagnostic runs the official side once more with a bias in every layer (the edits BIASES:
SubnetLinear(bias=True), which masks its bias with scores of its own as ours does, and dense
biases in the heads) and adds it to --out's rows as "diagnostics", with a Welch test against the
row's ours: whether the biases, the one structural difference, explain a difference of means.

--official is a checkout at f066982 (its git HEAD is checked, or, without .git, the git blob ids
of the files the run uses: OFFICIAL_BLOBS). Nothing is written into it nor into this repository
except --out. Under --workdir (default /tmp/verify-wsn):

- idx/: Fashion-MNIST's IDX files (--fashion-mnist, default /usr/share/datasets/fashion-mnist,
  Debian's dataset-fashion-mnist) decompressed once: torchvision's MNIST reads the uncompressed
  files from data/MNIST/raw/ and would download them otherwise;
- official/BENCHMARK/seed_S/: a fresh copy of the checkout per run (copy_with_edits, the edits of
  BENCHMARK below), data/MNIST/raw/ linked to idx/ (Fashion-MNIST under MNIST's file names), the
  run's log official.log; the official loader caches its permuted tasks under data/ keyed by the
  permutation seed only, so each seed gets a fresh copy;
- hypermask.log: the `hypermask train` runs.

What runs, per benchmark and seed (one process at a time, 1 thread: OMP/MKL/OPENBLAS_NUM_THREADS=1;
run the script under `nice -n 10` on a shared machine):

- official: `python main_wsn_pmnist.py --seed S --optim adam --lr 1e-3 --lr_min 1e-6
  --lr_patience 6 --lr_factor 2 --batch_size_train 128 --batch_size_test 1000 --n_hidden H
  --pc_valid V --nperm 5 --n_tasks 5 --sparsity C --n_epochs E --iterations I` (the authors'
  scripts/wsn/wsn_pmnist.sh, whose values are kept, but batch 128, the benchmark's width, task
  count and validation size, params.yaml's capacity, and the per-task budget below);
- ours: `hypermask train BENCHMARK --method wsn --seed S --threads 1` (harness.run_ours) with
  --override {"wsn.capacity": C} (and "train.iterations" with --iterations).

The configuration: params.yaml's wsn settings for the benchmark on BOTH sides (capacity c, the
kept percentage per layer: fmnist_permuted 37.4, fmnist_split 7.03; the official --sparsity is
the kept fraction, main_wsn_pmnist.py sets sparsity = 1 - c), Adam lr 1e-3 (a fresh optimiser per
task on both sides), batch 128, 1000 iterations per task, 5 tasks.
- fmnist_permuted: Fashion-MNIST padded by 2 to 32x32 = 1024 inputs in [0, 1] (no normalisation),
  one pixel permutation per task (task 0 included), MLP 1024-100-100, 10 outputs per task,
  validation = the first 5000 training samples, test = the 10000 test images.
- fmnist_split: 5 tasks of classes (0,1), (2,3), ..., local labels 0/1, 28x28 = 784 inputs
  normalised with MNIST's mean and std (0.1307, 0.3081), random crop (zero padding 4, one offset
  per image) on training batches, MLP 784-400-400, 2 outputs per task, validation = the first
  1000 training samples of each task, test = the task's test images.

Every difference between the two sides (also in each row's "differences"):
- per-task budget: the official loop counts epochs (of 55000 permuted / about 11000 split
  training samples, the last batch of an epoch smaller); an edit stops a task after I batches
  (n_epochs E = the epochs those take, the last one cut), so both sides take I batches of 128;
  ours draws batches from an endless stream of per-epoch permutations (no short batch);
- model selection: the official code keeps the weights of the epoch with the lowest validation
  loss (checked at each epoch's end) and its lr schedule (halve after 6 epochs without
  improvement; never reached in 3 epochs), while its stored mask is the one of the last training
  step (get_masks reads the module's last mask, not recomputed after set_model_); ours keeps the
  last model and the mask of the final scores (params.yaml: selection last);
- biases: the official MLP has none (trunk and heads, bias=False); ours has a bias in every
  layer: the trunk's biases masked like its weights (scores of their own), the heads' dense;
- mask size: official kthvalue at k = 1 + round(s (n - 1)) keeps n - k + 1 weights; ours keeps
  n - int((1 - c) n) (the same up to one weight per tensor);
- the official stored mask is computed before the last optimiser step's score update, ours after;
- permutations (fmnist_permuted): the official loader's (sklearn shuffle, random_state
  100 r + i, r a seeded shuffle of 0..4), ours numpy's default_rng(seed); the class order of
  fmnist_split is the same (0..9) on both sides;
- random streams: numpy's global RNG for the official batch order, torch's for crops; ours a
  torch Generator; the two sides' runs with the same seed are different draws;
- evaluation: the official code tests each task once, right after learning it, and copies that
  accuracy forward; an edit tests every learned task again after each task with its stored mask
  (measurement only), so the last row and BWT are measured (BWT is 0 on both sides by design).

Edits to the copy (all listed in the JSON with old and new text): compatibility (ipdb and seaborn
imports, packages absent here and unused by this run), data (Fashion-MNIST's files; padding and
no normalisation for fmnist_permuted, the split loader and crop for fmnist_split), speed (the
permuted loader's per-image loop done for all images at once, giving the same tensors, checked
bit for bit; its cache files not written), configuration
(the MLP's input size and width, the iteration budget), measurement (testing earlier tasks again).
"""

from __future__ import annotations

import argparse
import gzip
import math
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    ROOT,
    Edit,
    check_checkout,
    copy_with_edits,
    machine,
    run_ours,
    summary_of,
    thread_env,
    verdict,
    write_result,
)

REPO = "ihaeyong/WSN"
COMMIT = "f066982e6c4f89a765f2d54ef41536978a2fff0b"
PAPER = (
    "H. Kang, R. J. L. Mina, S. R. H. Madjid, J. Yoon, M. Hasegawa-Johnson, S. J. Hwang, C. D. Yoo, "
    '"Forget-free Continual Learning with Winning Subnetworks", ICML 2022'
)
# git blob ids at f066982 of the files this run imports or edits
OFFICIAL_BLOBS = {
    "main_wsn_pmnist.py": "7d0a2635a1caffff6d1abd8bf7cf20aad85b0cc8",
    "networks/mlp.py": "63fadc09cfe2a2ea5d868d70503231f2fc136e08",
    "networks/subnet.py": "e39b29c325b4ed44e06afe7e9446f20f5f15afd8",
    "networks/conditional_task.py": "f5ea4e0cbf94f03fa29248827cfbd3cd089df421",
    "networks/utils.py": "f0bc96d77f61dae3ee11c458bc574eb4cb11add2",
    "dataloader/pmnist.py": "a15373ce99b56a9d91ea001409695fdd5307d2e5",
    "utils.py": "2252d26079d4261fbdf9c9debf36d4ecc6d9a7fc",
}
IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
BATCH = 128
N_TRAIN = {"fmnist_permuted": 60000 - 5000, "fmnist_split": None}  # split: per task, below
# the authors' scripts/wsn/wsn_pmnist.sh (batch sizes replaced: 128 for training, 1000 for
# testing, which only groups the test forward passes of a network without batch norm)
OFFICIAL_ARGS = [
    "--optim",
    "adam",
    "--lr",
    "1e-3",
    "--lr_min",
    "1e-6",
    "--lr_patience",
    "6",
    "--lr_factor",
    "2",
    "--batch_size_train",
    str(BATCH),
    "--batch_size_test",
    "1000",
]

# What the comparison found in ours against the official code (the JSON's "findings")
FINDINGS = [
    "biases: ours (hypermask/nets.py MLP, nn.Linear with its default bias; hypermask/methods/wsn.py masks the "
    "trunk's biases with scores of their own, the heads' biases dense) against none in the official MLP "
    "(networks/mlp.py lines 19, 20 and 30, bias=False); on fmnist_permuted the official code with biases "
    "(--bias-diagnostic) moves from 83.24 to 83.46 and agrees with ours (83.59, p 0.41), while without them the "
    "two differ by 0.34 points (p 0.043): the biases are the departure that matters",
    "model selection: the official main_wsn_pmnist.py (line 191) keeps the epoch with the lowest validation loss "
    "(set_model_, line 209) but stores the mask of the last training step (line 210: get_masks reads the "
    "module's weight_mask, networks/mlp.py line 80, not recomputed for the restored scores), so a task restored "
    "to an earlier epoch runs that epoch's weights under the last step's mask; ours keeps the last model and "
    "its final mask (the benchmarks' selection: last)",
    "mask size: the official percentile (networks/subnet.py lines 12-13) keeps n - k + 1 weights with "
    "k = 1 + round(s (n - 1)); ours (hypermask/methods/shared/supermask.py line 29) keeps "
    "n - int((1 - c) n): at most one weight per tensor apart",
]

# ----------------------------------------------------------------------------- the edits
COMMON = [
    Edit(
        "networks/conditional_task.py",
        "import ipdb\n",
        "",
        "compatibility: ipdb is not installed here; the module (imported by networks/mlp.py) never calls it",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "import seaborn as sn\n",
        "",
        "compatibility: seaborn is not installed here; main_wsn_pmnist.py never uses it",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "    args = parser.parse_args()\n",
        "    parser.add_argument('--iterations', type=int, default=10**9)  # bench/verify/verify_wsn.py\n"
        "    args = parser.parse_args()\n",
        "configuration: --iterations, the per-task budget in batches (the official loop counts epochs)",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "        lr = args.lr\n        best_loss=np.inf\n",
        "        lr = args.lr\n        best_loss=np.inf\n        args.iters_done = 0  # bench/verify/verify_wsn.py\n",
        "configuration: the per-task batch count starts at 0 with each task",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "    for i in range(0,len(r),args.batch_size_train):\n",
        "    for i in range(0,len(r),args.batch_size_train):\n"
        "        if args.iters_done >= args.iterations:  # bench/verify/verify_wsn.py: the budget\n"
        "            break\n"
        "        args.iters_done += 1\n",
        "configuration: a task stops after --iterations batches (1000 of 128 as hypermask's benchmarks), "
        "within the epoch loop (n_epochs = the epochs they take, the last one cut)",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "    model = MLPNet(taskcla, args.sparsity).to(device)\n",
        "    model = MLPNet(taskcla, args.sparsity, n_hidden=args.n_hidden).to(device)\n",
        "configuration: the MLP's width from --n_hidden (main_wsn_pmnist.py parses it but builds SubnetMLPNet's "
        "default 100)",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "            if jj < task_id:\n                acc_matrix[task_id, jj] = acc_matrix[task_id-1, jj]\n",
        "            if False:  # bench/verify/verify_wsn.py: test every learned task again\n"
        "                acc_matrix[task_id, jj] = acc_matrix[task_id-1, jj]\n",
        "measurement: the official code copies an earlier task's accuracy forward instead of testing it again; "
        "every learned task is tested again with its stored mask (training unchanged; the extra test passes "
        "draw from numpy's global RNG, which shifts later batch orders)",
    ),
]

PERMUTED_OLD = """            for s in ['train', 'test']:
                loader = torch.utils.data.DataLoader(dat[s], batch_size=1, shuffle=False)
                data[i][s] = {'x': [], 'xi': [], 'y': []}
                for image, target in loader:
                    aux = image.view(-1).numpy()
                    image = torch.FloatTensor(aux).view(size)
                    data[i][s]['xi'].append(image)
                    aux = shuffle(aux, random_state=r * 100 + i)
                    image = torch.FloatTensor(aux).view(size)
                    data[i][s]['x'].append(image)
                    data[i][s]['y'].append(target.numpy()[0])
"""
PERMUTED_NEW = """            for s in ['train', 'test']:
                # bench/verify/verify_wsn.py: the loop above for all images at once, padded by 2, in [0, 1]
                # (ToTensor of Pad(2), no Normalize); shuffle(aux, random_state=r * 100 + i) applies one and
                # the same permutation to every image: aux[shuffle(arange(n), random_state=r * 100 + i)]
                perm = torch.from_numpy(shuffle(np.arange(size[1] * size[2]), random_state=r * 100 + i))
                img = torch.nn.functional.pad(dat[s].data, (2, 2, 2, 2)).float().div(255).view(-1, size[1] * size[2])
                data[i][s] = {'x': list(img[:, perm].view(-1, *size)), 'xi': [], 'y': list(dat[s].targets.numpy())}
"""
PERMUTED = [
    Edit(
        "dataloader/pmnist.py",
        PERMUTED_OLD,
        PERMUTED_NEW,
        "data and speed (fmnist_permuted): images padded by 2 to 32x32 in [0, 1] without normalisation, as "
        "hypermask's fmnist_permuted (and HyperMask's reference) feeds them, i.e. the official loop with "
        "transforms [Pad(2), ToTensor()] instead of [ToTensor(), Normalize(MNIST)]; built for all images at once "
        "with the official permutation (sklearn shuffle with random_state 100 r + i, one permutation per task): "
        "the same tensors as the per-image DataLoader loop, which took 3 minutes a task on this shared machine; "
        "the unpermuted copies (xi) are not kept (never used)",
    ),
    Edit(
        "dataloader/pmnist.py",
        "    size = [1, 28, 28]\n",
        "    size = [1, 32, 32]\n",
        "data (fmnist_permuted): the padded image's size",
    ),
    Edit(
        "dataloader/pmnist.py",
        "                torch.save(data[i][s]['x'],os.path.join(os.path.expanduser(pmnist_dir), 'data' + str(r) + s + 'x.bin'))\n"
        "                torch.save(data[i][s]['xi'],os.path.join(os.path.expanduser(pmnist_dir), 'data' + str(r) + s + 'xi.bin'))\n"
        "                torch.save(data[i][s]['y'],os.path.join(os.path.expanduser(pmnist_dir), 'data' + str(r) + s + 'y.bin'))\n",
        "                pass  # bench/verify/verify_wsn.py: no cache (each run is a fresh copy; 290 MB a task)\n",
        "speed (fmnist_permuted): the loader's cache files are not written (each run is a fresh copy that never "
        "reads them)",
    ),
    Edit(
        "networks/mlp.py",
        "self.fc1 = SubnetLinear(784, n_hidden,",
        "self.fc1 = SubnetLinear(1024, n_hidden,",
        "configuration (fmnist_permuted): 1024 inputs (32x32)",
    ),
]

# A diagnostic (--bias-diagnostic), not the comparison: the official MLP with a bias in every layer
# as ours has (SubnetLinear(bias=True) masks its bias with scores of its own, as ours does; the
# heads' biases dense), to see whether the biases explain a difference between the two sides.
BIASES = [
    Edit(
        "networks/mlp.py",
        "n_hidden, sparsity=sparsity, bias=False)",
        "n_hidden, sparsity=sparsity, bias=True)",
        "diagnostic: the trunk's layers with biases (masked by SubnetLinear with scores of their own), as ours",
        count=2,
    ),
    Edit(
        "networks/mlp.py",
        "self.last.append(nn.Linear(n_hidden, n, bias=False))",
        "self.last.append(nn.Linear(n_hidden, n, bias=True))",
        "diagnostic: the heads with biases (dense), as ours",
    ),
]

SPLIT_LOADER = """def get_split(seed=0, n_tasks=5, n_valid=1000):
    # bench/verify/verify_wsn.py: Split Fashion-MNIST as hypermask's fmnist_split builds it
    # (hypermask/data/tasks.py): classes (2t, 2t+1) with local labels 0/1, images in [0, 1]
    # normalised with MNIST's mean and std, validation = the first n_valid training samples of
    # a task in the dataset's order, test = the task's test images
    mean, std = 0.1307, 0.3081
    dat = {s: datasets.MNIST(mnist_dir, train=(s == 'train'), download=True) for s in ['train', 'test']}
    data, taskcla = {}, []
    for t in range(n_tasks):
        classes = [2 * t, 2 * t + 1]
        data[t] = {'name': 'split-fmnist-{:d}'.format(t), 'ncla': 2}
        for s in ['train', 'test']:
            y = dat[s].targets
            idx = ((y == classes[0]) | (y == classes[1])).nonzero().squeeze(1)
            x = (dat[s].data[idx].float().div(255.0).view(-1, 1, 28, 28) - mean) / std
            data[t][s] = {'x': x, 'y': (y[idx] == classes[1]).long()}
        tr = data[t]['train']
        data[t]['valid'] = {'x': tr['x'][:n_valid].clone(), 'y': tr['y'][:n_valid].clone()}
        data[t]['train'] = {'x': tr['x'][n_valid:].clone(), 'y': tr['y'][n_valid:].clone()}
        taskcla.append((t, 2))
    data['ncla'] = 2 * n_tasks
    return data, taskcla, [1, 28, 28]

def get(seed=0, fixed_order=False, pc_valid=0.1, nperm = 10):
"""

SPLIT_CROP = """        data = x[b]
        # bench/verify/verify_wsn.py (fmnist_split): hypermask's augmentation, torchvision's
        # RandomCrop(28, padding=4) per image: zero padding of the [0, 1] image (its normalised value)
        pad_value = (0.0 - 0.1307) / 0.3081
        xp = F.pad(data, (4, 4, 4, 4), value=pad_value)
        off = torch.randint(0, 9, (data.size(0), 2))
        data = torch.stack([xp[n, :, off[n, 0]:off[n, 0] + 28, off[n, 1]:off[n, 1] + 28] for n in range(data.size(0))])
        data, target = data.to(device), y[b].to(device)
        optimizer.zero_grad()
"""

SPLIT = [
    Edit(
        "dataloader/pmnist.py",
        "def get(seed=0, fixed_order=False, pc_valid=0.1, nperm = 10):\n",
        SPLIT_LOADER,
        "data (fmnist_split): the repository has no split MNIST-like loader; get_split builds Split Fashion-MNIST's "
        "5 tasks as hypermask's fmnist_split (classes 2t, 2t+1; normalised; first 1000 training samples of a task "
        "for validation) in the dict layout pmnist.get returns",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "    data, taskcla, inputsize = pmnist.get(seed=args.seed,\n"
        "                                          pc_valid=args.pc_valid,\n"
        "                                          nperm=args.nperm)\n",
        "    data, taskcla, inputsize = pmnist.get_split(seed=args.seed, n_tasks=args.nperm, n_valid=1000)\n",
        "data (fmnist_split): main_wsn_pmnist.py's experiment on the split loader (--nperm is the task count)",
    ),
    Edit(
        "main_wsn_pmnist.py",
        "        data = x[b]\n        data, target = data.to(device), y[b].to(device)\n        optimizer.zero_grad()\n",
        SPLIT_CROP,
        "data (fmnist_split): hypermask's random-crop augmentation of training batches (zero padding 4, one offset "
        "per image, then the normalised values); the official MLP experiments have no augmentation",
    ),
]

BENCH = {
    "fmnist_permuted": {
        "edits": PERMUTED,
        "hidden": 100,
        "n_valid": 5000,
        "n_train": 55000,
        "configuration": "Permuted Fashion-MNIST, 5 tasks, 32x32 = 1024 inputs in [0, 1], MLP 1024-100-100 "
        "with one 10-way head per task, capacity c = {c} % per layer (params.yaml), "
        "Adam lr 1e-3, {it} iterations of batch 128 per task, validation = the first "
        "5000 training samples",
    },
    "fmnist_split": {
        "edits": SPLIT,
        "hidden": 400,
        "n_valid": 1000,
        "n_train": None,
        "configuration": "Split Fashion-MNIST, 5 tasks of 2 classes, 784 inputs normalised, random crop "
        "(padding 4), MLP 784-400-400 with one 2-way head per task, capacity c = {c} % per "
        "layer (params.yaml), Adam lr 1e-3, {it} iterations of batch 128 per task, "
        "validation = the first 1000 training samples of each task",
    },
}


def capacity(benchmark: str) -> float:
    """params.yaml's wsn capacity for the benchmark (methods.wsn.benchmarks, else its settings)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())["methods"]["wsn"]
    per = (p.get("benchmarks") or {}).get(benchmark) or {}
    return float(per.get("wsn", {}).get("capacity", p["settings"]["wsn"]["capacity"]))


def idx_files(workdir: Path, fashion: Path) -> Path:
    out = workdir / "idx"
    out.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        if not (out / name).is_file():
            with gzip.open(fashion / f"{name}.gz", "rb") as src, open(out / f"{name}.part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (out / f"{name}.part").rename(out / name)
    return out


def split_train_sizes(idx: Path, n_valid: int) -> list[int]:
    labels = np.frombuffer((idx / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    return [int(((labels == 2 * t) | (labels == 2 * t + 1)).sum()) - n_valid for t in range(5)]


def run_official(
    src: Path,
    work: Path,
    idx: Path,
    benchmark: str,
    seed: int,
    iterations: int,
    cap: float,
    extra: list[Edit] | None = None,
) -> tuple[dict, list[dict], list[str]]:
    b = BENCH[benchmark]
    edits = COMMON + b["edits"] + (extra or [])
    done = copy_with_edits(src, work, edits)
    raw = work / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        (raw / name).symlink_to(idx / name)
    n_train = b["n_train"] or min(split_train_sizes(idx, b["n_valid"]))
    per_epoch = math.ceil(n_train / BATCH)
    epochs = math.ceil(iterations / per_epoch)
    cmd = [
        sys.executable,
        "main_wsn_pmnist.py",
        "--seed",
        str(seed),
        *OFFICIAL_ARGS,
        "--n_hidden",
        str(b["hidden"]),
        "--pc_valid",
        repr(5000 / 60000),
        "--nperm",
        "5",
        "--n_tasks",
        "5",
        "--sparsity",
        repr(cap / 100),
        "--n_epochs",
        str(epochs),
        "--iterations",
        str(iterations),
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=thread_env(1))
    wall = time.perf_counter() - t0
    (work / "official.log").write_text(f"$ {shlex.join(cmd)}\n{out.stdout}\n{out.stderr}\n")
    if out.returncode != 0:
        raise SystemExit(
            f"official run failed ({shlex.join(cmd)}), see {work / 'official.log'}:\n{out.stderr[-3000:]}"
        )
    found = sorted((work / "results2" / "wsn_pmnist").glob("*.acc.npy"))
    if len(found) != 1:
        raise SystemExit(
            f"official run: expected one accuracy matrix under {work / 'results2'}, found {found}"
        )
    acc = np.load(found[0])
    last = acc[-1]
    run = {
        "seed": seed,
        "average_accuracy": float(last.mean()),
        "bwt": float(np.mean((last - np.diag(acc))[:-1])),
        "accuracy_matrix": acc.tolist(),
        "wall_seconds": round(wall, 1),
    }
    return run, done, [shlex.join(cmd[1:])]


def differences(benchmark: str, iterations: int, epochs: int, n_train: int) -> list[str]:
    d = [
        f"per-task budget: both sides {iterations} batches of 128; the official loop counts epochs ({n_train} "
        f"training samples{' in the smallest task' if benchmark == 'fmnist_split' else ''}, {math.ceil(n_train / BATCH)} "
        f"batches an epoch, the last one smaller), an edit stops it after {iterations} batches within "
        f"{epochs} epoch(s); ours draws full batches from an endless stream of per-epoch permutations",
        "model selection: official keeps the weights of the epoch with the lowest validation loss (checked at each "
        "epoch end; its lr halving after 6 epochs without improvement is never reached) but stores the mask of the "
        "last training step (get_masks reads the module's last mask, set_model_ does not recompute it); ours keeps "
        "the last model and the mask of the final scores",
        "biases: the official MLP has none (SubnetLinear and the heads with bias=False); ours has a bias in every "
        "layer, the trunk's masked with scores of their own, the heads' dense",
        "mask size: official kthvalue at k = 1 + round(s (n-1)) (s = 1 - c) keeps n - k + 1 weights per tensor; ours "
        "keeps n - int((1 - c) n): equal up to one weight",
        "the official stored mask is the last forward's (before the last step's score update), ours is computed "
        "from the final scores",
        "random streams: official numpy's global RNG for batch order (torch's for crops), ours a torch Generator: "
        "the same seed gives different draws on the two sides",
        "evaluation: the official code copies an earlier task's accuracy forward; an edit tests each learned task "
        "again after every task (BWT is 0 by construction on both sides)",
    ]
    if benchmark == "fmnist_permuted":
        d.append(
            "permutations: official sklearn.utils.shuffle with random_state 100 r + i (r from a seeded shuffle "
            "of 0..4) on the 1024 padded pixels; ours numpy default_rng(seed).permutation per task (task 0 "
            "permuted on both sides)"
        )
    else:
        d.append(
            "data: the official repository has no split MNIST-like experiment; its Permuted MNIST script and MLP "
            "run on a split loader and crop added by edits (the same tasks, labels, normalisation, validation "
            "and augmentation as ours)"
        )
    if iterations != 1000:
        d.append(f"{iterations} iterations per task on both sides instead of the benchmark's 1000")
    return d


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", required=True, help="a checkout of ihaeyong/WSN at f066982")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--benchmarks", nargs="+", default=["fmnist_permuted", "fmnist_split"], choices=list(BENCH)
    )
    ap.add_argument(
        "--iterations", type=int, default=1000, help="per task, both sides (1000: the benchmarks')"
    )
    ap.add_argument("--workdir", default="/tmp/verify-wsn")
    ap.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--allow-modified", action="store_true", help="run a checkout at another commit")
    ap.add_argument("--out", help="the JSON (without it: printed)")
    ap.add_argument(
        "--bias-diagnostic",
        action="store_true",
        help="add to --out's existing rows of --benchmarks a diagnostic: the official side again with "
        "biases in every layer (BIASES), tested against ours",
    )
    args = ap.parse_args(argv)
    if args.bias_diagnostic:
        return bias_diagnostic(args, argv)

    src = check_checkout(args.official, COMMIT[:7], OFFICIAL_BLOBS, args.allow_modified)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    idx = idx_files(workdir, Path(args.fashion_mnist))
    log = workdir / "hypermask.log"

    rows, all_edits, seen = [], [], set()
    for benchmark in args.benchmarks:
        cap = capacity(benchmark)
        b = BENCH[benchmark]
        n_train = b["n_train"] or min(split_train_sizes(idx, b["n_valid"]))
        epochs = math.ceil(args.iterations / math.ceil(n_train / BATCH))
        overrides = {"wsn.capacity": cap}
        if args.iterations != 1000:
            overrides["train.iterations"] = args.iterations
        official, ours, commands = [], [], []
        for seed in args.seeds:
            run, done, cmd = run_official(
                src,
                workdir / "official" / benchmark / f"seed_{seed}",
                idx,
                benchmark,
                seed,
                args.iterations,
                cap,
            )
            official.append(run)
            commands += cmd
            print(
                f"{benchmark} seed {seed} official: {run['average_accuracy']:.2f} ({run['wall_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
            for e in done:
                key = (e["file"], e["old"])
                if key not in seen:
                    seen.add(key)
                    all_edits.append({**e, "benchmarks": [benchmark]})
                else:
                    for rec in all_edits:
                        if (rec["file"], rec["old"]) == key and benchmark not in rec["benchmarks"]:
                            rec["benchmarks"].append(benchmark)
            r = run_ours(benchmark, "wsn", seed, overrides, threads=1, log=log)
            ours.append(r)
            print(
                f"{benchmark} seed {seed} ours: {r['average_accuracy']:.2f} ({r['wall_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
        so, su = summary_of(official), summary_of(ours)
        so["accuracy_matrices"] = [r["accuracy_matrix"] for r in official]
        so["wall_seconds"] = [r["wall_seconds"] for r in official]
        so["commands"] = commands
        su["accuracy_matrices"] = [r["accuracy_matrix"] for r in ours]
        su["wall_seconds"] = [r["wall_seconds"] for r in ours]
        su["overrides"] = overrides
        rows.append(
            {
                "benchmark": benchmark,
                "configuration": b["configuration"].format(c=cap, it=args.iterations),
                "differences": differences(benchmark, args.iterations, epochs, n_train),
                "official": so,
                "ours": su,
                "verdict": verdict(so["average_accuracy"], su["average_accuracy"]),
            }
        )
        record = {
            "method": "wsn",
            "official": {"repo": REPO, "commit": COMMIT, "paper": PAPER},
            "status": "verified",
            "edits": all_edits,
            "rows": rows,
            "findings": FINDINGS,
            "machine": machine(),
            "command": shlex.join(
                ["python", "bench/verify/verify_wsn.py", *(argv if argv is not None else sys.argv[1:])]
            ),
        }
        if args.out:  # after every benchmark: a run cut short keeps the rows it finished
            write_result(args.out, record)
            print(f"wrote {args.out} ({benchmark})", file=sys.stderr)
    if not args.out:
        import json

        print(json.dumps(record, indent=2))


def bias_diagnostic(args, argv: list[str] | None) -> None:
    """--bias-diagnostic: the official side with biases (BIASES) on --out's rows of --benchmarks."""
    import json

    if not args.out or not Path(args.out).is_file():
        raise SystemExit("--bias-diagnostic adds to an existing --out JSON")
    record = json.loads(Path(args.out).read_text())
    src = check_checkout(args.official, COMMIT[:7], OFFICIAL_BLOBS, args.allow_modified)
    workdir = Path(args.workdir)
    idx = idx_files(workdir, Path(args.fashion_mnist))
    for row in record["rows"]:
        benchmark = row["benchmark"]
        if benchmark not in args.benchmarks:
            continue
        cap = capacity(benchmark)
        runs, commands, done = [], [], []
        for seed in args.seeds:
            run, done, cmd = run_official(
                src,
                workdir / "official-biases" / benchmark / f"seed_{seed}",
                idx,
                benchmark,
                seed,
                args.iterations,
                cap,
                extra=BIASES,
            )
            runs.append(run)
            commands += cmd
            print(
                f"{benchmark} seed {seed} official with biases: {run['average_accuracy']:.2f} "
                f"({run['wall_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
        so = summary_of(runs)
        so["accuracy_matrices"] = [r["accuracy_matrix"] for r in runs]
        so["wall_seconds"] = [r["wall_seconds"] for r in runs]
        so["commands"] = commands
        row["diagnostics"] = [
            {
                "what": "the official code with a bias in every layer, as ours (the trunk's masked by SubnetLinear with "
                "scores of their own, the heads' dense); every other edit and setting as the row's official side",
                "edits": [e for e in done if e["why"].startswith("diagnostic")],
                "official": so,
                "verdict": verdict(so["average_accuracy"], row["ours"]["average_accuracy"]),
                "command": shlex.join(
                    ["python", "bench/verify/verify_wsn.py", *(argv if argv is not None else sys.argv[1:])]
                ),
            }
        ]
    record["findings"] = FINDINGS
    record["machine"] = machine()
    write_result(args.out, record)
    print(f"wrote {args.out} (bias diagnostic)", file=sys.stderr)


if __name__ == "__main__":
    main()
