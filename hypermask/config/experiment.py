"""One experiment's settings, typed: data, target network, training budget, evaluation, and
every method's own block (from the methods' records, hypermask/methods/specs/), and the
training fingerprint (the settings a run's results depend on).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, create_model, model_validator

from hypermask.evaluation.settings import SETTINGS, supported, why_not
from hypermask.methods import METHOD_BLOCKS, METHODS
from hypermask.methods.record import TargetKind
from hypermask.typed import Name, NonNegative, PathSetting, Positive, Seed
from hypermask.typed import Strict as _Strict

if TYPE_CHECKING:  # Literals built at run time from the registries: plain names to the type checker
    MethodName = str
    SettingName = str
else:
    MethodName = Literal[tuple(METHODS)]  # hypermask/methods/: one file per method
    SettingName = Literal[tuple(SETTINGS)]  # hypermask/evaluation/settings.py

N_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar100": 100, "tinyimagenet": 200}
# Training images per class of each source's training split (digits: scikit-learn's bundle under
# the fixed 1347/450 split; MNIST: its published counts; the others balanced), so that `check`
# refuses a validation split no task can hold before a run finds out (data/tasks.py).
TRAIN_PER_CLASS = {
    "digits": [135, 136, 134, 136, 133, 137, 134, 134, 133, 135],
    "mnist": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "fashion_mnist": [6000] * 10,
    "cifar100": [500] * 100,
    "tinyimagenet": [500] * 200,
}


class DataConfig(_Strict):
    source: Literal["digits", "mnist", "fashion_mnist", "cifar100", "tinyimagenet"]
    root: PathSetting | None = None  # raw data directory (IDX .gz files, CIFAR-100, tiny-imagenet-200)
    download: bool = False  # let torchvision download into `root` (needs the internet)
    scenario: Literal["permuted", "split"]
    n_tasks: Positive
    padding: NonNegative = 0  # permuted: zero padding on each side before permuting
    classes_per_task: Positive | list[Positive] | None = None  # split only
    class_order: Literal["natural", "seeded"] | list[NonNegative] = "natural"
    validation_size: NonNegative = 0  # per task: the first N training samples (reference)
    validation_per_class: NonNegative | None = None  # per task: this many x classes in the task
    augmentation: bool = False
    reduced: bool = False  # accept a deliberately reduced copy (fewer images than the source has)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        n_cls = N_CLASSES[self.source]
        if self.source in ("mnist", "cifar100", "tinyimagenet") and self.root is None:
            raise ValueError(f"root: source {self.source!r} needs the directory of its raw data")
        if self.scenario == "permuted":
            if self.classes_per_task is not None:
                raise ValueError("classes_per_task: not used by the permuted scenario")
        else:
            if self.classes_per_task is None:
                raise ValueError("classes_per_task: required by the split scenario")
            sizes = self.task_sizes()
            if len(sizes) != self.n_tasks:
                raise ValueError(f"classes_per_task: {len(sizes)} entries but n_tasks is {self.n_tasks}")
            if sum(sizes) > n_cls:
                raise ValueError(f"classes_per_task: {sum(sizes)} classes but {self.source} has {n_cls}")
            if isinstance(self.class_order, list):
                order = self.class_order
                if len(set(order)) != len(order) or any(c >= n_cls for c in order):
                    raise ValueError(f"class_order: must list distinct classes in 0..{n_cls - 1}")
                if len(order) < sum(sizes):
                    raise ValueError(f"class_order: lists {len(order)} classes, the tasks need {sum(sizes)}")
        if (
            self.scenario == "permuted"
            and self.padding
            and self.source not in ("digits", "mnist", "fashion_mnist")
        ):
            raise ValueError("padding: only for the grey-scale sources")
        if not self.reduced:
            self._check_validation_fits()
        return self

    def _check_validation_fits(self) -> None:
        """The validation split is taken from each task's training images and must leave some:
        refused where the smallest task this stream can have (its k rarest classes) could not."""
        counts = sorted(TRAIN_PER_CLASS[self.source])
        if self.scenario == "permuted":
            if self.validation_size >= sum(counts):
                raise ValueError(
                    f"validation_size: {self.validation_size} >= the {sum(counts)} training images of {self.source}"
                )
            return
        for k in sorted(set(self.task_sizes())):
            n_val = (
                self.validation_per_class * k
                if self.validation_per_class is not None
                else self.validation_size
            )
            if n_val >= sum(counts[:k]):
                key = "validation_per_class" if self.validation_per_class is not None else "validation_size"
                raise ValueError(
                    f"{key}: {n_val} validation images for a task of {k} classes, which may have only "
                    f"{sum(counts[:k])} training images in {self.source}"
                )

    def task_sizes(self) -> list[int]:
        if self.classes_per_task is None:
            return [N_CLASSES[self.source]] * self.n_tasks
        if isinstance(self.classes_per_task, int):
            return [self.classes_per_task] * self.n_tasks
        return list(self.classes_per_task)


class TargetConfig(_Strict):
    kind: TargetKind  # the target networks (hypermask/nets.py)
    hidden: list[Positive] = [100, 100]  # mlp
    width: Positive = 2  # resnet20 width factor
    batch_norm: Literal["batch_stats", "per_task"] = "batch_stats"  # resnet20
    # zenkenet: "reference" trains in eval mode after the first validation check of a task,
    # as the reference does (dropout effectively off); "train" keeps dropout on.
    dropout: Literal["reference", "train"] = "reference"


class TrainConfig(_Strict):
    iterations: Positive | None = None  # per task
    epochs: Positive | None = None  # per task (exclusive with iterations)
    batch_size: Positive = 128
    lr: Annotated[float, Field(gt=0)] = 1e-3
    selection: Literal["last", "best_val"] = "last"
    val_every: Positive = 100
    lr_scheduler: bool = True  # ReduceLROnPlateau on val accuracy, epoch budgets only
    log_every: Positive = 100  # MLflow: training loss every N iterations
    eval_batch_size: Positive | None = (
        None  # None: whole split at once where batch norm uses batch statistics (reference), else 1024 rows
    )
    keep_checkpoints: Literal["all", "last"] = (
        "all"  # "last": delete a task's checkpoint once the next is written
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if (self.iterations is None) == (self.epochs is None):
            raise ValueError("iterations: give exactly one of iterations or epochs")
        return self


class FeCAMConfig(_Strict):
    shrink_times: NonNegative = 2  # covariance shrinkage passes (the reference applies 2)
    normalize_covariance: bool = True  # covariance -> correlation matrix
    normalize_features: bool = True  # L2-normalise features and prototypes


class EvaluationConfig(_Strict):
    # Settings computed after every task: "til" (task id given; always), "entropy" (task inferred
    # per sample by the lowest softmax entropy), "fecam" (class-incremental, FeCAM on features),
    # "classil" (a class-incremental method's own head over all classes seen), "oneshot" (SupSup's
    # one-shot task inference, one task per batch of oneshot_batch_size).
    settings: list[SettingName] = ["til"]  # hypermask/evaluation/settings.py
    fecam: FeCAMConfig = FeCAMConfig()
    batch_size: Positive = 1000  # samples per batch when evaluating all masks at once
    oneshot_batch_size: Positive = 128  # the batch one task is inferred for (Wortsman et al. 2020: 128)


class _Experiment(_Strict):
    """ExperimentConfig without the methods' settings blocks (added from their records below)."""

    name: str  # BENCHMARK/METHOD
    benchmark: str = ""
    description: str = ""
    method: MethodName = "hypermask"  # hypermask/methods/: one file per method
    variant: Name | None = None  # a variant's own name (params.yaml `variant_of`); None: the method itself
    data: DataConfig
    target: TargetConfig
    train: TrainConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    seeds: list[Seed] = Field(min_length=1)
    reference: dict[str, float] = {}  # published figures (average accuracy ...), for tables

    @model_validator(mode="after")
    def _check(self) -> _Experiment:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicated seed in {self.seeds}")
        for s in self.evaluation.settings:
            if not supported(s, METHODS[self.method]):
                raise ValueError(f"evaluation.settings: {why_not(s, self.method)}")
        no_val = self.data.validation_size == 0 and not self.data.validation_per_class
        if no_val and self.train.selection == "best_val":
            raise ValueError("train.selection: best_val needs a validation set (data.validation_size > 0)")
        if no_val and self.train.epochs is not None and self.train.lr_scheduler:
            raise ValueError("train.lr_scheduler: needs a validation set (data.validation_size > 0)")
        record = METHODS[self.method]
        if record.max_tasks is not None and self.data.n_tasks > record.max_tasks:
            raise ValueError(
                f"data.n_tasks: {self.data.n_tasks} tasks, but {self.method} holds at most {record.max_tasks}: "
                f"{record.max_tasks_why}"
            )
        if not record.supports_target(self.target.kind):
            raise ValueError(f"method: {record.targets_why} (target.kind is {self.target.kind})")
        if self.target.kind != "mlp" and self.data.source in ("digits", "mnist", "fashion_mnist"):
            raise ValueError(f"target.kind: {self.target.kind} needs colour images, not {self.data.source}")
        if self.target.kind == "zenkenet" and self.data.source not in ("cifar100", "tinyimagenet"):
            raise ValueError("target.kind: zenkenet exists for cifar100 (32x32) and tinyimagenet (64x64)")
        return self

    @property
    def row(self) -> str:
        """The name of its tables row, run folders and MLflow `method` tag: the variant's, else the method's."""
        return self.variant or self.method

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def own_settings(self) -> dict[str, Any]:
        """as_dict without the other methods' settings blocks: what this run reads (the settings
        MLflow records, so that the compare view shows no `ewc.lambda` on a HyperMask run)."""
        d = self.as_dict()
        for block in METHOD_BLOCKS:
            if block != self.method:
                d.pop(block, None)
        return d


