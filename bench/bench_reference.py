"""The reference implementation and `hypermask train` on the same configuration, one after the
other on this machine, as JSON: both sides' milliseconds per iteration (validation excluded),
wall time, peak RSS and accuracy, and the ratios (issue 29).

The configuration is fmnist_permuted (Permuted Fashion-MNIST, 5 tasks, MLP 1024-100-100-10,
hypernetwork [25, 25], embedding 24, 1000 iterations of 128, lr 1e-3, p = 0, masked L1,
validation = the first 5000 training samples, checked every 100 iterations) with the
reference's Permuted MNIST values beta 5e-4, lambda 1e-3, seed 1, on the CPU, 2 threads.

    python bench/bench_reference.py --reference /tmp/HyperMask-ref --torchpercentile /tmp/torchpercentile-ref \
        --out bench/results/speed_reference.json
    python bench/bench_reference.py --reference ... --torchpercentile ... --iterations 20   # a quick check

--reference is a checkout of gmum/HyperMask at 674bf9b, --torchpercentile one of
aliutkus/torchpercentile at 0733faa (the files used are checked against those commits' git blobs;
--allow-modified runs other trees). Nothing is written into either, nor into this repository
except --out. Everything else happens under --workdir (default /tmp/hypermask-reference):

- wheels/: hypnettorch 0.0.4 (the reference's base), retry and decorator (main.py imports retry),
  seaborn (its heatmap), pinned, downloaded from PyPI once (`pip download`; the only download);
- site/: those wheels installed afresh on every run (`pip install --target`, from wheels/ only),
  the torchpercentile package copied from its checkout (its setup.py requires torchsearchsorted
  from GitHub, which the package does not use), hypnettorch's NumPy edit applied;
- shims/: a stand-in `skimage` (TinyImageNet.py imports scikit-image at module level; this
  configuration never calls it);
- Data/MNIST/: Fashion-MNIST's IDX files (Debian's package dataset-fashion-mnist, --fashion-mnist)
  linked under the names hypnettorch's MNIST loader reads, and the pickle of the dataset that
  loader writes on its first read and loads on later ones (built here first, with its own code,
  so that the timed run is a later one, as every run after a user's first);
- HyperMask/: a fresh copy of the reference on every run, with the edits listed in the output
  (compatibility with current NumPy and pandas; the configuration), Data linked to the above;
- run_reference.py: runs main.py's `__main__` block as `python main.py` does, inside the
  imported module, with timers wrapped around its functions (train_single_task,
  calculate_accuracy, the data handler's next_train_batch): per task, the loop from its first
  batch to the return of train_single_task, less the validation checks in it; the reference's
  code itself is not edited for timing;
- logs: reference.log, hypermask.log (and pip_*.log, data.log).

The reference runs on the interpreter of --reference-python (default: this one, so both sides
use the same torch, NumPy and pandas; the reference's own packages come first on its
PYTHONPATH), with OMP_NUM_THREADS = MKL_NUM_THREADS = --threads and OpenMP's default wait
policy (the hypermask command sets its own OpenMP defaults, hypermask/cli/process.py; --reference-env
gives the reference the same). `hypermask train` then runs as
bench/bench_run.py runs it (temporary results folder and MLflow SQLite store, --threads,
--device), with the same two variables and --override for every HyperMask setting of the
reference's configuration (REFERENCE_HYPERMASK; and --iterations).
Peak RSS is each child's own (os.wait4); the 1-minute load average before and after each run
shows whether the machine was idle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_COMMIT = "674bf9b"
# git blob ids at 674bf9b of the reference's files this run imports or reads
REFERENCE_BLOBS = {
    "main.py": "5e02a82a92dc100f835c74dfea09e36f59c904ac",
    "datasets.py": "95cdf6356abbc11bdd20363114f26a0872e6e611",
    "TinyImageNet.py": "6bfefb55d9ecee451764e7270fbcbb2df0f209e6",
    "CIFAR100_FeCAM.py": "3ccae674dd617bc2dd96b313453af79744684e14",
    "ZenkeNet64.py": "c295131bfd21a33932c9ab279f527d0d46c10673",
}
# aliutkus/torchpercentile at 0733faa (its newest commit)
TORCHPERCENTILE_BLOBS = {
    "torchpercentile/__init__.py": "bbedc9f80648ca6773916703dc6bfbe29ebb2158",
    "torchpercentile/percentile.py": "6bd13230b1242499e1274c0ec90c56e0dcb2d32d",
}
# seaborn: the newest (the reference's environment.yml has 0.12.2, for pandas 1.3)
WHEELS = ("hypnettorch==0.0.4", "retry==0.9.2", "decorator==5.3.1", "seaborn==0.13.2")
BETA, LAMBDA = 5.0e-4, 1.0e-3
# every HyperMask setting of the reference's Permuted MNIST configuration, given to `hypermask
# train` over params.yaml's fmnist_permuted (whose own values come from its study under the
# comparison's budget rule: embedding 48, no masked L1, other beta and lambda)
REFERENCE_HYPERMASK = {
    "beta": BETA,
    "lambda": LAMBDA,
    "embedding_dim": 24,
    "hnet_hidden": [25, 25],
    "sparsity": 0,
    "masked_l1": True,
    "adaptive_sparsity": True,
}
SAVING_FOLDER = "Results/permuted_mnist_best_hyperparams/0"  # datasets.py's, + main.py's "{no}/"
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def edits(iterations: int, seed: int, device: str) -> list[dict]:
    """The changes to the copies, each replacing `old` (found exactly `count` times) by `new`."""
    config = (
        "    # bench/bench_reference.py: hypermask's fmnist_permuted (Permuted Fashion-MNIST linked as MNIST)\n"
        '    if dataset == "PermutedMNIST" and not grid_search:\n'
        f'        hyperparams["seed"] = [{seed}]\n'
        '        hyperparams["hypernetworks_hidden_layers"] = [[25, 25]]\n'
        '        hyperparams["target_hidden_layers"] = [100, 100]\n'
        '        hyperparams["number_of_tasks"] = 5\n'
        f'        hyperparams["number_of_iterations"] = {iterations}\n'
        "\n"
        "    # General hyperparameters\n"
    )
    return [
        {
            "kind": "compatibility",
            "where": "site",
            "file": "hypnettorch/data/dataset.py",
            "old": "np.int,",
            "new": "int,",
            "count": 3,
            "why": "np.int (an alias of int) was removed in NumPy 1.24; next_train/test/val_batch",
        },
        {
            "kind": "compatibility",
            "where": "reference",
            "file": "main.py",
            "old": "dataframe_results = dataframe_results.append(result, ignore_index=True)",
            "new": "dataframe_results = pd.concat([dataframe_results, pd.DataFrame([result])], ignore_index=True)",
            "count": 1,
            "why": "DataFrame.append was removed in pandas 2.0 (evaluate_previous_tasks)",
        },
        {
            "kind": "compatibility",
            "where": "reference",
            "file": "main.py",
            "old": 'dataframe.pivot("after_learning_of_task", "tested_task", "accuracy")',
            "new": 'dataframe.pivot(index="after_learning_of_task", columns="tested_task", values="accuracy")',
            "count": 1,
            "why": "DataFrame.pivot takes keyword arguments only since pandas 2.0 (plot_heatmap)",
        },
        {
            "kind": "configuration",
            "where": "reference",
            "file": "main.py",
            "old": 'dataset = "TinyImageNet"',
            "new": 'dataset = "PermutedMNIST"',
            "count": 1,
            "why": "the experiment main.py runs (its Permuted MNIST best hyperparameters)",
        },
        {
            "kind": "configuration",
            "where": "reference",
            "file": "datasets.py",
            "old": "    # General hyperparameters\n",
            "new": config,
            "count": 1,
            "why": "set_hyperparameters: the values of fmnist_permuted that differ from the reference's Permuted MNIST "
            "(hypernetwork [100,100], MLP 1000-1000, 10 tasks, 5000 iterations, seeds 1-5); the rest are "
            "the reference's own (embedding 24, lr 1e-3, batch 128, beta 5e-4, lambda 1e-3, p 0, masked L1, "
            "adaptive sparsity, last model, 5000 validation samples, padding 2)",
        },
        {
            "kind": "configuration",
            "where": "reference",
            "file": "datasets.py",
            "old": 'hyperparams["device"] = "cuda" if torch.cuda.is_available() else "cpu"',
            "new": f'hyperparams["device"] = "{device}"',
            "count": 1,
            "why": "the device of the comparison (--device; the reference takes a GPU whenever there is one)",
        },
    ]


def git_blob(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_tree(root: Path, blobs: dict[str, str], what: str) -> list[str]:
    missing = [f for f in blobs if not (root / f).is_file()]
    if missing:
        sys.exit(f"{what}: {root} lacks {', '.join(missing)}")
    return [f for f, b in blobs.items() if git_blob(root / f) != b]


def apply_edit(base: Path, e: dict) -> None:
    path = base / e["file"]
    text = path.read_text()
    n = text.count(e["old"])
    if n != e["count"]:
        sys.exit(f"edit of {path}: {e['old']!r} found {n} times, expected {e['count']}")
    path.write_text(text.replace(e["old"], e["new"]))


def run(cmd: list[str], log: Path | None = None, **kw) -> tuple[int, float, int]:
    """Runs cmd; returns its exit code, wall seconds and peak RSS in KiB (its own, os.wait4)."""
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        return p.returncode, wall, ru.ru_maxrss
    finally:
        if log:
            out.close()


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def average_and_bwt(rows: list[list[float]]) -> tuple[float, float]:
    """Average accuracy after the last task and BWT (docs METHOD.md, section 5) of a matrix
    whose row t holds the accuracies after task t on tasks 0..t (at least)."""
    T = len(rows)
    last = rows[-1][:T]
    bwt = sum(last[j] - rows[j][j] for j in range(T - 1)) / max(1, T - 1)
    return sum(last) / T, bwt


# ---------------------------------------------------------------------------- the reference's runner
RUNNER = r'''"""Written by bench/bench_reference.py: runs the reference's main.py as `python main.py` does
(its `if __name__ == "__main__":` block, executed in the namespace of the imported module, so the
wrappers below replace its functions) and writes the timings to the JSON file argv[1]."""
import json, os, platform, sys, textwrap, time
from importlib.metadata import version
from pathlib import Path

out_path = sys.argv[1]
sys.argv = ["main.py"]
sys.path.insert(0, os.getcwd())
t_process = time.perf_counter()
import numpy, pandas, torch
import main as ref  # the module's definitions; its __main__ block runs below
from hypnettorch.data.dataset import Dataset

t_imported = time.perf_counter()
tasks, tests = [], []
current = None

next_train_batch = Dataset.next_train_batch
def timed_next_train_batch(self, *args, **kwargs):
    if current is not None:
        if current["first_batch"] is None:
            current["first_batch"] = time.perf_counter()
        current["iterations"] += 1
    return next_train_batch(self, *args, **kwargs)
Dataset.next_train_batch = timed_next_train_batch

calculate_accuracy = ref.calculate_accuracy
def timed_calculate_accuracy(*args, **kwargs):
    t0 = time.perf_counter()
    try:
        return calculate_accuracy(*args, **kwargs)
    finally:
        dt = time.perf_counter() - t0
        if current is not None:  # inside train_single_task: the validation checks
            current["validation_seconds"] += dt
            current["validations"] += 1
        else:  # evaluate_previous_tasks: test accuracy after each task
            tests.append(dt)
ref.calculate_accuracy = timed_calculate_accuracy

train_single_task = ref.train_single_task
def timed_train_single_task(*args, **kwargs):
    global current
    t0 = time.perf_counter()
    current = {"task": len(tasks), "iterations": 0, "first_batch": None, "validation_seconds": 0.0,
               "validations": 0}
    try:
        return train_single_task(*args, **kwargs)
    finally:
        end = time.perf_counter()
        c, current = current, None
        first = c.pop("first_batch") or end
        c["setup_seconds"] = first - t0  # optimiser, regularisation targets, weight copies
        c["loop_seconds"] = end - first
        c["train_seconds"] = c["loop_seconds"] - c["validation_seconds"]
        tasks.append(c)
ref.train_single_task = timed_train_single_task

source = Path("main.py").read_text()
marker = 'if __name__ == "__main__":\n'
assert source.count(marker) == 1, "main.py: no single __main__ block"
head, block = source.split(marker)
code = compile("\n" * (head.count("\n") + 1) + textwrap.dedent(block), str(Path("main.py").resolve()), "exec")
t_main = time.perf_counter()
exec(code, ref.__dict__)
t_end = time.perf_counter()

iters = sum(t["iterations"] for t in tasks)
train_s = sum(t["train_seconds"] for t in tasks)
g = ref.__dict__
trained = sum(p.numel() for net in (g["hypernetwork"], g["target_network"]) for p in net.parameters())
Path(out_path).write_text(json.dumps({
    "seconds_per_iteration": train_s / max(1, iters),
    "iterations": iters,
    "train_seconds": train_s,
    "validation_seconds": sum(t["validation_seconds"] for t in tasks),
    "setup_seconds": sum(t["setup_seconds"] for t in tasks),
    "test_seconds": sum(tests),
    "import_seconds": t_imported - t_process,
    "main_seconds": t_end - t_main,
    "per_task": tasks,
    "trained_parameters": trained,
    "parameters": {k: v if isinstance(v, (int, float, str, bool, list, type(None))) else repr(v)
                   for k, v in ref.__dict__["parameters"].items()},
    "torch": torch.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__,
    "hypnettorch": version("hypnettorch"), "python": platform.python_version(),
    "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
}, indent=1))
'''


# ---------------------------------------------------------------------------- preparation
def prepare(a, edit_list: list[dict], commands: list[str]) -> tuple[Path, Path, Path]:
    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    py = a.reference_python
    wheels = work / "wheels"
    if not all(wheel_file(wheels, pin) for pin in WHEELS):
        log("downloading " + " ".join(WHEELS))
        cmd = [py, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(wheels), *WHEELS]
        commands.append(" ".join(cmd))
        rc, _, _ = run(cmd, work / "pip_download.log")
        if rc:
            sys.exit(f"pip download failed:\n{tail(work / 'pip_download.log')}")
    log(f"preparing {work}")
    site = work / "site"
    shutil.rmtree(site, ignore_errors=True)
    cmd = [
        py,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "--find-links",
        str(wheels),
        "--target",
        str(site),
        *WHEELS,
    ]
    commands.append(" ".join(cmd))
    rc, _, _ = run(cmd, work / "pip_install.log")
    if rc:
        sys.exit(f"pip install --target failed:\n{tail(work / 'pip_install.log')}")
    shutil.copytree(
        a.torchpercentile / "torchpercentile",
        site / "torchpercentile",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shims = work / "shims"
    shutil.rmtree(shims, ignore_errors=True)
    (shims / "skimage").mkdir(parents=True)
    (shims / "skimage" / "__init__.py").write_text(
        '"""Stand-in written by bench/bench_reference.py: the reference\'s TinyImageNet.py imports scikit-image\n'
        'at module level; the Permuted MNIST experiment never calls it."""\n'
    )
    (shims / "skimage" / "io.py").write_text("")
    (shims / "skimage" / "color.py").write_text(
        'def gray2rgb(*args, **kwargs):\n    raise NotImplementedError("scikit-image is not installed (bench stand-in)")\n'
    )
    ref = work / "HyperMask"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(a.reference, ref, ignore=shutil.ignore_patterns(".git", "Data", "Results", "__pycache__"))
    for e in edit_list:
        apply_edit(site if e["where"] == "site" else ref, e)
    prepare_data(a, site, commands)
    (ref / "Data").symlink_to(work / "Data")
    runner = work / "run_reference.py"
    runner.write_text(RUNNER)
    return site, shims, runner


