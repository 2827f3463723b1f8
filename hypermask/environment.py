"""The environment variables the `hypermask` command reads, validated as params.yaml is: each a
typed field, an unreadable or out-of-range value refused by name (ConfigError, exit 2) before
any work, never read as a default or as a traceback.

- HYPERMASK_CPUS_BUSY: CPUs other processes kept busy when the command started (cli/process.py
  writes it for a restart and metrics.json records it; a user may set it to skip the look):
  a number from 0 to this machine's CPU count;
- HYPERMASK_CUDA_GRAPHS: 1 (default) replays a run's training step as a CUDA graph on a GPU,
  0 runs it eagerly (engine/graphs.py);
- HYPERMASK_TORCH_OPTIM: 1 trains with torch.optim's Adam and scheduler instead of the fused
  shortcut, 0 (default) does not (optim.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hypermask.typed import ConfigError

PREFIX = "HYPERMASK_"


class ProcessEnvironment(BaseModel):
    # Not typed.Strict: an environment holds strings only, so a number is read from its text
    # (pydantic's lax mode), with params.yaml's bounds and its refusal of inf and nan.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    cpus_busy: float | None = Field(None, ge=0, le=os.cpu_count() or 1, alias="HYPERMASK_CPUS_BUSY")
    cuda_graphs: Literal["0", "1"] = Field("1", alias="HYPERMASK_CUDA_GRAPHS")
    torch_optim: Literal["0", "1"] = Field("0", alias="HYPERMASK_TORCH_OPTIM")


KNOWN = {f.alias for f in ProcessEnvironment.model_fields.values() if f.alias}


def read_environment(environ: Mapping[str, str] | None = None) -> ProcessEnvironment:
    """The HYPERMASK_* variables of `environ` (os.environ by default), validated; ConfigError naming
    the variable and its value otherwise (an unknown HYPERMASK_ name is refused too: a typo of
    one of these would otherwise change nothing, silently)."""
    env = os.environ if environ is None else environ
    ours = {k: v for k, v in env.items() if k.startswith(PREFIX)}
    try:
        return ProcessEnvironment.model_validate(ours)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            why = "not a variable the command reads" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(
                f"environment variable {name}={ours.get(name)!r}: {why} "
                f"(known: {', '.join(sorted(KNOWN))}; unset it to take the default)"
            )
        raise ConfigError("\n".join(problems)) from None
