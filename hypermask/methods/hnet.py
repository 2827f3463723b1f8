"""HNET: J. von Oswald, C. Henning, B. F. Grewe, J. Sacramento, "Continual learning with
hypernetworks", ICLR 2020.

1. A task-conditioned hypernetwork H(e_t; Phi) generates **every** weight and bias of the
   target network (batch norm's scale and shift excepted: shared and trained, as in
   HyperMask); the target has no weights of its own. It is HyperMask's hypernetwork code
   (hypermask.methods.hypermask.HyperNetwork: ELU MLP, one fused linear output layer, N(0,1)
   embeddings, PyTorch's default initialisation), with the mask replaced by the generated
   weights themselves: the ablation "masks vs. generated weights".
2. Loss while learning task t > 0: CE + beta * (1/t) * sum_{j<t} ||H(e_j) - H*_j||^2, H*_j the
   outputs for task j recorded at the start of task t (no gradient), divided by the number of
   earlier tasks once, as the authors' implementation does (github.com/chrhenning/hypercl,
   `calc_fix_target_reg`).
3. A fresh Adam per task over Phi and all embeddings (the protocol every method here faces).

Not implemented: the paper's optional look-ahead (targets from the candidate update) and the
chunked hypernetwork; the hypernetwork here is the full (unchunked) one of HyperMask.
Stores Phi and T embeddings (the target's own weight tensors are unused and not counted).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from ..config import ExperimentConfig
from ..nets import TargetNet
from .base import MethodBase
from .hypermask import HyperNetwork, hnet_regularizer, stacked_forward


class HNET(MethodBase):
    """HNET behind the method contract (hypermask.methods.Method)."""

    supports_task_inference = True  # every task's weights are at hand: entropy inference, FeCAM

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = cfg.hnet
        self.shapes = target.masked_shapes()
        self.sizes = [s.numel() for s in self.shapes]
        self.hnet = HyperNetwork(self.shapes, cfg.data.n_tasks, self.hp.embedding_dim, list(self.hp.hnet_hidden))
        params = dict(target.named_parameters())
        for n in target.masked_names:  # generated, never trained
            params[n].requires_grad_(False)
        self.transient = tuple(f"target.{n}" for n in target.masked_names)
        self.h_star: Tensor | None = None

    def generated(self, h: Tensor) -> dict[str, Tensor]:
        """Flat hypernetwork outputs (..., total) -> the target's tensors (with h's leading dims)."""
        lead = h.shape[:-1]
        return {n: c.view(*lead, *s) for n, c, s in zip(self.target.masked_names, h.split(self.sizes, -1), self.shapes)}

    def forward_with(self, weights: dict[str, Tensor], x: Tensor, t: int | None, features: bool = False) -> Tensor:
        return functional_call(self.target, weights, (x,), {"task": t, "features": features})

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """H*_j = H(e_j) for j < t, fixed during task t."""
        self.h_star = self.hnet(slice(0, t)).detach().clone() if t > 0 else None

    def regularizer(self, h_earlier: Tensor) -> Tensor:
        """(1/t) sum_{j<t} ||H(e_j) - H*_j||^2."""
        return hnet_regularizer(h_earlier, self.h_star)

    def graph_key(self, t: int, iteration: int):
        return t  # the step does not depend on the iteration

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        current, earlier = self.hnet.current_and_earlier(t)
        ce = F.cross_entropy(self.forward_with(self.generated(current), x, t), y)
        if t == 0:
            return ce, ce
        return ce + self.hp.beta * self.regularizer(earlier), ce

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        h = self.hnet(torch.tensor(tasks, device=self.hnet.embeddings.device))
        return {t: self.generated(h[i]) for i, t in enumerate(tasks)}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.forward_with(ctx[t], x, t, features)

    def all_task_outputs(self, ctx: dict, tasks: list[int], x: Tensor, features: bool = False) -> Tensor:
        if self.target.per_task_bn:
            return torch.stack([self.logits(ctx, x, t, features) for t in tasks])
        stacked = {n: torch.stack([ctx[t][n] for t in tasks]) for n in self.target.masked_names}
        return stacked_forward(self.target, stacked, x, features)