def prepare_data(a, site: Path, commands: list[str]) -> None:
    """WORKDIR/Data/MNIST: Fashion-MNIST's IDX files linked under the names hypnettorch's MNISTData
    reads, and the pickle of the whole dataset it writes on its first read and loads on every
    later one (built here, with its own code, so that every timed run is a later one)."""
    mnist = a.workdir / "Data" / "MNIST"
    source = {}
    for name in IDX_FILES:
        src = (a.fashion_mnist / name).resolve()
        if not src.is_file():
            sys.exit(f"{src} is missing: install Debian's dataset-fashion-mnist or give --fashion-mnist")
        st = src.stat()
        source[name] = [str(src), st.st_size, st.st_mtime_ns]
    marker = mnist / "source.json"
    if (
        marker.is_file()
        and json.loads(marker.read_text()) == source
        and (mnist / "mnist_dataset.pickle").is_file()
    ):
        return
    shutil.rmtree(mnist, ignore_errors=True)
    mnist.mkdir(parents=True)
    for name, (src, _, _) in source.items():
        (mnist / name).symlink_to(src)
    code = (
        "from hypnettorch.data.mnist_data import MNISTData; "
        "MNISTData('Data', use_one_hot=True, validation_size=0)"
    )
    cmd = [a.reference_python, "-c", code]
    commands.append(f'cd {a.workdir} && PYTHONPATH={site} {a.reference_python} -c "{code}"')
    log("building hypnettorch's dataset pickle")
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONHOME"}, "PYTHONPATH": str(site)}
    rc, _, _ = run(cmd, a.workdir / "data.log", cwd=a.workdir, env=env)
    if rc or not (mnist / "mnist_dataset.pickle").is_file():
        sys.exit(f"building the dataset pickle failed:\n{tail(a.workdir / 'data.log')}")
    marker.write_text(json.dumps(source, indent=1) + "\n")


