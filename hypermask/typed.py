"""The strict settings model every block of params.yaml is checked with, and the field types the
blocks share. Torch-free and dependency-free inside the package: the configuration (config/)
and each method's record (methods/specs/) build on it.

Strict means: an unknown key is refused (a typo is never ignored), no value is coerced
(`seed: true`, `iterations: "100"` or `lr: "0.1"` are refused by key instead of being read as 1,
100 and 0.1; an integer is still a valid float), `inf` and `nan` are refused where written, and
a validated block is frozen.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


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
