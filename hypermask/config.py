"""params.yaml -> a validated, typed experiment configuration.

params.yaml declares each benchmark once (`benchmarks`: data, target network, budget,
evaluation) and each method once (`methods`: its settings for every benchmark and its
per-benchmark overrides); a suite lists benchmarks x methods. One experiment is one
(benchmark, method) pair, named `BENCHMARK/METHOD` (its folder under results/runs/):

    defaults <- benchmarks.B <- methods.M.settings <- methods.M.benchmarks.B

deep-merged in that order. Every key is checked: an unknown key, a wrong type or range, or
an unknown benchmark or method stops with one message that names the key, before any work.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from .credentials import embedded_password_problem
from .methods import METHOD_BLOCKS, METHODS
from .methods.record import TARGET_KINDS
from .settings import SETTINGS, supported, why_not
from .typed import MAX_SEED, NAME_PATTERN, Name, NonNegative, Positive, Seed  # noqa: F401 (the package's field types)
from .typed import Strict as _Strict

N_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar100": 100, "tinyimagenet": 200}


class ConfigError(ValueError):
    """A problem with params.yaml or with what it points to; the message names the key or path."""


class DataConfig(_Strict):
    source: Literal["digits", "mnist", "fashion_mnist", "cifar100", "tinyimagenet"]
    root: str | None = None  # raw data directory (IDX .gz files, CIFAR-100, tiny-imagenet-200)
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
                raise ValueError(
                    f"classes_per_task: {len(sizes)} entries but n_tasks is {self.n_tasks}"
                )
            if sum(sizes) > n_cls:
                raise ValueError(f"classes_per_task: {sum(sizes)} classes but {self.source} has {n_cls}")
            if isinstance(self.class_order, list):
                order = self.class_order
                if len(set(order)) != len(order) or any(c >= n_cls for c in order):
                    raise ValueError(f"class_order: must list distinct classes in 0..{n_cls - 1}")
                if len(order) < sum(sizes):
                    raise ValueError(f"class_order: lists {len(order)} classes, the tasks need {sum(sizes)}")
        if self.scenario == "permuted" and self.padding and self.source not in ("digits", "mnist", "fashion_mnist"):
            raise ValueError("padding: only for the grey-scale sources")
        return self

    def task_sizes(self) -> list[int]:
        if self.classes_per_task is None:
            return [N_CLASSES[self.source]] * self.n_tasks
        if isinstance(self.classes_per_task, int):
            return [self.classes_per_task] * self.n_tasks
        return list(self.classes_per_task)


class TargetConfig(_Strict):
    kind: Literal[TARGET_KINDS]  # the target networks (hypermask/nets.py)
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
    eval_batch_size: Positive | None = None  # None: whole split at once where batch norm uses batch statistics (reference), else 1024 rows
    keep_checkpoints: Literal["all", "last"] = "all"  # "last": delete a task's checkpoint once the next is written

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
    # "oneshot" (SupSup's one-shot task inference, one task per batch of oneshot_batch_size).
    settings: list[Literal[tuple(SETTINGS)]] = ["til"]  # hypermask/settings.py
    fecam: FeCAMConfig = FeCAMConfig()
    batch_size: Positive = 1000  # samples per batch when evaluating all masks at once
    oneshot_batch_size: Positive = 128  # the batch one task is inferred for (Wortsman et al. 2020: 128)


class _Experiment(_Strict):
    """ExperimentConfig without the methods' settings blocks (added from their records below)."""

    name: str  # BENCHMARK/METHOD
    benchmark: str = ""
    description: str = ""
    method: Literal[tuple(METHODS)] = "hypermask"  # hypermask/methods/: one file per method
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
        if not record.supports_target(self.target.kind):
            raise ValueError(f"method: {record.targets_why} (target.kind is {self.target.kind})")
        if self.target.kind != "mlp" and self.data.source in ("digits", "mnist", "fashion_mnist"):
            raise ValueError(f"target.kind: {self.target.kind} needs colour images, not {self.data.source}")
        if self.target.kind == "zenkenet" and self.data.source not in ("cifar100", "tinyimagenet"):
            raise ValueError("target.kind: zenkenet exists for cifar100 (32x32) and tinyimagenet (64x64)")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# One settings block per method that has settings, named after it, from its record