def wheel_file(wheels: Path, pin: str) -> Path | None:
    name, ver = pin.split("==")
    found = sorted(wheels.glob(f"{name}-{ver}-*.whl")) if wheels.is_dir() else []
    return found[0] if found else None


def log(msg: str) -> None:
    print(f"bench_reference: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the two runs
def run_reference(a, site: Path, shims: Path, runner: Path, commands: list[str]) -> dict:
    ref = a.workdir / "HyperMask"
    timings = a.workdir / "reference_timings.json"
    timings.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        {
            "PYTHONPATH": f"{site}{os.pathsep}{shims}",
            "OMP_NUM_THREADS": str(a.threads),
            "MKL_NUM_THREADS": str(a.threads),
            "PYTHONUNBUFFERED": "1",
            "MPLBACKEND": "Agg",
        }
    )
    env.update(dict(kv.split("=", 1) for kv in a.reference_env))
    cmd = [a.reference_python, str(runner), str(timings)]
    commands.append(
        f"cd {ref} && PYTHONPATH={site}:{shims} OMP_NUM_THREADS={a.threads} "
        f"MKL_NUM_THREADS={a.threads} MPLBACKEND=Agg "
        + "".join(f"{kv} " for kv in a.reference_env)
        + " ".join(cmd)
    )
    logfile = a.workdir / "reference.log"
    log(f"running the reference ({logfile})")
    load_before = os.getloadavg()
    rc, wall, rss = run(cmd, logfile, cwd=ref, env=env)
    load_after = os.getloadavg()
    if rc or not timings.is_file():
        sys.exit(f"the reference failed (exit {rc}); {logfile}:\n{tail(logfile)}")
    t = json.loads(timings.read_text())
    # its accuracies: the CSV it writes after every task (after_learning_of_task;tested_task;accuracy)
    results = sorted((ref / SAVING_FOLDER).glob("results_*.csv"))
    if len(results) != 1:
        sys.exit(f"expected one results_*.csv under {ref / SAVING_FOLDER}, found {len(results)}")
    acc: dict[tuple[int, int], float] = {}
    for line in results[0].read_text().splitlines()[1:]:
        _, after, tested, value = line.split(";")
        acc[int(float(after)), int(float(tested))] = float(value)
    T = 1 + max(k[0] for k in acc)
    rows = [[acc[i, j] for j in range(i + 1)] for i in range(T)]
    avg, bwt = average_and_bwt(rows)
    printed = [
        ln for ln in logfile.read_text(errors="replace").splitlines() if ln.startswith("Accuracy for task ")
    ]
    return {
        "command": commands[-1],
        "commit": REFERENCE_COMMIT,
        "wall_seconds": round(wall, 2),
        "ms_per_iteration": round(1e3 * t["seconds_per_iteration"], 3),
        "iterations": t["iterations"],
        "train_seconds": round(t["train_seconds"], 3),
        "validation_seconds": round(t["validation_seconds"], 3),
        "task_setup_seconds": round(t["setup_seconds"], 3),
        "test_seconds": round(t["test_seconds"], 3),
        "import_seconds": round(t["import_seconds"], 3),
        "main_seconds": round(t["main_seconds"], 3),
        "peak_rss_gb": round(rss / 2**20, 3),
        "average_accuracy": round(avg, 4),
        "bwt": round(bwt, 4),
        "accuracy_matrix": rows,  # row t: after task t, tasks 0..t (the reference tests no later task)
        "accuracy_source": str(results[0].relative_to(ref)),
        "accuracy_lines_printed": printed[-T:],
        "per_task": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()} for p in t["per_task"]
        ],
        "torch": t["torch"],
        "numpy": t["numpy"],
        "pandas": t["pandas"],
        "hypnettorch": t["hypnettorch"],
        "python": t["python"],
        "torch_threads": t["torch_threads"],
        "environment": {
            k: env[k]
            for k in (
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "MALLOC_MMAP_MAX_",
                "MALLOC_TRIM_THRESHOLD_",
            )
            if k in env
        },
        "timing": "run_reference.py wraps the reference's functions (no edit of its code): per task, from the "
        "first next_train_batch call to the return of train_single_task, less the calculate_accuracy "
        "calls inside it (validation); ms_per_iteration = sum over tasks / iterations, as hypermask's "
        "metrics.json (train.py: the loop less its validation checks)",
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "trained_parameters": t["trained_parameters"],
        "parameters": t["parameters"],
        "log": str(logfile),
    }


