"""Continual-learning methods behind one contract (`Method`), and their registry.

The loop (hypermask/engine/loop.py), evaluation, entropy task inference and FeCAM talk to a method
only through this contract. Each method is two files: its implementation
(hypermask/methods/NAME.py: a torch module, every method-specific value in it) and its
torch-free record (hypermask/methods/specs/NAME.py: its settings block, capabilities, head
layout, target networks and family; hypermask/methods/record.py). The registry `METHODS` is
discovered from the records; the configuration schema, the fingerprint, the capability checks,
the claims' families, the tables' captions and the docs' methods table all read it. Adding a
method: its implementation, its record and its `methods:` entry in params.yaml (docs/methods.md,
"Adding a method").
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from hypermask.methods import specs
from hypermask.methods.record import FAMILIES, MethodRecord  # noqa: F401 (FAMILIES: the registry's vocabulary)

if TYPE_CHECKING:  # this module stays light: params.yaml validation reads the registry
    import torch
    from torch import Tensor

    from hypermask.config import ExperimentConfig
    from hypermask.data.tasks import Task
    from hypermask.nets import TargetNet


EvalContext = dict[Any, Any]  # what evaluating some tasks needs, the method's own (masks, weights by task)


@runtime_checkable
class Method(Protocol):
    """What the continual loop needs of a method (all methods are torch modules holding the
    target network as `.target`)."""

    target: TargetNet
    training: bool  # the torch module's mode, which evaluation switches (eval, train); `to` moves it

    def parameters(self) -> Iterator[Tensor]: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def to(self, device: torch.device) -> Self: ...

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

    def eval_context(self, tasks: list[int]) -> EvalContext:
        """What evaluating these tasks needs, computed once (HyperMask: their masks)."""

    def logits(self, ctx: EvalContext, x: Tensor, t: int, features: bool = False) -> Tensor:
        """Outputs (or penultimate features) of inputs x of task t."""

    def memory(self) -> dict[str, Any]:
        """Bytes of the state it keeps to serve (and go on learning) its tasks, by part."""


class TaskInference(Method, Protocol):
    """A method whose record says `task_inference`: every task's model at hand, so the entropy
    and FeCAM settings can infer the task."""

    def all_task_outputs(
        self, ctx: EvalContext, tasks: list[int], x: Tensor, features: bool = False
    ) -> Tensor:
        """(K, N, C) outputs (or features) of inputs x under each of the K tasks' models."""


class ClassIncrementalMethod(TaskInference, Protocol):
    """A method whose record says `class_incremental`: one head over all classes seen so far."""

    def seen_class_logits(self, ctx: EvalContext, x: Tensor, seen: int) -> Tensor:
        """(N, seen * C) logits of inputs x over every class of the first `seen` tasks."""


class OneShot(TaskInference, Protocol):
    """A method whose record says `one_shot` (SupSup): its tasks' masks superposed."""

    def superposed_logits(self, ctx: EvalContext, tasks: list[int], alpha: Tensor, x: Tensor) -> Tensor:
        """Outputs of inputs x under the tasks' masked tensors weighted by alpha."""


def _records() -> dict[str, MethodRecord]:
    """Every method's record (hypermask/methods/specs/NAME.py), by name: the registry."""
    found = {}
    for info in pkgutil.iter_modules(specs.__path__):
        record = getattr(importlib.import_module(f"{specs.__name__}.{info.name}"), "RECORD", None)
        if not isinstance(record, MethodRecord) or record.name != info.name:
            raise ImportError(
                f"hypermask/methods/specs/{info.name}.py must define RECORD = MethodRecord(name="
                f"{info.name!r}, ...)"
            )
        found[record.name] = record
    return dict(sorted(found.items()))


METHODS: dict[str, MethodRecord] = _records()  # params.yaml's `method:` -> its record
METHOD_BLOCKS = tuple(r.block for r in METHODS.values() if r.block)  # the methods' own settings blocks


def of_family(family: str) -> tuple[str, ...]:
    return tuple(m for m, r in METHODS.items() if r.family == family)


def heads_of(cfg: ExperimentConfig) -> int:
    """Output heads of the target: one per task for the methods whose own code has them."""
    per_task = METHODS[cfg.method].per_task_head
    return (
        cfg.data.n_tasks if per_task is True or (per_task == "split" and cfg.data.scenario == "split") else 1
    )


def build_method(cfg: ExperimentConfig, target: TargetNet) -> Method:
    module, cls = METHODS[cfg.method].implementation.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(cfg, target)