# One settings block per method that has settings, named after it, from its record
# (hypermask/methods/specs/NAME.py): `cfg.hypermask.beta`, `cfg.wsn.capacity`, ...
if TYPE_CHECKING:

    class ExperimentConfig(_Experiment):
        def __getattr__(self, block: str) -> Any:
            """The methods' settings blocks: fields made at run time from the records, Any to the checker."""

else:
    ExperimentConfig = create_model(
        "ExperimentConfig",
        __base__=_Experiment,
        __module__=__name__,
        **{r.block: (r.settings, Field(default_factory=r.settings)) for r in METHODS.values() if r.block},
    )


def training_fingerprint(cfg: ExperimentConfig) -> str:
    """The settings a run's results depend on, as canonical JSON: not the seed list, the
    description, the reference figures or the logging interval. Checkpoints carry it (a
    checkpoint of other settings is never resumed) and the Snakemake rules declare it, so an
    edit of these settings, and only of these, makes the experiment's jobs stale."""
    d = cfg.own_settings()  # another method's block changes nothing of this run
    for k in ("seeds", "description", "reference"):
        d.pop(k, None)
    if d.get("variant") is None:  # a plain method's fingerprint is what it was before variants existed
        d.pop("variant", None)
    d["train"].pop("log_every", None)
    if "oneshot" not in d["evaluation"]["settings"]:  # a setting this run does not evaluate
        d["evaluation"].pop("oneshot_batch_size", None)
    return json.dumps(d, sort_keys=True)