def run_hypermask(a, commands: list[str]) -> dict:
    hypermask = Path(a.hypermask) if a.hypermask else Path(sys.executable).parent / "hypermask"
    if not hypermask.is_file():
        sys.exit(f"--hypermask: {hypermask} is not a file")
    with tempfile.TemporaryDirectory() as tmp:
        override = Path(tmp) / "override.yaml"
        lines = [f"hypermask.{k}: {json.dumps(v)}" for k, v in REFERENCE_HYPERMASK.items()]
        if a.iterations is not None:
            lines.append(f"train.iterations: {a.iterations}")
        override.write_text("\n".join(lines) + "\n")
        cmd = [
            str(hypermask),
            "train",
            "fmnist_permuted",
            "--method",
            "hypermask",
            "--seed",
            str(a.seed),
            "--quiet",
            "--threads",
            str(a.threads),
            "--device",
            a.device,
            "--results",
            tmp,
            "--override",
            str(override),
        ]
        cmd += ["--no-tracking"] if a.no_tracking else ["--tracking-uri", f"sqlite:///{tmp}/mlflow.db"]
        if a.seed not in (1, 2, 3, 4, 5):
            cmd.append("--any-seed")
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update({"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)})
        shown = " ".join(cmd).replace(tmp, "TMP")
        commands.append(
            f"OMP_NUM_THREADS={a.threads} MKL_NUM_THREADS={a.threads} {shown}  "
            f"# TMP/override.yaml: {'; '.join(lines)}"
        )
        logfile = a.workdir / "hypermask.log"
        log(f"running hypermask train ({logfile})")
        load_before = os.getloadavg()
        rc, wall, rss = run(cmd, logfile, cwd=ROOT, env=env)
        load_after = os.getloadavg()
        if rc:
            sys.exit(f"hypermask train failed (exit {rc}); {logfile}:\n{tail(logfile)}")
        m = json.loads(
            (
                Path(tmp) / "runs" / "fmnist_permuted" / "hypermask" / f"seed_{a.seed}" / "metrics.json"
            ).read_text()
        )
    A = m["accuracy_matrix"]
    return {
        "command": commands[-1],
        "wall_seconds": round(wall, 2),
        "run_wall_seconds": m["wall_seconds"],
        "ms_per_iteration": round(1e3 * m["seconds_per_iteration"], 3),
        "iterations": m["iterations"],
        "train_seconds": m["train_seconds"],
        "validation_seconds": round(sum(p.get("validation_seconds", 0.0) for p in m["per_task"]), 3),
        "eval_seconds": m["eval_seconds"],
        "peak_rss_gb": round(rss / 2**20, 3),
        "average_accuracy": round(m["average_accuracy"], 4),
        "bwt": round(m["bwt"], 4),
        "accuracy_matrix": [row[: t + 1] for t, row in enumerate(A)],  # as the reference's: tasks 0..t
        "evaluation_settings": m["config"]["evaluation"]["settings"],
        "per_task": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()} for p in m["per_task"]
        ],
        "device": m["device"],
        "trained_parameters": m.get("memory", {}).get("trained_parameters"),
        "torch": m["torch_version"],
        "python": m["python_version"],
        "torch_threads": m["torch_threads"],
        "process_settings": m.get("process_settings", {}),
        "git_commit": m.get("git_commit"),
        "uncommitted_code": m.get("uncommitted_code"),
        "tracking": not a.no_tracking,
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "config": m["config"],
        "log": str(logfile),
    }