# (hypermask/methods/specs/NAME.py): `cfg.hypermask.beta`, `cfg.wsn.capacity`, ...
ExperimentConfig = create_model(
    "ExperimentConfig", __base__=_Experiment, __module__=__name__,
    **{r.block: (r.settings, Field(default_factory=r.settings)) for r in METHODS.values() if r.block})


def training_fingerprint(cfg: ExperimentConfig) -> str:
    """The settings a run's results depend on, as canonical JSON: not the seed list, the
    description, the reference figures or the logging interval. Checkpoints carry it (a
    checkpoint of other settings is never resumed) and the Snakemake rules declare it, so an
    edit of these settings, and only of these, makes the experiment's jobs stale."""
    d = cfg.as_dict()
    for k in ("seeds", "description", "reference"):
        d.pop(k, None)
    for block in METHOD_BLOCKS:  # another method's block changes nothing of this run
        if block != cfg.method:
            d.pop(block, None)
    d["train"].pop("log_every", None)
    if "oneshot" not in d["evaluation"]["settings"]:  # a setting this run does not evaluate
        d["evaluation"].pop("oneshot_batch_size", None)
    return json.dumps(d, sort_keys=True)


class PipelineConfig(_Strict):
    results: str = "results"  # runs/, sweeps/, tables/, figures/ go under it
    data_cache: str = "data/prepared"  # prepared sources (SOURCE.npz), read by training when present
    threads: Positive = 2  # CPU threads per training job
    gpus: NonNegative = 0  # GPUs per training job (scheduling resource; cluster profiles)
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite at the repository root
    # Benchmarks whose train and sweep jobs run with glibc keeping freed large blocks
    # (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_): where a CPU gradient exceeds glibc's 32 MiB
    # mmap limit, it is otherwise page-faulted in again on every step.
    keep_freed_memory: list[str] = []


class SearchDim(_Strict):
    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchDim:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical dimension needs a non-empty list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("low: give low < high")
        elif self.log and self.low <= 0:
            raise ValueError("low: must be > 0 on a log scale")
        return self


class SweepConfig(_Strict):
    """The study of one (benchmark, method): the shared settings of `sweeps` and the method's space."""

    n_trials: Positive  # the study's budget (complete + pruned trials), shared by all workers
    seed: Seed = 1  # the training seed of every trial
    use_best: bool = False  # train the final seeds with the best trial's values (else params.yaml's)
    enqueue_reference: bool = True  # the experiment's own values as the first trial
    sampler: dict[str, Any] = {"seed": 0, "n_startup_trials": 4}  # TPESampler arguments
    pruner: dict[str, Any] | None = None  # MedianPruner arguments; None: every trial runs to the end
    space: dict[str, SearchDim] = Field(min_length=1)  # dotted experiment keys, e.g. hypermask.beta


