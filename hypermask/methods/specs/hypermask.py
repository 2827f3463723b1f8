"""hypermask's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class HyperMaskConfig(Strict):
    hnet_hidden: list[Positive] = [100, 100]
    embedding_dim: Positive = 24
    beta: Annotated[float, Field(ge=0)] = 5e-4
    lambda_: Annotated[float, Field(ge=0, alias="lambda")] = 1e-3
    # A percentage of each tensor's mask zeroed; 100 would zero every weight (a network at chance).
    sparsity: Annotated[float, Field(ge=0, lt=100)] = 0.0
    adaptive_sparsity: bool = True
    masked_l1: bool = True
    # "reference": beta / t * (1/t) * sum_j ||H(e_j) - H*_j||^2 ; "single": beta * (1/t) * sum
    hnet_reg_normalisation: Literal["reference", "single"] = "reference"


RECORD = MethodRecord(
    name="hypermask",
    implementation="hypermask:HyperMask",
    family="hypernetwork",
    head="one shared output layer, its weights masked per task (bias unmasked)",
    paper='K. Książek and P. Spurek, "HyperMask: Adaptive Hypernetwork-based Masks for Continual Learning", arXiv 2310.00113',
    code="github.com/gmum/HyperMask",
    settings=HyperMaskConfig,
    model_per_task=True,
)