def compare_settings(ref: dict, hm: dict, seed: int) -> list[dict]:
    """The reference's parameters (as its process held them) beside hypermask's resolved config."""
    p, c = ref["parameters"], hm["config"]
    d, tr, tg, h = c["data"], c["train"], c["target"], c["hypermask"]
    rows = [
        ("tasks", p["number_of_tasks"], d["n_tasks"]),
        ("iterations per task", p["number_of_iterations"], tr["iterations"]),
        ("batch size", p["batch_size"], tr["batch_size"]),
        ("learning rate (Adam)", p["learning_rate"], tr["lr"]),
        ("padding", p["padding"], d["padding"]),
        ("input size", p["input_shape"], (28 + 2 * d["padding"]) ** 2),
        (
            "validation samples (the first of the training set)",
            p["no_of_validation_samples"],
            d["validation_size"],
        ),
        ("target hidden layers", p["target_hidden_layers"], tg["hidden"]),
        ("hypernetwork hidden layers", p["hypernetwork_hidden_layers"], h["hnet_hidden"]),
        ("task embedding size", p["embedding_size"], h["embedding_dim"]),
        ("beta", p["beta"], h["beta"]),
        ("lambda", p["lambda"], h["lambda"]),
        ("sparsity p", p["sparsity_parameter"], h["sparsity"]),
        ("adaptive sparsity", p["adaptive_sparsity"], h["adaptive_sparsity"]),
        ("masked L1", p["norm_regularizer_masking"], h["masked_l1"]),
        ("model selection", p["best_model_selection_method"] == "last_model", tr["selection"] == "last"),
        ("augmentation", p["augmentation"], d["augmentation"]),
        ("seed", p["seed"], seed),
        ("device", p["device"], hm["device"]),
        (
            "trained parameters (target, hypernetwork, embeddings)",
            ref["trained_parameters"],
            hm["trained_parameters"],
        ),
    ]
    out = []
    for name, r, m in rows:
        same = (
            math.isclose(float(r), float(m), rel_tol=1e-9)
            if isinstance(r, (int, float)) and isinstance(m, (int, float)) and not isinstance(r, bool)
            else r == m
        )
        out.append({"setting": name, "reference": r, "hypermask": m, "same": same})
    # fixed on both sides, not in either's settings
    out.append(
        {
            "setting": "hypernetwork regulariser",
            "reference": "beta / t * (1/t) sum_j ||H(e_j) - H*_j||^2",
            "hypermask": f"hnet_reg_normalisation: {h['hnet_reg_normalisation']}",
            "same": h["hnet_reg_normalisation"] == "reference",
        }
    )
    out.append(
        {
            "setting": "validation checks",
            "reference": "iteration % 100 == 0 and the last",
            "hypermask": f"iteration % {tr['val_every']} == 0 and the last",
            "same": tr["val_every"] == 100,
        }
    )
    return out