class SweepsConfig(_Strict):
    # None: sqlite:///RESULTS/sweeps/BENCHMARK/METHOD/study.db; "journal" for a journal file
    # there (NFS-safe, for clusters); or any database URL (postgresql://..., mysql://...).
    storage: str | None = None
    # A study's budget (complete + pruned trials): n_trials for every study where given, else the
    # same rule for every method, max(min_trials, trials_per_dimension x the dimensions of its space)
    n_trials: Positive | None = None
    trials_per_dimension: Positive = 8
    min_trials: Positive = 16
    # Snakemake: worker jobs per study (on SLURM, each its own job), sharing it through `storage`;
    # together they finish exactly n_trials. 1: the study's one job runs every trial.
    workers: Positive = 1
    # Database storages: each worker's trial beats every heartbeat_interval seconds; a RUNNING
    # trial whose last beat is older than grace_period (its worker was killed) is failed and
    # retried, resuming from that trial's last checkpoint. Journal files keep no heartbeat.
    heartbeat_interval: Positive = 30
    grace_period: Positive = 120
    seed: Seed = 1
    use_best: bool = False
    enqueue_reference: bool = True
    sampler: dict[str, Any] = {"seed": 0, "n_startup_trials": 4}
    # MedianPruner arguments (fed the running mean validation accuracy after each task); None: no
    # pruning, every trial is scored after its last task
    pruner: dict[str, Any] | None = None
    benchmarks: list[Name] = []  # every (benchmark, method with a space) pair has a study
    spaces: dict[str, dict[str, SearchDim]] = {}  # method -> its search space (validation accuracy)

    def study(self, benchmark: str, method: str) -> SweepConfig | None:
        if benchmark not in self.benchmarks or not self.spaces.get(method):
            return None
        space = self.spaces[method]
        budget = self.n_trials or max(self.min_trials, self.trials_per_dimension * len(space))
        return SweepConfig(n_trials=budget, seed=self.seed, use_best=self.use_best,
                           enqueue_reference=self.enqueue_reference, sampler=self.sampler, pruner=self.pruner,
                           space=space)


class MethodEntry(_Strict):
    description: str = ""
    settings: dict[str, Any] = {}  # experiment keys set on every benchmark (e.g. {wsn: {capacity: 50}})
    benchmarks: dict[Name, dict[str, Any]] = {}  # benchmark -> experiment keys set there


class SuiteConfig(_Strict):
    benchmarks: list[Name] = Field(min_length=1)
    methods: list[Name] = Field(min_length=1)
    # BENCHMARK/METHOD pairs left out. A method is also left out, unlisted, of a benchmark whose
    # target network its record does not support (hypermask/methods/specs/NAME.py, `targets`).
    exclude: list[str] = []


class ParamsFile(_Strict):
    defaults: dict[str, Any] = {}  # merged under every benchmark
    benchmarks: dict[Name, dict[str, Any]] = Field(min_length=1)
    methods: dict[Name, MethodEntry] = Field(min_length=1)
    suites: dict[Name, SuiteConfig] = {}
    suite: str | None = None  # the suite the pipeline builds by default
    sweeps: SweepsConfig = SweepsConfig()
    pipeline: PipelineConfig = PipelineConfig()

    def experiments(self) -> list[str]:
        """Every (benchmark, method) pair of some suite, as BENCHMARK/METHOD (all validated)."""
        return list(dict.fromkeys(e for s in self.suites for e in self.suite_experiments(s)))

    def suite_experiments(self, suite: str) -> list[str]:
        s = self.suites[suite]
        return [e for b in s.benchmarks for m in s.methods
                if (e := experiment_name(b, m)) not in s.exclude and self.runs_on(m, b)]

    def unsupported(self, suite: str) -> list[str]:
        """The suite's pairs left out because the method is not implemented for the benchmark's target."""
        s = self.suites[suite]
        return [experiment_name(b, m) for b in s.benchmarks for m in s.methods if not self.runs_on(m, b)]

    def runs_on(self, method: str, benchmark: str) -> bool:
        """Whether the method's record supports the benchmark's target network (its kind as declared)."""
        record = METHODS.get(method)
        target = _deep_merge(self.defaults, self.benchmarks.get(benchmark) or {}).get("target")
        kind = target.get("kind") if isinstance(target, dict) else None
        return record is None or kind not in TARGET_KINDS or record.supports_target(kind)


def experiment_name(benchmark: str, method: str) -> str:
    return f"{benchmark}/{method}"


