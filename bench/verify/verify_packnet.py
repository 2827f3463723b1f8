"""PackNet's official code (arunmallya/packnet, src/) against our fmnist_permuted configuration (issue
41): it cannot run that configuration with compatibility and configuration edits only, and this
script records why, from the checkout itself (bench/verify/harness.py: the JSON's schema).

    nice -n 10 python bench/verify/verify_packnet.py --official /tmp/official/packnet --not-run \\
        --out bench/results/verify_packnet.json

--official is a checkout of arunmallya/packnet at 7b6032c (its newest commit, 2018; checked by
harness.check_checkout). --not-run reads the checkout (nothing is run, copied or written into
it) and checks every fact the reason rests on, each against the file that holds it: the network
classes and the architectures `--arch` accepts (src/networks.py, src/main.py, by their syntax
trees), the loaders (src/dataset.py), the first task's path (src/main.py's finetune branch
without --loadname and src/scripts/run_sequence.sh / run_imagenet_pruning.sh) and the training
budget (whole epochs). Where one no longer holds (another commit, a modified checkout) it stops
with exit 2 naming it, so that the decision is made again; otherwise it writes the JSON with
"status": "not_run", the inspected commit, the reason (`why`, rendered in the verdict cell of
docs/methods.md's "Verified against the authors' code") and the per-file findings (rendered
below the table), plus the compatibility edits the code would also need on today's PyTorch.

The decision (the brief: 15 minutes, compatibility and configuration edits only): no. The
pruning rule itself (src/prune.py, SparsePruner) is architecture-agnostic (it walks the Linear
and Conv2d modules of `model.shared`), but everything around it is ImageNet-specific code, not
configuration: there is no MLP, no loader for IDX files or permuted pixels, no way to train the
first task of a sequence from scratch, and the budget is whole epochs. Running our
configuration would take a new network class, a new loader and a new first-task path in their
code: a port, whose result would verify our port, not their code. Without --not-run the script
prints the reason and exits 2 (there is no run mode).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, check_checkout, emit, fail, machine  # noqa: E402

REPO = "arunmallya/packnet"
COMMIT = "7b6032cd089084de4d5e0059819e84be65c5a203"
PAPER = (
    'A. Mallya, S. Lazebnik, "PackNet: Adding Multiple Tasks to a Single Network by Iterative Pruning", '
    "CVPR 2018"
)
BENCHMARK = "fmnist_permuted"
# The files the findings read, with their blob ids at COMMIT (a checkout without .git is checked by them).
BLOBS = {
    "src/networks.py": "504c318d82641ec8a3d1057348398d4079cf68ed",
    "src/main.py": "aa78677b986013d041195c400ce9844a6f3c7bc9",
    "src/dataset.py": "7439ed06aa2dc002e938619066452d8dafecde5c",
    "src/prune.py": "917c16471890fb5e7a0b649fade6bf1f5bd136af",
    "src/scripts/run_sequence.sh": "5b893ffdc77adcee8eb1bbaef12acadad07cb3eb",
    "src/scripts/run_imagenet_pruning.sh": "0ee41b7b1040254acd2f4d1c23ae31ad7d15de58",
}


class Changed(Exception):
    """A fact the reason rests on does not hold in this checkout."""


def _read(root: Path, rel: str) -> str:
    f = root / rel
    if not f.is_file():
        raise Changed(f"{rel} is missing")
    return f.read_text()


def _require(text: str, snippet: str, rel: str) -> None:
    if snippet not in text:
        raise Changed(f"{rel} no longer contains {snippet!r}")


def our_configuration() -> dict:
    """fmnist_permuted as `hypermask train` runs it (params.yaml, merged as for --method packnet)."""
    from hypermask.config.params import experiment_config, read_params

    cfg = experiment_config(read_params(ROOT / "params.yaml"), f"{BENCHMARK}/packnet", ROOT / "params.yaml")
    side = 28 + 2 * cfg.data.padding
    n_train = 60000 - cfg.data.validation_size
    return {
        "tasks": cfg.data.n_tasks,
        "inputs": side * side,
        "hidden": list(cfg.target.hidden),
        "iterations": cfg.train.iterations,
        "batch": cfg.train.batch_size,
        "n_train": n_train,
        "epochs": cfg.train.iterations * cfg.train.batch_size / n_train,
        "prune": cfg.packnet.prune,
        "description": (
            f"Permuted Fashion-MNIST, {cfg.data.n_tasks} tasks, MLP {side * side}-"
            + "-".join(map(str, cfg.target.hidden))
            + f", {cfg.train.iterations} iterations of {cfg.train.batch_size} per task"
        ),
    }


def networks_finding(root: Path) -> str:
    """src/networks.py: its classes, the torchvision models they load, the classifier widths."""
    rel = "src/networks.py"
    tree = ast.parse(_read(root, rel))
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    loaded, widths = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if isinstance(f.value, ast.Name) and f.value.id == "models":
                pretrained = any(
                    k.arg == "pretrained" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                if not pretrained:
                    raise Changed(f"{rel}: models.{f.attr}(...) without pretrained=True")
                loaded.add(f.attr)
            if f.attr == "Linear" and node.args and isinstance(node.args[0], ast.Constant):
                widths.add(node.args[0].value)
    mlp = [c for c in classes if "mlp" in c.lower() or "fc" == c.lower()]
    if mlp or set(classes) - {
        "View",
        "ModifiedVGG16",
        "ModifiedVGG16BN",
        "ModifiedResNet",
        "ModifiedDenseNet",
    }:
        raise Changed(f"{rel} defines {', '.join(classes)}: a network class beyond the ImageNet ones")
    if loaded != {"vgg16", "vgg16_bn", "resnet50", "densenet121"}:
        raise Changed(f"{rel} loads torchvision models {sorted(loaded)}")
    return (
        f"{rel} defines {', '.join(classes)} only: each make_model() loads a torchvision ImageNet model with "
        f"pretrained=True ({', '.join(sorted(loaded))}) as the shared trunk, and add_dataset() appends a "
        f"classifier nn.Linear({' | '.join(str(w) for w in sorted(widths, reverse=True))}, num_outputs) sized "
        "for those trunks. There is no MLP and nothing to configure one with (no input size, no hidden widths)."
    )


def arch_finding(root: Path) -> str:
    """src/main.py: the --arch choices and init_dump's architectures."""
    rel = "src/main.py"
    text = _read(root, rel)
    choices = None
    for node in ast.walk(ast.parse(text)):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "--arch"
        ):
            for k in node.keywords:
                if k.arg == "choices":
                    choices = ast.literal_eval(k.value)
    if choices != ["vgg16", "vgg16bn", "resnet50", "densenet121"]:
        raise Changed(f"{rel}: --arch choices are {choices}")
    _require(text, "raise ValueError('Architecture type not supported.')", rel)
    return (
        f"{rel}: --arch accepts {', '.join(choices)} only, and init_dump() (the only way to create a "
        "sequence's starting checkpoint) builds one of those four or raises 'Architecture type not supported.'"
    )


