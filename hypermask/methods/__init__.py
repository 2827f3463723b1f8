"""Continual-learning methods, one file each, behind one contract (`Method`).

The loop (hypermask/train.py), evaluation, entropy task inference and FeCAM talk to a method
only through this contract; every method-specific value (hyperparameters, snapshots, its
sparsity schedule, its optimiser) lives in the method's own file. Adding a method means one
file and one entry in METHODS.
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


@dataclass(frozen=True)
class Entry:
    module: str  # hypermask.methods.<module>
    cls: str
    task_inference: bool  # evaluation without the task id (entropy, FeCAM) is possible
    # One output head per task on split benchmarks: the method's weights have no task-specific
    # part that could make one shared head task specific (BASELINES: fine-tuning, EWC, SI, joint).
    multi_head: bool = False
    # SupSup's one-shot task inference (evaluation setting "oneshot"): superposed masks
    one_shot: bool = False


# name (params.yaml `method:`) -> where its class lives
METHODS = {
    "hypermask": Entry("hypermask", "HyperMask", task_inference=True),
    "hnet": Entry("hnet", "HNET", task_inference=True),
    "wsn": Entry("wsn", "WSN", task_inference=True),
    "supsup": Entry("supsup", "SupSup", task_inference=True, one_shot=True),
    "packnet": Entry("packnet", "PackNet", task_inference=True),
    "ewc": Entry("ewc", "EWC", task_inference=False, multi_head=True),
    "si": Entry("si", "SI", task_inference=False, multi_head=True),
    "finetune": Entry("finetune", "FineTune", task_inference=False, multi_head=True),
    "joint": Entry("joint", "Joint", task_inference=False, multi_head=True),
}


def heads_of(cfg: ExperimentConfig) -> int:
    """Output heads of the target: one per task for multi-head methods on split benchmarks."""
    return cfg.data.n_tasks if METHODS[cfg.method].multi_head and cfg.data.scenario == "split" else 1


def build_method(cfg: ExperimentConfig, target: TargetNet) -> Method:
    entry = METHODS[cfg.method]
    cls = getattr(importlib.import_module(f"{__name__}.{entry.module}"), entry.cls)
    return cls(cfg, target)