def split_name(name: str) -> tuple[str, str]:
    """BENCHMARK/METHOD -> (benchmark, method); a bare BENCHMARK means HyperMask on it."""
    benchmark, _, method = name.partition("/")
    return benchmark, method or "hypermask"


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _format(err: ValidationError, prefix: str) -> str:
    lines = []
    for e in err.errors():
        if e["loc"] and e["loc"][-1] == "[key]" and e["type"] == "string_pattern_mismatch":  # a name
            where = ".".join(str(p) for p in e["loc"][:-2])
            lines.append(f"{prefix}.{where}: name {e['loc'][-2]!r} is not allowed: use letters, digits and _ "
                         "(it names folders under results/ and pipeline jobs)")
            continue
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        # model validators put the offending key first in their message: "key: why"
        if ": " in msg and e["type"] == "value_error":
            key, why = msg.split(": ", 1)
            loc = f"{loc}.{key}" if loc else key
            msg = why
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{prefix}{'.' + loc if loc else ''}: {msg}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last),
    and reads `1e-3` as the float it is in YAML 1.2 and JSON (PyYAML's YAML 1.1 rules need
    `1.0e-3` and would hand the strict schema a string)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicated key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


# YAML 1.2's float (and PyYAML's own forms): 1e-3, -2.5E+4, .5, 1., .inf, .nan
_UniqueKeyLoader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                            for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(path: str | Path) -> Any:
    """A YAML file as Python data; unreadable files, bad YAML and duplicated keys raise
    ConfigError naming the file (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def _check_optuna_arguments(sweeps: SweepsConfig, path: str) -> None:
    """sweeps.sampler (TPESampler's) and sweeps.pruner (MedianPruner's) arguments, checked by
    building them, so that a wrong name or value stops `check`, not the sweep; Optuna is
    imported only when they differ from the defaults."""
    default = SweepsConfig.model_fields["sampler"].default
    if sweeps.sampler == default and sweeps.pruner is None:
        return
    import inspect
    import warnings

    import optuna

    for key, cls, args in (("sampler", optuna.samplers.TPESampler, sweeps.sampler),
                           ("pruner", optuna.pruners.MedianPruner, sweeps.pruner or {})):
        signature = inspect.signature(cls).parameters
        hints = _annotations(cls)
        for k, v in args.items():
            if k not in signature:
                raise ConfigError(f"{path}.sweeps.{key}.{k}: not an argument of optuna's {cls.__name__} "
                                  f"(it takes {', '.join(sorted(signature))})")
            try:  # Optuna checks few values itself: its annotation decides (strictly, as params.yaml)
                from pydantic import TypeAdapter

                adapter = TypeAdapter(hints[k])
            except Exception:  # none, or one pydantic cannot check (a callable): Optuna's own check below
                adapter = None
            if adapter is not None:
                try:
                    adapter.validate_python(v, strict=True)
                except ValidationError:
                    raise ConfigError(f"{path}.sweeps.{key}.{k}: {v!r} is not what optuna's {cls.__name__} takes "
                                      f"({hints[k]})") from None
            if k.startswith("n_") and isinstance(v, int) and v < (1 if k == "n_ei_candidates" else 0):
                raise ConfigError(f"{path}.sweeps.{key}.{k}: {v} is not a count (optuna's {cls.__name__})")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(**args)
        except Exception as e:  # Optuna's own check of a value (a negative count, a wrong type)
            raise ConfigError(f"{path}.sweeps.{key}: optuna's {cls.__name__} refuses {args} ({e})") from None


def _annotations(cls) -> dict[str, Any]:
    """The evaluable annotations of cls.__init__'s parameters (names only imported for type
    checking are left out)."""
    import collections.abc
    import inspect
    import sys
    import typing

    scope = {**vars(collections.abc), **vars(typing), **vars(sys.modules[cls.__module__])}
    out = {}
    for name, par in inspect.signature(cls).parameters.items():
        try:
            out[name] = eval(par.annotation, scope) if isinstance(par.annotation, str) else par.annotation
        except Exception:
            continue
    return {k: v for k, v in out.items() if v is not inspect.Parameter.empty}


def _check_storage(storage: str | None, path: str, root: Path) -> None:
    """An SQLite study storage must name a folder that exists (SQLAlchemy's own message for a
    missing one is a traceback about `unable to open database file`)."""
    if not storage or not storage.startswith("sqlite:///"):
        return
    file = storage.removeprefix("sqlite:///").split("?")[0]
    if file in ("", ":memory:"):
        raise ConfigError(f"{path}.sweeps.storage: {storage} holds no file; the workers of a study share it through one")
    folder = (root / file).parent if not file.startswith("/") else Path(file).parent
    if not folder.is_dir():
        raise ConfigError(f"{path}.sweeps.storage: the folder {folder} of {storage} does not exist; create it or "
                          "change the URL")


def refuse_passwords(raw: Any, prefix: str) -> None:
    """ConfigError naming the key of any URL in `raw` (params.yaml, Snakemake's --config) that
    carries a password (hypermask.credentials): such a file is committed, hashed and copied."""
    if isinstance(raw, dict):
        for k, v in raw.items():
            refuse_passwords(v, f"{prefix}.{k}")
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            refuse_passwords(v, f"{prefix}[{i}]")
    else:
        problem = embedded_password_problem(prefix, raw)
        if problem:
            raise ConfigError(problem)


def read_params(path: str | Path) -> ParamsFile:
    """params.yaml read once and validated whole: every experiment, suite and sweep."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (params.yaml holds every experiment)")
    return parse_params(load_yaml(path), path)


