"""hnet_full's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class HNETFullConfig(Strict):
    """hnet_full (hypermask/methods/hnet.py): HyperMask's unchunked hypernetwork generates every
    target weight (the ablation "masks vs. generated weights")."""

    hnet_hidden: list[Positive] = [25, 25]
    embedding_dim: Positive = 24
    beta: Annotated[float, Field(ge=0)] = 1e-2  # beta * (1/t) * sum_j ||H(e_j) - H*_j||^2


RECORD = MethodRecord(
    name="hnet_full",
    implementation="hnet:HNETFull",
    family="hypernetwork",
    head="every weight generated per task by HyperMask's unchunked hypernetwork",
    paper="HNET's loss (von Oswald et al., ICLR 2020) on HyperMask's unchunked hypernetwork: the ablation masks vs. generated weights",
    settings=HNETFullConfig,
    model_per_task=True,
)
