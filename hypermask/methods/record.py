"""What the project knows about a method, in one torch-free record per method
(hypermask/methods/specs/NAME.py, read by `registry`).

A record names the method's implementation, declares its settings block in params.yaml (a
`Strict` model; the block is named after the method), its capabilities (evaluation without the
task id, SupSup's one-shot inference, its output-head layout, the target networks it is
implemented for) and its family. The configuration schema, the training fingerprint, the
suites' capability checks, the claims' families, the tables' captions and the docs' methods
table are derived from the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from hypermask.typed import Strict

# Families (the claims and the table captions read them):
#   "hypernetwork": task-conditioned weights or masks generated from task embeddings;
#   "forget_free": per-task binary masks or owned weights, earlier tasks' functions fixed (BWT 0);
#   "isolation": task-specific soft gates over one network (HAT: near-zero forgetting, not exact);
#   "shared_network": one set of weights for every task, regularised, projected, replayed or not
#   (plus per-task heads);
#   "bound": not a continual learner (joint: all data at once; independent: a network per task).
FAMILIES = ("hypernetwork", "forget_free", "isolation", "shared_network", "bound")
# the target networks (hypermask/nets.py), TargetConfig.kind
TargetKind = Literal["mlp", "resnet20", "zenkenet"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)


@dataclass(frozen=True)
class MethodRecord:
    name: str  # params.yaml's `method:`
    implementation: str  # "module:Class" under hypermask.methods
    family: str
    # The output layer as the method's own code has it, in words for the table captions.
    head: str
    paper: str  # the paper it implements
    code: str = ""  # its authors' implementation, where one exists
    # Its settings block in params.yaml (named after the method), if it has hyperparameters.
    settings: type[Strict] | None = None
    # One output block per task (the task id given at test time selects it; task-incremental
    # protocol): True on every benchmark, permuted ones too; "split": on split benchmarks only
    # (a method whose official code shares one head on permuted benchmarks; none does now).
    per_task_head: bool | str = False
    # Task-specific parts besides output heads (masks, generated weights, a network per task): a
    # model per task even where the head is shared, so the task can be inferred (`task_inference`).
    model_per_task: bool = False
    # One head over all classes seen so far (hypermask/methods/shared/class_incremental.py): trained
    # on a softmax over every seen class, it predicts without the task id by itself (the `classil`
    # evaluation setting). Its output layer keeps a block of classes per task (per_task_head True).
    class_incremental: bool = False
    one_shot: bool = (
        False  # SupSup's one-shot task inference (evaluation setting "oneshot"): superposed masks
    )
    targets: tuple[str, ...] = TARGET_KINDS  # the target networks it is implemented for
    targets_why: str = ""  # why not the others, in words (the checks and the suites' skips say it)
    # A limit of its state on the number of tasks (None: none), and why, in words: `check`
    # refuses a benchmark beyond it before any training.
    max_tasks: int | None = None
    max_tasks_why: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} is not one of {FAMILIES}")
        if self.per_task_head not in (True, False, "split"):
            raise ValueError(f"{self.name}: per_task_head must be True, False or 'split'")
        if not set(self.targets) <= set(TARGET_KINDS) or not self.targets:
            raise ValueError(f"{self.name}: targets must be some of {TARGET_KINDS}")
        if self.class_incremental and self.per_task_head is not True:
            raise ValueError(
                f"{self.name}: a class-incremental head keeps a block per task (per_task_head=True)"
            )
        if self.max_tasks is not None and (self.max_tasks < 1 or not self.max_tasks_why):
            raise ValueError(f"{self.name}: max_tasks must be positive and say why (max_tasks_why)")
        if ":" not in self.implementation:
            raise ValueError(f"{self.name}: implementation must be 'module:Class'")

    @property
    def study_objective(self) -> str:
        """What its Optuna study maximises on the validation splits (hypermask/sweep.py): the figure
        its table row is read for, "classil" (class-incremental accuracy, no task id) for a
        class-incremental method, else "average_accuracy" (task id given)."""
        return "classil" if self.class_incremental else "average_accuracy"

    @property
    def task_inference(self) -> bool:
        """Every task's model is at hand (its own parts, or the shared network with its own head on
        every benchmark), so the entropy and FeCAM settings can evaluate it without the task id:
        derived here, the one place that says which methods can."""
        return self.model_per_task or self.per_task_head is True

    @property
    def block(self) -> str | None:
        """Its settings block in params.yaml and on ExperimentConfig, if any."""
        return self.name if self.settings is not None else None

    def supports_target(self, kind: str) -> bool:
        return kind in self.targets