def parse_params(raw: Any, path: str | Path) -> ParamsFile:
    """The content of a params file (see read_params), validated; errors name `path`'s keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with an `experiments` key")
    refuse_passwords(raw, str(path))
    try:
        params = ParamsFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format(e, str(path))) from None
    for m in params.methods:
        if m not in METHODS:
            raise ConfigError(f"{path}.methods.{m}: unknown method (known: {', '.join(METHODS)})")
        for b in params.methods[m].benchmarks:
            if b not in params.benchmarks:
                raise ConfigError(f"{path}.methods.{m}.benchmarks.{b}: unknown benchmark {b!r}")
    for suite, s in params.suites.items():
        for key, names in (("benchmarks", s.benchmarks), ("methods", s.methods), ("exclude", s.exclude)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(f"{path}.suites.{suite}.{key}: {', '.join(twice)} listed twice")
        for b in s.benchmarks:
            if b not in params.benchmarks:
                raise ConfigError(f"{path}.suites.{suite}.benchmarks: unknown benchmark {b!r}")
        for m in s.methods:
            if m not in params.methods:
                raise ConfigError(f"{path}.suites.{suite}.methods: unknown method {m!r} (declare it under methods)")
        for e in s.exclude:
            b, _, m = e.partition("/")
            if b not in s.benchmarks or m not in s.methods:
                raise ConfigError(f"{path}.suites.{suite}.exclude: {e!r} is not a BENCHMARK/METHOD pair of the suite")
    for suite in params.suites:
        if not params.suite_experiments(suite):
            why = "exclude" if params.suites[suite].exclude else "methods"
            raise ConfigError(f"{path}.suites.{suite}.{why}: leaves no (benchmark, method) pair to run"
                              + (f" (not implemented for the benchmarks' targets: {', '.join(params.unsupported(suite))})"
                                 if params.unsupported(suite) else ""))
    for n in params.pipeline.keep_freed_memory:
        if n not in params.benchmarks:
            raise ConfigError(f"{path}.pipeline.keep_freed_memory: unknown benchmark {n!r}")
    if params.suite is not None and params.suite not in params.suites:
        raise ConfigError(f"{path}.suite: unknown suite {params.suite!r}")
    if params.sweeps.grace_period <= params.sweeps.heartbeat_interval:
        raise ConfigError(f"{path}.sweeps.grace_period: {params.sweeps.grace_period} s must exceed "
                          f"sweeps.heartbeat_interval ({params.sweeps.heartbeat_interval} s), or live trials are failed")
    for b in params.sweeps.benchmarks:
        if b not in params.benchmarks:
            raise ConfigError(f"{path}.sweeps.benchmarks: unknown benchmark {b!r}")
    for m, space in params.sweeps.spaces.items():
        if m not in params.methods:
            raise ConfigError(f"{path}.sweeps.spaces.{m}: unknown method {m!r}")
        own = METHODS[m].block
        for k in space:  # a key of another method's block: every trial would score the same
            if k.split(".")[0] in METHOD_BLOCKS and k.split(".")[0] != own:
                raise ConfigError(f"{path}.sweeps.spaces.{m}.{k}: {m} does not read {k.split('.')[0]}'s settings "
                                  f"(its own block is {own or 'none'}); every trial would score the same")
    _check_optuna_arguments(params.sweeps, str(path))
    _check_storage(params.sweeps.storage, str(path), Path(path).resolve().parent)
    for suite in params.suites:  # one bad pair is found before any run
        for name in params.suite_experiments(suite):
            experiment_config(params, name, path)
    for b in params.sweeps.benchmarks:
        for m, space in params.sweeps.spaces.items():
            probe = {k: (d.choices[0] if d.type == "categorical" else (int(d.low) if d.type == "int" else d.low))
                     for k, d in space.items()}
            experiment_config(params, experiment_name(b, m), path, overrides=probe, where=f"sweeps.spaces.{m}")
    return params


def apply_overrides(experiment: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`hypermask.beta: 0.01`) in a copy of an experiment's raw settings."""
    out = copy.deepcopy(experiment)
    for dotted, value in overrides.items():
        node = out
        keys = dotted.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: {k} is not a mapping")
        node[keys[-1]] = value
    return out