DIFFERENCES = [
    "Random streams: the reference draws its 5 permutations from NumPy's legacy generator after "
    "np.random.seed(seed), its initial weights from torch.manual_seed(seed) and its batch order from "
    "hypnettorch's generator; hypermask draws its own (np.random.default_rng(seed) permutations, its own "
    "initialisation and batch stream). Same seed number, different draws: accuracies agree only to the "
    "spread between seeds.",
    "Data path of a training batch (inside the timed iteration on both sides): the reference indexes float64 "
    "NumPy arrays, converts each image back to uint8 and runs torchvision's ToPILImage, Pad(2), ToTensor and a "
    "pixel permutation per sample, then stacks; hypermask pads and permutes the whole uint8 batch as tensors.",
    "The reference appends a row to Results/.../regularization_loss.csv on every iteration (open, np.savetxt, "
    "close, formatting the regulariser tensors): part of its timed iteration.",
    "Masks at p = 0: the reference sorts every masked tensor in float64 (torchpercentile) on every iteration and "
    "keeps values >= that minimum (nothing is zeroed); hypermask skips the threshold when p = 0.",
    "Outside the timed loop (wall time only): the reference loads hypnettorch's pickle of the whole dataset "
    "(float64, 445 MB; built before the timed run, as on any run after a first one), tests tasks 0..t after each "
    "task t (torchvision per sample, 10000 images per task), saves the networks after the last task and draws a "
    "seaborn heatmap PDF; "
    "hypermask tests every task after each task (the full matrix, for forward transfer) plus a randomly "
    "initialised model, runs its other evaluation settings (evaluation_settings), writes a checkpoint per "
    "task and, unless --no-tracking, logs to a temporary MLflow SQLite store.",
    "Process settings: both get OMP_NUM_THREADS and MKL_NUM_THREADS = --threads (and hypermask --threads); the "
    "hypermask command also sets its OpenMP defaults for itself (process_settings; hypermask/cli/process.py), the reference runs "
    "with OpenMP's default wait policy unless --reference-env OMP_WAIT_POLICY=... is given.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=Path, required=True, help="a checkout of gmum/HyperMask at 674bf9b")
    ap.add_argument(
        "--torchpercentile", type=Path, required=True, help="a checkout of aliutkus/torchpercentile"
    )
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hypermask-reference"))
    ap.add_argument(
        "--reference-python",
        default=sys.executable,
        help="the interpreter of the reference (default: this one; it needs torch, torchvision, "
        "numpy, pandas and matplotlib)",
    )
    ap.add_argument(
        "--reference-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra environment variable of the reference's process (repeatable)",
    )
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    ap.add_argument(
        "--hypermask", default=None, help="the `hypermask` command to run (default: this environment's)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda, on both sides")
    ap.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iterations per task on both sides (default: fmnist_permuted's 1000); for quick checks",
    )
    ap.add_argument("--no-tracking", action="store_true", help="hypermask without MLflow")
    ap.add_argument(
        "--allow-modified",
        action="store_true",
        help="run a reference tree whose files differ from 674bf9b's (named in the output)",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON to this file (atomically)")
    a = ap.parse_args()
    if any("=" not in kv for kv in a.reference_env):
        ap.error("--reference-env takes KEY=VALUE")
    a.reference, a.torchpercentile, a.workdir = (
        p.resolve() for p in (a.reference, a.torchpercentile, a.workdir)
    )
    if a.workdir == ROOT or ROOT in a.workdir.parents:
        ap.error("--workdir must be outside this repository (the reference's code is copied there)")
    modified = check_tree(a.reference, REFERENCE_BLOBS, "--reference")
    if modified and not a.allow_modified:
        sys.exit(
            f"--reference: {', '.join(modified)} differ from gmum/HyperMask {REFERENCE_COMMIT} (--allow-modified to run it)"
        )
    tp_modified = check_tree(a.torchpercentile, TORCHPERCENTILE_BLOBS, "--torchpercentile")
    if tp_modified and not a.allow_modified:
        sys.exit(f"--torchpercentile: {', '.join(tp_modified)} differ from aliutkus/torchpercentile 0733faa")
    probe = subprocess.run(
        [a.reference_python, "-c", "import torch, torchvision, numpy, pandas, matplotlib"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        sys.exit(f"--reference-python {a.reference_python}: {probe.stderr.strip().splitlines()[-1]}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    iterations = a.iterations if a.iterations is not None else 1000
    edit_list = edits(iterations, a.seed, a.device)
    commands: list[str] = []
    site, shims, runner = prepare(a, edit_list, commands)
    reference = run_reference(a, site, shims, runner, commands)
    hypermask = run_hypermask(a, commands)
    settings = compare_settings(reference, hypermask, a.seed)
    mismatched = [s["setting"] for s in settings if not s["same"]]
    if mismatched:
        print(f"bench_reference: the two configurations differ in: {', '.join(mismatched)}", file=sys.stderr)
    out = {
        "machine": describe(),
        "configuration": {
            "benchmark": "fmnist_permuted",
            "method": "hypermask",
            "beta": BETA,
            "lambda": LAMBDA,
            "seed": a.seed,
            "threads": a.threads,
            "device": a.device,
            "iterations_per_task": iterations,
            "full_run": a.iterations is None,
        },
        "ratio": {
            "ms_per_iteration": round(reference["ms_per_iteration"] / hypermask["ms_per_iteration"], 2),
            "wall": round(reference["wall_seconds"] / hypermask["wall_seconds"], 2),
            "peak_rss": round(reference["peak_rss_gb"] / hypermask["peak_rss_gb"], 2),
            "meaning": "reference / hypermask",
        },
        "reference": reference,
        "hypermask": hypermask,
        "settings": settings,
        "settings_match": not mismatched,
        "not_the_same": DIFFERENCES,
        "reference_tree": {
            "path": str(a.reference),
            "commit": REFERENCE_COMMIT,
            "files_checked": sorted(REFERENCE_BLOBS),
            "differ_from_commit": modified,
        },
        "torchpercentile_tree": {
            "path": str(a.torchpercentile),
            "commit": "0733faa",
            "files_checked": sorted(TORCHPERCENTILE_BLOBS),
            "differ_from_commit": tp_modified,
        },
        "reference_packages": {
            "installed": {
                w.name: hashlib.sha256(w.read_bytes()).hexdigest()
                for w in (wheel_file(a.workdir / "wheels", pin) for pin in WHEELS)
            },
            "torchpercentile": "copied from --torchpercentile",
            "skimage": "stand-in module (shims/skimage): imported by TinyImageNet.py, never called",
            "shared_with_reference_python": "torch, torchvision, numpy, pandas, matplotlib",
        },
        "edits": [
            {k: e[k] for k in ("kind", "file", "old", "new", "count", "why")}
            | {"in": "hypnettorch 0.0.4 (workdir site/)" if e["where"] == "site" else "the reference's copy"}
            for e in edit_list
        ],
        "commands": commands,
        "workdir": str(a.workdir),
        "bench_python": platform.python_version(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    text = json.dumps(out, indent=2) + "\n"
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=a.out.parent, prefix=f".{a.out.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, a.out)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