def first_task_finding(root: Path) -> str:
    """src/main.py and the scripts: a sequence starts from a trained ImageNet checkpoint."""
    rel = "src/main.py"
    text = _read(root, rel)
    branch = (
        "if 'finetune' in args.mode and not args.loadname:\n        model = net.ModifiedVGG16()\n"
        "        previous_masks = []"
    )
    _require(text, branch, rel)
    _require(text, "manager = Manager(args, model, previous_masks, dataset2idx, dataset2biases)", rel)
    head = text[text.index(branch) : text.index("    # Add and set the model dataset.")]
    first_branch = head.split("    else:")[0]
    if "dataset2idx" in first_branch:
        raise Changed(f"{rel}: the finetune branch without --loadname now sets dataset2idx")
    prune = _read(root, "src/prune.py")
    _require(prune, "valid_key = list(previous_masks.keys())[0]", "src/prune.py")
    _require(prune, "mask[mask.eq(0)] = self.current_dataset_idx", "src/prune.py")
    seq = _read(root, "src/scripts/run_sequence.sh")
    _require(seq, "loadname=$LOADNAME", "src/scripts/run_sequence.sh")
    _require(seq, "../checkpoints/imagenet/imagenet_pruned_0.5_final.pt", "src/scripts/run_sequence.sh")
    imagenet = _read(root, "src/scripts/run_imagenet_pruning.sh")
    _require(imagenet, "--init_dump", "src/scripts/run_imagenet_pruning.sh")
    _require(imagenet, "--mode prune", "src/scripts/run_imagenet_pruning.sh")
    return (
        f"{rel}: no path trains a sequence's first task from scratch. `--mode finetune` without --loadname "
        "builds ModifiedVGG16() with previous_masks = [] and never sets dataset2idx (a NameError at "
        "Manager(...); src/prune.py's SparsePruner would also index previous_masks.keys()). A sequence "
        "(src/scripts/run_sequence.sh) starts from --loadname "
        "../checkpoints/imagenet/imagenet_pruned_0.5_final.pt, made by src/scripts/run_imagenet_pruning.sh: "
        "--init_dump of the pretrained model (all its weights owned by task 1, ImageNet), then --mode prune "
        "on ImageNet. finetune mode (make_finetuning_mask) frees only weights that an earlier pruning set to 0: "
        "from an unpruned random MLP no weight would be trainable for the first task."
    )