def experiment_config(
    params: ParamsFile, name: str, path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None,
    where: str | None = None,
) -> ExperimentConfig:
    """The settings of experiment BENCHMARK/METHOD: defaults <- benchmark <- method settings <-
    the method's overrides for this benchmark <- overrides (a sweep trial's values). Settings
    without the task id that the method cannot evaluate (entropy, FeCAM, one-shot) are left
    out; the tables show "n/a" there."""
    benchmark, method = split_name(name)
    if benchmark not in params.benchmarks:
        raise ConfigError(f"{path}: unknown benchmark {benchmark!r} (known: {', '.join(params.benchmarks)})")
    if method not in params.methods:
        raise ConfigError(f"{path}: unknown method {method!r} (declared under methods: {', '.join(params.methods)})")
    entry = params.methods[method]
    merged = _deep_merge(params.defaults, params.benchmarks[benchmark] or {})
    merged = _deep_merge(merged, entry.settings)
    merged = _deep_merge(merged, entry.benchmarks.get(benchmark, {}))
    if overrides:
        merged = apply_overrides(merged, overrides)
    merged["name"], merged["benchmark"], merged["method"] = experiment_name(benchmark, method), benchmark, method
    settings = (merged.get("evaluation") or {}).get("settings")
    if isinstance(settings, list) and method in METHODS:
        entry = METHODS[method]
        kept = [s for s in settings if s in SETTINGS and supported(s, entry)]
        merged["evaluation"] = {**merged["evaluation"], "settings": kept}
    try:
        return ExperimentConfig.model_validate(merged)
    except ValidationError as e:
        where = where or f"benchmarks.{benchmark} with methods.{method}"
        raise ConfigError(_format(e, f"{path}: {where}")) from None


def load_experiment(path: str | Path, name: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """One experiment of a params file (the whole file is validated)."""
    params = read_params(path)
    return experiment_config(params, name, path, overrides)


def read_overrides(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of dotted experiment keys to values (e.g. a sweep's best_params.yaml)."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{path}: overrides must be a mapping of dotted keys to values")
    return data
