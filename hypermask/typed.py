"""The strict settings model every block of params.yaml is checked with, and the field types the
blocks share. Torch-free and dependency-free inside the package: the configuration (config/)
and each method's record (methods/specs/) build on it.

Strict means: an unknown key is refused (a typo is never ignored), no value is coerced
(`seed: true`, `iterations: "100"` or `lr: "0.1"` are refused by key instead of being read as 1,
100 and 0.1; an integer is still a valid float), `inf` and `nan` are refused where written, and
a validated block is frozen.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ConfigError(ValueError):
    """A problem with params.yaml, an overrides file, an environment variable or what they point
    to; the message names the key, variable or path (the command exits 2)."""


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False, strict=True
    )


NAME_PATTERN = r"^[A-Za-z0-9_]+$"  # experiment and suite names: path components and Snakemake wildcards
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
# A seed every generator takes as it is (numpy's legacy seeding, Optuna's samplers: below 2**32;
# a task's seed, seed * 1_000_003 + t, then stays within torch's 64-bit range).
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _path(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty path; give a folder")
    if value != value.strip():
        raise ValueError(f"the path {value!r} has leading or trailing spaces (a typo?)")
    if "\0" in value:
        raise ValueError("a path cannot hold a NUL character")
    return value


def _output_folder(value: str) -> str:
    if os.path.normpath(value) in (".", os.sep):
        raise ValueError(
            f"{value!r} would put the outputs beside the code (or at the filesystem root); "
            "give them a folder of their own, such as `results`"
        )
    return value


# Every path setting: never empty (an empty path would put the pipeline's `RESULTS/runs/...` at
# the filesystem root, `/runs/...`), never padded with spaces. A relative pipeline folder is read
# from the folder of params.yaml (the repository), whatever the working directory
# (resolve_setting_path); a relative data.root, as before, from the working directory.
PathSetting = Annotated[str, AfterValidator(_path)]
# A folder the commands write into (results, the prepared-data cache): also never `.` or `/`.
OutputFolder = Annotated[str, AfterValidator(_path), AfterValidator(_output_folder)]


def resolve_setting_path(value: str, base: str | os.PathLike[str]) -> str:
    """A path setting as the commands use it: absolute as written, else under `base` (the folder
    of params.yaml)."""
    return value if os.path.isabs(value) else os.path.join(base, value)