def data_finding(root: Path) -> str:
    """src/dataset.py: ImageFolder loaders with ImageNet transforms only."""
    rel = "src/dataset.py"
    text = _read(root, rel)
    loaders = [n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)]
    if text.count("datasets.ImageFolder(") != len(loaders):
        raise Changed(f"{rel}: a loader that is not a torchvision ImageFolder")
    for snippet in ("transforms.RandomSizedCrop(224)", "mean=[0.485, 0.456, 0.406]"):
        _require(text, snippet, rel)
    hits = [
        p.name for p in (root / "src").glob("*.py") if re.search(r"mnist|idx[13]|permut", p.read_text(), re.I)
    ]
    if hits:
        raise Changed(f"src/{', src/'.join(hits)} mention MNIST, IDX files or permutations")
    return (
        f"{rel}: {', '.join(loaders)} all read torchvision ImageFolder directories (RGB images in one folder "
        "per class, ../data/DATASET/train and /test) with ImageNet transforms (Scale(256) and "
        "RandomSizedCrop(224) or Scale((224, 224)), ImageNet normalisation). Nothing in src/ reads IDX files or "
        "permutes pixels; a 32x32 one-channel permuted image of ours would reach the network as a 3x224x224 "
        "crop."
    )


def budget_finding(root: Path, ours: dict) -> str:
    """src/main.py: the budget is whole epochs."""
    rel = "src/main.py"
    text = _read(root, rel)
    for snippet in (
        "'--finetune_epochs'",
        "'--post_prune_epochs'",
        "for idx in range(epochs):",
        "for batch, label in tqdm(self.train_data_loader",
    ):
        _require(text, snippet, rel)
    if re.search(r"iteration", text, re.I):
        raise Changed(f"{rel} mentions iterations")
    return (
        f"{rel}: the budget is whole epochs over a shuffled DataLoader (--finetune_epochs, then "
        f"--post_prune_epochs after pruning), no iteration count: our {ours['iterations']} iterations of "
        f"{ours['batch']} per task are {ours['epochs']:.2f} epochs of the {ours['n_train']:,} training samples "
        "(a 2/3 + 1/3 split of that budget between training and retraining is not expressible either)."
    )


