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
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from hypermask.config.credentials import embedded_password_problem
from hypermask.config.experiment import ExperimentConfig
from hypermask.config.files import ConfigError, format_errors, parse_yaml, read_settings_text
from hypermask.evaluation.settings import SETTINGS, supported
from hypermask.methods import METHOD_BLOCKS, METHODS
from hypermask.methods.record import TARGET_KINDS
from hypermask.typed import Name, NonNegative, OutputFolder, Positive, Seed, resolve_setting_path
from hypermask.typed import Strict as _Strict


class PipelineConfig(_Strict):
    # Folders relative to params.yaml's (typed.OutputFolder: never empty, `.` or `/`)
    results: OutputFolder = "results"  # runs/, sweeps/, tables/, figures/ go under it
    data_cache: OutputFolder = "data/prepared"  # prepared sources (SOURCE.npz), read by training when present
    threads: Positive = 2  # CPU threads per training job
    gpus: NonNegative = 0  # GPUs per training job (scheduling resource; cluster profiles)
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite at the repository root
    # Benchmarks whose train and sweep jobs run with glibc keeping freed large blocks
    # (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_): where a CPU gradient exceeds glibc's 32 MiB
    # mmap limit, it is otherwise page-faulted in again on every step.
    keep_freed_memory: list[str] = []
    # Benchmarks whose seeds the Snakemake pipeline trains in one process per (benchmark,
    # method), each seed keeping its own job, outputs and rerun (records/staging.py): for runs
    # of seconds, where loading torch and MLflow would otherwise take most of a job.
    seeds_in_one_job: list[str] = []


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
        elif self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            # Optuna's suggest_int takes integers: 1.5 to 1.9 holds none, and a trial would run outside it
            raise ValueError(f"low: an int dimension needs integer bounds (got {self.low} to {self.high})")
        return self

    def edges(self) -> list[Any]:
        """The values at the dimension's edges a trial can take: every choice of a categorical
        one, else low and high (`check` validates the experiment with each)."""
        if self.type == "categorical":
            assert self.choices  # _check
            return list(self.choices)
        assert self.low is not None and self.high is not None  # _check
        return [int(self.low), int(self.high)] if self.type == "int" else [self.low, self.high]


class SweepConfig(_Strict):
    """The study of one (benchmark, method): the shared settings of `sweeps` and the method's space."""

    n_trials: Positive  # the study's budget (complete + pruned trials), shared by all workers
    seed: Seed = 0  # the training seed of every trial (the tuning seed, not an evaluation seed)
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
    seed: Seed = 0  # the tuning seed: refused where it is an evaluation seed of a studied experiment
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
        return SweepConfig(
            n_trials=budget,
            seed=self.seed,
            use_best=self.use_best,
            enqueue_reference=self.enqueue_reference,
            sampler=self.sampler,
            pruner=self.pruner,
            space=space,
        )


class MethodEntry(_Strict):
    description: str = ""
    settings: dict[str, Any] = {}  # experiment keys set on every benchmark (e.g. {wsn: {capacity: 50}})
    benchmarks: dict[Name, dict[str, Any]] = {}  # benchmark -> experiment keys set there
    # A variant: a row of its own that runs another entry's method with that entry's settings
    # (its per-benchmark values included) and then this entry's settings on top, e.g.
    #   er_m1: {variant_of: er, settings: {er: {per_class: 1}}}
    # Its runs, fingerprint, tables row and MLflow `method` tag are its own name's.
    variant_of: Name | None = None


SHARED_BLOCKS = ("data", "target", "train")  # a benchmark's settings an axis may vary


class AxisConfig(_Strict):
    """One shared setting of the suite's benchmarks varied over values, e.g.
        width: {key: target.hidden, values: [[100, 100], [200, 200], [400, 400]]}
    Each value is a derived benchmark, BENCHMARK_AXISLABEL (fmnist_permuted_width200x200), with
    runs, fingerprints and table columns of its own; the value the benchmark already has is the
    benchmark itself. A method's setting (HyperMask's embedding size) is a variant, not an axis."""

    key: str
    values: list[Any] = Field(min_length=2)

    @field_validator("key")
    @classmethod
    def _shared(cls, key: str) -> str:
        if key.split(".")[0] not in SHARED_BLOCKS or "." not in key:
            raise ValueError(
                f"{key!r}: an axis varies a benchmark's shared setting, a dotted key under "
                f"{', '.join(SHARED_BLOCKS)} (target.hidden, data.n_tasks, train.iterations); a method's "
                "own setting is a variant (methods.NAME.variant_of)"
            )
        return key


