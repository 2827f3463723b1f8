"""hnet's record: its implementation, settings block, capabilities and family (hypermask/methods/record.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hypermask.methods.record import MethodRecord
from hypermask.typed import Positive, Strict


class HNETConfig(Strict):
    """HNET as its authors built it (hypermask/methods/hnet.py): a chunked hypernetwork takes
    [task embedding; chunk embedding] and outputs one chunk of `chunk_size` target weights."""

    hnet_hidden: list[Positive] = [100, 75, 50]
    embedding_dim: Positive = 64  # task embedding
    chunk_embedding_dim: Positive = 12
    chunk_size: Positive = 2000
    activation: Literal["elu", "relu"] = "elu"
    beta: Annotated[float, Field(ge=0)] = 0.05  # beta * (1/t) * sum_j ||H(e_j) - H*_j||^2
    # the regulariser at Phi + dPhi, dPhi Adam's candidate step on the task loss (hypercl's default)
    look_ahead: bool = True


RECORD = MethodRecord(
    name="hnet",
    implementation="hnet:HNET",
    family="hypernetwork",
    head="every weight, the output layer's included, generated per task by a chunked hypernetwork",
    paper='J. von Oswald, C. Henning, B. F. Grewe, J. Sacramento, "Continual learning with hypernetworks", ICLR 2020',
    code="github.com/chrhenning/hypercl",
    settings=HNETConfig,
    model_per_task=True,
)