def compatibility_finding(root: Path) -> str:
    """The edits the code would also need on today's PyTorch (not blockers by themselves)."""
    main, prune, data = (_read(root, f"src/{f}.py") for f in ("main", "prune", "dataset"))
    found = []
    checks = [
        (prune, "src/prune.py", ".cuda()", "unconditional .cuda() in pruning_mask, prune and apply_mask"),
        (
            main,
            "src/main.py",
            "FLAGS.add_argument('--cuda', action='store_true', default=True,",
            "--cuda is store_true with default True: no way to run on a CPU without an edit",
        ),
        (main, "src/main.py", "Variable(batch, volatile=True)", "Variable(..., volatile=True) (PyTorch 0.3)"),
        (prune, "src/prune.py", ".kthvalue(cutoff_rank)[0][0]", "kthvalue(...)[0][0] indexes a 0-dim tensor"),
        (
            data,
            "src/dataset.py",
            "transforms.RandomSizedCrop(",
            "transforms.Scale / RandomSizedCrop (removed from torchvision)",
        ),
        (data, "src/dataset.py", "collections.Iterable", "collections.Iterable (removed in Python 3.10)"),
        (
            main,
            "src/main.py",
            "import torchnet as tnt",
            "torchnet (tnt.meter.ClassErrorMeter), a 2018 package",
        ),
        (
            main,
            "src/main.py",
            "ckpt = torch.load(args.loadname)",
            "torch.load of a pickled whole model (weights_only=True by default since PyTorch 2.6)",
        ),
    ]
    for text, rel, snippet, what in checks:
        if snippet in text:
            found.append(f"{rel}: {what}")
    readme = (root / "README.md").read_text() if (root / "README.md").is_file() else ""
    pinned = re.search(r"torch==(\S+)", readme)
    return (
        "Compatibility edits it would need besides (each fixable alone; the README pins torch=="
        f"{pinned.group(1) if pinned else '?'}): " + "; ".join(found) + "."
    )


def port_finding() -> str:
    return (
        "What would run: src/prune.py's SparsePruner (the per-layer magnitude rule, make_grads_zero, "
        "make_pruned_zero, apply_mask) over any model exposing `.shared` (an nn.Sequential) and per-task "
        "classifiers; driving it on fmnist_permuted takes an MLP class with that interface, an IDX/permuted "
        "loader and a first-task training path, all new code: that would test a port of their loop (our own "
        "rule is checked against a hand computation in tests/methods), not their code."
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--official", type=Path, required=True, help=f"a checkout of {REPO} at {COMMIT[:7]}")
    ap.add_argument(
        "--not-run",
        action="store_true",
        help="check the checkout for the reasons it cannot run our configuration and write them",
    )
    ap.add_argument("--allow-modified", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (else print it)")
    args = ap.parse_args(argv)

    root = check_checkout(args.official, COMMIT, blobs=BLOBS, allow_modified=args.allow_modified)
    ours = our_configuration()
    try:
        findings = [
            networks_finding(root),
            arch_finding(root),
            first_task_finding(root),
            data_finding(root),
            budget_finding(root, ours),
            compatibility_finding(root),
            port_finding(),
        ]
    except Changed as e:
        fail(
            f"{root}: {e}; the reason this script records no longer holds: decide again whether the official "
            "code runs our configuration"
        )
    why = (
        "their code has no MLP, no loader for IDX files or permuted pixels and no way to train a sequence's "
        "first task from scratch: src/networks.py builds only ImageNet-pretrained VGG-16/ResNet-50/DenseNet-121 "
        "trunks, src/dataset.py only ImageFolder loaders with 224-pixel ImageNet transforms, and src/main.py "
        "starts every sequence from a trained, pruned ImageNet checkpoint; its budget is whole epochs. Running "
        f"{BENCHMARK} would take a new network class, a new loader and a new first-task path in their code "
        "(a port), not compatibility or configuration edits"
    )
    if not args.not_run:
        print(f"no run mode: {why}.\n\nThe findings (--not-run writes them):", file=sys.stderr)
        for f in findings:
            print(f"- {f}", file=sys.stderr)
        raise SystemExit(2)
    record = {
        "method": "packnet",
        "official": {"repo": REPO, "commit": COMMIT, "paper": PAPER},
        "status": "not_run",
        "why": why,
        "benchmark": BENCHMARK,
        "configuration": ours["description"],
        "edits": [],
        "rows": [],
        "findings": findings,
        "inspected_files": sorted(BLOBS),
        "machine": machine(),
        "command": "python bench/verify/verify_packnet.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