class SuiteConfig(_Strict):
    benchmarks: list[Name] = Field(min_length=1)
    methods: list[Name] = Field(min_length=1)
    # BENCHMARK/METHOD pairs left out. A method is also left out, unlisted, of a benchmark whose
    # target network its record does not support (hypermask/methods/specs/NAME.py, `targets`).
    exclude: list[str] = []
    axes: dict[Name, AxisConfig] = {}  # each point of each axis a derived benchmark (AxisConfig)


@dataclass(frozen=True)
class AxisPoint:
    """A derived benchmark: `base` with `key` set to `value`, declared by suite `suite`'s axis `axis`."""

    suite: str
    axis: str
    base: str
    key: str
    value: Any
    name: str


def point_label(value: Any) -> str:
    """A value as a benchmark-name part: [200, 200] -> 200x200, 0.5 -> 0p5."""
    text = "x".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return re.sub(r"[^A-Za-z0-9]", "_", text.replace(".", "p").replace("-", "m"))


def _get(raw: dict[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


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

    @cached_property
    def axis_points(self) -> dict[str, AxisPoint]:
        """Every derived benchmark of the suites' axes, by name (a point whose value the base
        benchmark already has is the base itself, not in this map)."""
        out: dict[str, AxisPoint] = {}
        for suite, s in self.suites.items():
            for axis, series in self.axis_series(suite).items():
                for base, points in series.items():
                    for value, name in points:
                        if name != base:
                            out[name] = AxisPoint(suite, axis, base, s.axes[axis].key, value, name)
        return out

    def benchmark_names(self) -> list[str]:
        """The declared benchmarks and the suites' derived ones."""
        return [*self.benchmarks, *(n for n in self.axis_points if n not in self.benchmarks)]

    def base_benchmark(self, benchmark: str) -> str:
        """The declared benchmark a derived one varies (a declared one: itself)."""
        point = self.axis_points.get(benchmark)
        return point.base if point is not None else benchmark

    def benchmark_settings(self, benchmark: str) -> dict[str, Any]:
        """A benchmark's own settings block (a derived one: its base's, the axis's key set)."""
        point = self.axis_points.get(benchmark)
        if point is None:
            return self.benchmarks[benchmark] or {}
        return apply_overrides(self.benchmarks[point.base] or {}, {point.key: point.value})

    def axis_series(self, suite: str) -> dict[str, dict[str, list[tuple[Any, str]]]]:
        """axis -> base benchmark -> [(value, benchmark of that point)], in the axis' order."""
        s = self.suites[suite]
        out: dict[str, dict[str, list[tuple[Any, str]]]] = {}
        for axis, a in s.axes.items():
            for base in s.benchmarks:
                own = _get(_deep_merge(self.defaults, self.benchmarks.get(base) or {}), a.key)
                out.setdefault(axis, {})[base] = [
                    (v, base if v == own else f"{base}_{axis}{point_label(v)}") for v in a.values
                ]
        return out

    def suite_benchmarks(self, suite: str) -> list[str]:
        """The suite's benchmarks, then each axis' points (derived benchmarks) in order."""
        derived = [
            b for series in self.axis_series(suite).values() for pts in series.values() for _, b in pts
        ]
        return list(dict.fromkeys([*self.suites[suite].benchmarks, *derived]))

    def suite_experiments(self, suite: str) -> list[str]:
        s = self.suites[suite]
        return [
            e
            for b in self.suite_benchmarks(suite)
            for m in s.methods
            if (e := experiment_name(b, m)) not in s.exclude and self.runs_on(m, b)
        ]

    def unsupported(self, suite: str) -> list[str]:
        """The suite's pairs left out because the method is not implemented for the benchmark's target."""
        s = self.suites[suite]
        return [experiment_name(b, m) for b in s.benchmarks for m in s.methods if not self.runs_on(m, b)]

    def implementation(self, method: str) -> str:
        """The method record a params.yaml method runs: its own name's, or a variant's base's."""
        entry = self.methods.get(method)
        return entry.variant_of if entry is not None and entry.variant_of else method

    def runs_on(self, method: str, benchmark: str) -> bool:
        """Whether the method's record supports the benchmark's target network (its kind as declared)."""
        record = METHODS.get(self.implementation(method))
        known = benchmark in self.benchmarks or benchmark in self.axis_points
        target = _deep_merge(self.defaults, self.benchmark_settings(benchmark) if known else {}).get("target")
        kind = target.get("kind") if isinstance(target, dict) else None
        return record is None or kind not in TARGET_KINDS or record.supports_target(kind)


def experiment_name(benchmark: str, method: str) -> str:
    return f"{benchmark}/{method}"


def split_name(name: str) -> tuple[str, str]:
    """BENCHMARK/METHOD -> (benchmark, method); a bare BENCHMARK means HyperMask on it."""
    benchmark, _, method = name.partition("/")
    return benchmark, method or "hypermask"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


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

    for key, cls, args in (
        ("sampler", optuna.samplers.TPESampler, sweeps.sampler),
        ("pruner", optuna.pruners.MedianPruner, sweeps.pruner or {}),
    ):
        signature = inspect.signature(cls).parameters
        hints = _annotations(cls)
        for k, v in args.items():
            if k not in signature:
                raise ConfigError(
                    f"{path}.sweeps.{key}.{k}: not an argument of optuna's {cls.__name__} "
                    f"(it takes {', '.join(sorted(signature))})"
                )
            try:  # Optuna checks few values itself: its annotation decides (strictly, as params.yaml)
                from pydantic import TypeAdapter

                adapter = TypeAdapter(hints[k])
            except Exception:  # none, or one pydantic cannot check (a callable): Optuna's own check below
                adapter = None
            if adapter is not None:
                try:
                    adapter.validate_python(v, strict=True)
                except ValidationError:
                    raise ConfigError(
                        f"{path}.sweeps.{key}.{k}: {v!r} is not what optuna's {cls.__name__} takes "
                        f"({hints[k]})"
                    ) from None
            if k.startswith("n_") and isinstance(v, int) and v < (1 if k == "n_ei_candidates" else 0):
                raise ConfigError(f"{path}.sweeps.{key}.{k}: {v} is not a count (optuna's {cls.__name__})")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(**args)
        except Exception as e:  # Optuna's own check of a value (a negative count, a wrong type)
            raise ConfigError(f"{path}.sweeps.{key}: optuna's {cls.__name__} refuses {args} ({e})") from None


def _annotations(cls: type) -> dict[str, Any]:
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
        raise ConfigError(
            f"{path}.sweeps.storage: {storage} holds no file; the workers of a study share it through one"
        )
    folder = (root / file).parent if not file.startswith("/") else Path(file).parent
    if not folder.is_dir():
        raise ConfigError(
            f"{path}.sweeps.storage: the folder {folder} of {storage} does not exist; create it or "
            "change the URL"
        )


def refuse_passwords(raw: Any, prefix: str) -> None:
    """ConfigError naming the key of any URL in `raw` (params.yaml, Snakemake's --config) that
    carries a password (hypermask.config.credentials): such a file is committed, hashed and copied."""
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


_LAST_READ: dict[tuple[str, str], ParamsFile] = {}  # read_params's last file: (path, text) -> its validation


def read_params(path: str | Path) -> ParamsFile:
    """params.yaml read once and validated whole: every experiment, suite and sweep. The same
    path with the same text again in this process returns the same (frozen) validation: the
    `hypermask` command reads the file once before loading torch (cli/process.py) and once in
    main(), and validating it takes about 0.2 s."""
    path = Path(path)
    text = read_settings_text(path, "params.yaml holds every experiment")
    key = (str(path), text)
    if key not in _LAST_READ:
        params = parse_params(parse_yaml(text, path), path)
        _LAST_READ.clear()
        _LAST_READ[key] = params
    return _LAST_READ[key]


def parse_params(raw: Any, path: str | Path) -> ParamsFile:
    """The content of a params file (see read_params), validated; errors name `path`'s keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (with `benchmarks` and `methods` keys)")
    refuse_passwords(raw, str(path))
    try:
        params = ParamsFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_errors(e, str(path))) from None
    home = Path(path).resolve().parent
    for key in ("results", "data_cache"):
        where = Path(resolve_setting_path(getattr(params.pipeline, key), home)).resolve()
        if where == home:
            raise ConfigError(
                f"{path}: pipeline.{key}: {getattr(params.pipeline, key)!r} is the folder of params.yaml "
                "itself: outputs would mix with the code; give a folder of their own, such as `results`"
            )
    for m, entry in params.methods.items():
        base = entry.variant_of
        if base is not None:
            if m in METHODS:
                raise ConfigError(
                    f"{path}.methods.{m}.variant_of: {m} is a method of its own; name the variant otherwise"
                )
            if (
                base not in params.methods
                or params.methods[base].variant_of is not None
                or base not in METHODS
            ):
                raise ConfigError(
                    f"{path}.methods.{m}.variant_of: {base!r} is not a method declared under methods "
                    "(a variant's base is a method, not another variant)"
                )
        elif m not in METHODS:
            raise ConfigError(
                f"{path}.methods.{m}: unknown method (known: {', '.join(METHODS)}; a variant of one "
                "names it in variant_of)"
            )
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
                raise ConfigError(
                    f"{path}.suites.{suite}.methods: unknown method {m!r} (declare it under methods)"
                )
        for pair in s.exclude:
            b, _, m = pair.partition("/")
            if b not in s.benchmarks or m not in s.methods:
                raise ConfigError(
                    f"{path}.suites.{suite}.exclude: {pair!r} is not a BENCHMARK/METHOD pair of the suite"
                )
    for name, point in params.axis_points.items():
        if name in params.benchmarks:
            raise ConfigError(
                f"{path}.suites.{point.suite}.axes.{point.axis}: its point {point.value!r} of {point.base} is named "
                f"{name}, a benchmark declared under benchmarks; rename the axis"
            )
    for suite in params.suites:
        if not params.suite_experiments(suite):
            why = "exclude" if params.suites[suite].exclude else "methods"
            raise ConfigError(
                f"{path}.suites.{suite}.{why}: leaves no (benchmark, method) pair to run"
                + (
                    f" (not implemented for the benchmarks' targets: {', '.join(params.unsupported(suite))})"
                    if params.unsupported(suite)
                    else ""
                )
            )
    for key in ("keep_freed_memory", "seeds_in_one_job"):
        for n in getattr(params.pipeline, key):
            if n not in params.benchmarks:
                raise ConfigError(f"{path}.pipeline.{key}: unknown benchmark {n!r}")
    if params.suite is not None and params.suite not in params.suites:
        raise ConfigError(f"{path}.suite: unknown suite {params.suite!r}")
    if params.sweeps.grace_period <= params.sweeps.heartbeat_interval:
        raise ConfigError(
            f"{path}.sweeps.grace_period: {params.sweeps.grace_period} s must exceed "
            f"sweeps.heartbeat_interval ({params.sweeps.heartbeat_interval} s), or live trials are failed"
        )
    for b in params.sweeps.benchmarks:
        if b not in params.benchmarks:
            raise ConfigError(f"{path}.sweeps.benchmarks: unknown benchmark {b!r}")
    for m, space in params.sweeps.spaces.items():
        if m not in params.methods:
            raise ConfigError(f"{path}.sweeps.spaces.{m}: unknown method {m!r}")
        own = METHODS[params.implementation(m)].block
        for k in space:  # a key of another method's block: every trial would score the same
            if k.split(".")[0] in METHOD_BLOCKS and k.split(".")[0] != own:
                raise ConfigError(
                    f"{path}.sweeps.spaces.{m}.{k}: {m} does not read {k.split('.')[0]}'s settings "
                    f"(its own block is {own or 'none'}); every trial would score the same"
                )
    _check_optuna_arguments(params.sweeps, str(path))
    _check_storage(params.sweeps.storage, str(path), Path(path).resolve().parent)
    for suite in params.suites:  # one bad pair is found before any run
        for name in params.suite_experiments(suite):
            experiment_config(params, name, path)
    for b in params.sweeps.benchmarks:
        for m, space in params.sweeps.spaces.items():
            # the experiment itself (its final seeds; the study's first trial, enqueue_reference)
            reference = experiment_config(params, experiment_name(b, m), path).as_dict()
            for k, d in space.items() if params.sweeps.enqueue_reference else ():
                value: Any = reference
                for part in k.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if d.type == "categorical" and value not in (d.choices or []):
                    raise ConfigError(
                        f"{path}.sweeps.spaces.{m}.{k}: the experiment's own value {value!r} (the study's first "
                        f"trial: sweeps.enqueue_reference) is not one of the choices {d.choices}"
                    )
            # every value a trial can take at the edges (SearchDim.edges), the others at their
            # first; a choice of 150 for a percentage once passed `check` and failed that trial
            first = {k: d.edges()[0] for k, d in space.items()}
            cfg = experiment_config(
                params, experiment_name(b, m), path, overrides=first, where=f"sweeps.spaces.{m}"
            )
            for k, d in space.items():
                for value in d.edges()[1:] if d.type != "categorical" else d.edges():
                    experiment_config(
                        params,
                        experiment_name(b, m),
                        path,
                        overrides={**first, k: value},
                        where=f"sweeps.spaces.{m} (a trial with {k} = {value!r})",
                    )
            if (
                params.sweeps.seed in cfg.seeds
            ):  # a tuned value would be scored on an evaluation run's own stream
                raise ConfigError(
                    f"{path}.sweeps.seed: {params.sweeps.seed} is an evaluation seed of "
                    f"{experiment_name(b, m)} (seeds {list(cfg.seeds)}); studies tune on a seed of their own"
                )
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


def _refuse_other_blocks(
    params: ParamsFile,
    method: str,
    benchmark: str,
    implementation: str,
    path: str | Path,
    overrides: dict[str, Any] | None,
    where: str | None,
) -> None:
    """A run reads the shared settings and its own method's block only: another method's block
    in its method entry (settings, per-benchmark settings, a variant's base) or in its overrides
    (`--override`, a trial's values) would be accepted, recorded and never read, so it is refused
    by name (`wsn.capacity` on a HyperMask run)."""
    sources = []
    for name in dict.fromkeys([params.implementation(method), method]):
        e = params.methods[name]
        sources += [(f"{path}: methods.{name}.settings", e.settings)]
        own = params.base_benchmark(benchmark)
        sources += [(f"{path}: methods.{name}.benchmarks.{own}", e.benchmarks.get(own, {}))]
    if overrides:
        sources.append((where or "overrides", {k.split(".", 1)[0]: v for k, v in overrides.items()}))
    for place, block in sources:
        other = [k for k in block if k in METHOD_BLOCKS and k != implementation]
        if other:
            keys = (
                [k for k in (overrides or {}) if k.split(".", 1)[0] in other]
                if place == (where or "overrides")
                else other
            )
            raise ConfigError(
                f"{place}: {', '.join(keys)}: settings of method {other[0]!r}, which a {method} run does not "
                f"read (its own block is `{implementation}`; shared: data, target, train, evaluation)"
            )


def experiment_config(
    params: ParamsFile,
    name: str,
    path: str | Path = "params.yaml",
    overrides: dict[str, Any] | None = None,
    where: str | None = None,
) -> ExperimentConfig:
    """The settings of experiment BENCHMARK/METHOD: defaults <- benchmark <- method settings <-
    the method's overrides for this benchmark <- overrides (a sweep trial's values). Settings
    without the task id that the method cannot evaluate (entropy, FeCAM, one-shot) are left
    out; the tables show "n/a" there."""
    benchmark, method = split_name(name)
    if benchmark not in params.benchmarks and benchmark not in params.axis_points:
        raise ConfigError(
            f"{path}: unknown benchmark {benchmark!r} (known: {', '.join(params.benchmark_names())})"
        )
    if method not in params.methods:
        raise ConfigError(
            f"{path}: unknown method {method!r} (declared under methods: {', '.join(params.methods)})"
        )
    entry = params.methods[method]
    implementation = params.implementation(method)
    _refuse_other_blocks(params, method, benchmark, implementation, path, overrides, where)
    merged = _deep_merge(params.defaults, params.benchmark_settings(benchmark))
    own = params.base_benchmark(benchmark)  # a derived benchmark takes its base's method overrides
    for e in ([params.methods[implementation]] if entry.variant_of else []) + [
        entry
    ]:  # a variant: its base's first
        merged = _deep_merge(merged, e.settings)
        merged = _deep_merge(merged, e.benchmarks.get(own, {}))
    if overrides:
        merged = apply_overrides(merged, overrides)
    merged["name"], merged["benchmark"], merged["method"] = (
        experiment_name(benchmark, method),
        benchmark,
        implementation,
    )
    if entry.variant_of:
        merged["variant"] = method
    settings = (merged.get("evaluation") or {}).get("settings")
    if isinstance(settings, list) and implementation in METHODS:
        record = METHODS[implementation]
        kept = [s for s in settings if s in SETTINGS and supported(s, record)]
        merged["evaluation"] = {**merged["evaluation"], "settings": kept}
    try:
        return ExperimentConfig.model_validate(merged)
    except ValidationError as e:
        where = where or f"benchmarks.{benchmark} with methods.{method}"
        raise ConfigError(format_errors(e, f"{path}: {where}")) from None


def load_experiment(path: str | Path, name: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """One experiment of a params file (the whole file is validated)."""
    params = read_params(path)
    return experiment_config(params, name, path, overrides)
