"""params.yaml -> a validated, typed experiment configuration: the public names.

- config/files.py: reading YAML (duplicated keys refused, YAML 1.2 floats), ConfigError;
- config/experiment.py: one experiment's settings, typed, and its training fingerprint;
- config/params.py: params.yaml as a whole (benchmarks, methods, suites, sweeps, pipeline),
  validated at once, and one experiment's settings merged from it;
- config/credentials.py: no password in any URL the project reads.
"""

from __future__ import annotations

from hypermask.config.experiment import (
    N_CLASSES,
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    FeCAMConfig,
    TargetConfig,
    TrainConfig,
    training_fingerprint,
)
from hypermask.config.files import ConfigError, load_yaml, read_overrides
from hypermask.config.params import (
    MethodEntry,
    ParamsFile,
    PipelineConfig,
    SearchDim,
    SuiteConfig,
    SweepConfig,
    SweepsConfig,
    apply_overrides,
    experiment_config,
    experiment_name,
    load_experiment,
    parse_params,
    read_params,
    refuse_passwords,
    split_name,
)
from hypermask.methods import METHOD_BLOCKS
from hypermask.typed import MAX_SEED, NAME_PATTERN

__all__ = [
    "ConfigError",
    "load_yaml",
    "read_overrides",
    "N_CLASSES",
    "DataConfig",
    "TargetConfig",
    "TrainConfig",
    "FeCAMConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "training_fingerprint",
    "PipelineConfig",
    "SearchDim",
    "SweepConfig",
    "SweepsConfig",
    "MethodEntry",
    "SuiteConfig",
    "ParamsFile",
    "experiment_name",
    "split_name",
    "refuse_passwords",
    "read_params",
    "parse_params",
    "apply_overrides",
    "experiment_config",
    "load_experiment",
    "METHOD_BLOCKS",
    "MAX_SEED",
    "NAME_PATTERN",
]
