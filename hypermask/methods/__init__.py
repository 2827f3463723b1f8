"""Continual-learning methods, one file each, behind one contract (`Method`), and their registry.

The loop (hypermask/train.py), evaluation, entropy task inference and FeCAM talk to a method
only through this contract; every method-specific value (hyperparameters, snapshots, its
sparsity schedule, its optimiser) lives in the method's own file. `METHODS` records, per
method, what the rest of the project reads: where its class lives, its family (claims,
captions), its output-head layout (the target's heads, the captions), which evaluation settings
without the task id it supports, and its settings block in params.yaml (config.py's schema and
the training fingerprint). Adding a method means its file, its `Entry`, its settings block in
config.py (if it has hyperparameters) and its `methods:` entry in params.yaml.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # this module stays light: params.yaml validation reads the registry
    from torch import Tensor

    from ..config import ExperimentConfig
    from ..data import Task
    from ..nets import TargetNet


@runtime_checkable
class Method(Protocol):
    """What the continual loop needs of a method (all methods are torch modules holding the
    target network as `.target`)."""

    target: TargetNet
    supports_task_inference: bool  # whether all_task_outputs exists (entropy, FeCAM)

    def parameters(self) -> Iterator[Tensor]: ...

    def attach(self, tasks: list[Task]) -> None:
        """The run's task stream, once, before training (joint training samples all tasks)."""

    def start_task(self, t: int, n_iterations: int) -> None:
        """Before task t's first step: snapshots, schedules."""

    def batch(self, task: Task, idx: Tensor, gen: Any) -> tuple[Tensor, Tensor]:
        """The inputs and labels of one training step of task (idx: the step's sample indices)."""

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        """(total loss, cross-entropy) of one batch of task t at this iteration of the task."""

    def end_task(self, t: int, task: Task) -> None:
        """After task t's last step, before its evaluation: consolidation (EWC's Fisher)."""

    def make_optimizer(self, lr: float) -> Any:
        """The optimiser for the task about to start (zero_grad, step, param_groups)."""

    def eval_context(self, tasks: list[int]) -> dict:
        """What evaluating these tasks needs, computed once (HyperMask: their masks)."""

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        """Outputs (or penultimate features) of inputs x of task t."""

    def memory(self) -> dict:
        """Bytes of the state it keeps to serve (and go on learning) its tasks, by part."""


# Families (the claims and the table captions read them):
#   "hypernetwork": task-conditioned weights or masks generated from task embeddings;
#   "forget_free": per-task binary masks or owned weights, earlier tasks' functions fixed (BWT 0);
#   "isolation": task-specific soft gates over one network (HAT: near-zero forgetting, not exact);
#   "shared_network": one set of weights for every task, regularised, projected, replayed or not
#   (plus per-task heads);
#   "bound": not a continual learner (joint: all data at once; independent: a network per task).
FAMILIES = ("hypernetwork", "forget_free", "isolation", "shared_network", "bound")


@dataclass(frozen=True)
class Entry:
    module: str  # hypermask.methods.<module>
    cls: str
    task_inference: bool  # evaluation without the task id (entropy, FeCAM) is possible
    family: str
    # The output layer as the method's own code has it, in words for the table captions.
    head: str
    # One output block per task (the task id given at test time selects it; task-incremental
    # protocol): True on every benchmark, permuted ones too; "split": on split benchmarks only
    # (GPM: its authors' code has one projected head on Permuted MNIST, one per task on splits).
    per_task_head: bool | str = False
    # SupSup's one-shot task inference (evaluation setting "oneshot"): superposed masks
    one_shot: bool = False
    block: str | None = None  # the method's own settings block in params.yaml (config.py), if any


_PER_TASK = "one output head per task"
# name (params.yaml `method:`) -> where its class lives
METHODS = {
    "hypermask": Entry("hypermask", "HyperMask", True, "hypernetwork",
                       "one shared output layer, its weights masked per task (bias unmasked)", block="hypermask"),
    "hnet": Entry("hnet", "HNET", True, "hypernetwork",
                  "every weight, the output layer's included, generated per task by a chunked hypernetwork",
                  block="hnet"),
    "hnet_full": Entry("hnet", "HNETFull", True, "hypernetwork",
                       "every weight generated per task by HyperMask's unchunked hypernetwork", block="hnet_full"),
    "wsn": Entry("wsn", "WSN", True, "forget_free", f"{_PER_TASK}, dense and unmasked; the trunk masked",
                 per_task_head=True, block="wsn"),
    "supsup": Entry("supsup", "SupSup", True, "forget_free", "one shared output layer under each task's supermask",
                    one_shot=True, block="supsup"),
    "packnet": Entry("packnet", "PackNet", True, "forget_free", f"{_PER_TASK}; the trunk pruned and frozen",
                     per_task_head=True, block="packnet"),
    "ewc": Entry("ewc", "EWC", False, "shared_network", _PER_TASK, per_task_head=True, block="ewc"),
    "si": Entry("si", "SI", False, "shared_network", _PER_TASK, per_task_head=True, block="si"),
    "hat": Entry("hat", "HAT", False, "isolation", f"{_PER_TASK}; hidden units gated per task", per_task_head=True,
                 block="hat"),
    "gpm": Entry("gpm", "GPM", False, "shared_network",
                 "permuted: one shared output layer, projected like the trunk; split: one head per task (the authors' "
                 "codes)", per_task_head="split", block="gpm"),
    "er": Entry("er", "ER", False, "shared_network", f"{_PER_TASK}; replayed samples through their own task's",
                per_task_head=True, block="er"),
    "finetune": Entry("finetune", "FineTune", False, "shared_network", _PER_TASK, per_task_head=True),
    "joint": Entry("joint", "Joint", False, "bound", f"{_PER_TASK}, all tasks' data from the start",
                   per_task_head=True),
    "independent": Entry("independent", "Independent", False, "bound", "a separate network (and head) per task"),
}
METHOD_BLOCKS = tuple(e.block for e in METHODS.values() if e.block)  # a method's own settings block


def of_family(family: str) -> tuple[str, ...]:
    return tuple(m for m, e in METHODS.items() if e.family == family)


def heads_of(cfg: ExperimentConfig) -> int:
    """Output heads of the target: one per task for the methods whose own code has them."""
    per_task = METHODS[cfg.method].per_task_head
    return cfg.data.n_tasks if per_task is True or (per_task == "split" and cfg.data.scenario == "split") else 1


def build_method(cfg: ExperimentConfig, target: TargetNet) -> Method:
    entry = METHODS[cfg.method]
    cls = getattr(importlib.import_module(f"{__name__}.{entry.module}"), entry.cls)
    return cls(cfg, target)
