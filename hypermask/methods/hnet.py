"""HNET: J. von Oswald, C. Henning, B. F. Grewe, J. Sacramento, "Continual learning with
hypernetworks", ICLR 2020 (`hnet`), and its unchunked ablation on HyperMask's hypernetwork
(`hnet_full`).

1. A task-conditioned hypernetwork H(e_t; Phi) generates **every** weight and bias of the
   target network (batch norm's scale and shift excepted: shared and trained, as in
   HyperMask); the target has no weights of its own.
   - `hnet`, as the authors built it (github.com/chrhenning/hypercl, `ChunkedHyperNetworkHandler`
     in toy_example/hyper_model.py and its use in mnist/train_splitMNIST.py): the hypernetwork
     takes [e_t; c_i] for every chunk embedding c_i (shared by all tasks, trained) and outputs one
     chunk of `chunk_size` values; the chunks, concatenated and cut to the target's parameter
     count, are the target's weights (`ChunkedHyperNetwork`). Its size is then of the order of
     the target's. Only the current task's embedding is trained (hypercl keeps earlier ones
     fixed): the other rows of the embedding matrix get no gradient.
   - `hnet_full`: HyperMask's own hypernetwork (hypermask.methods.shared.hypernetwork.HyperNetwork: ELU
     MLP, one fused output layer for every target entry, 20-30x the target's parameters) with
     the mask replaced by the generated weights: the ablation "masks vs. generated weights",
     trained as HyperMask is (every embedding in the optimiser).
2. Loss while learning task t > 0: CE + beta * (1/t) * sum_{j<t} ||H(e_j) - H*_j||^2, H*_j the
   outputs for task j recorded at the start of task t (no gradient), divided by the number of
   earlier tasks once, as the authors' implementation does (hypercl, `calc_fix_target_reg`).
3. A fresh Adam per task over the hypernetwork (the protocol every method here faces).

4. `hnet` initialises its hypernetwork as hypercl does (mnist/train_utils.py,
   `generate_classifier`, at commit e325678): every weight matrix Xavier-uniform (bound
   sqrt(6 / (fan_in + fan_out))), every bias zero, task and chunk embeddings N(0, 1)
   (`--std_normal_temb` and `--std_normal_emb`, both 1 by default).
5. `hnet.look_ahead` (on by default, as in hypercl, whose `--no_lookahead` turns it off): for
   t > 0 the regulariser is evaluated at Phi + dPhi, dPhi the step Adam would take on the task
   loss alone, detached (hypercl utils/optim_step.py `adam_step`, called between the task
   loss's backward and the optimiser's step): m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
   dPhi = -lr sqrt(1 - b2^(s+1)) / (1 - b1^(s+1)) m' / (sqrt(v') + eps), g the task loss's
   gradient and m, v, s this task's Adam state (read from the optimiser, never changed).
   Like hypercl, dPhi covers the hypernetwork's weights and the chunk embeddings, not the task
   embeddings. The task loss's gradient is computed once (torch.autograd.grad); the loss the
   loop differentiates is then beta * R(Phi + dPhi) plus a linear term whose gradient is that
   gradient, so each step has the gradient hypercl accumulates (task loss, then regulariser)
   without a second backward pass through the task loss. With the look-ahead on, the step
   reads the optimiser's state and is not captured in a CUDA graph.

Not implemented (hypercl options off by default there, and off in the mnist experiments):
`--backprop_dt` (a gradient through dPhi), `--use_sgd_change` (an SGD step for dPhi), Fisher
weighting, regularising a random subset of earlier tasks, and the output-head masking of the
regulariser (`inds_of_out_heads`). `hnet_full` keeps PyTorch's default initialisation and no
look-ahead: it is HyperMask's hypernetwork, not the authors'.
Stores Phi, the chunk embeddings and T task embeddings (the target's own weight tensors are
unused and not counted).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.functional import stacked_forward
from hypermask.methods.shared.hypernetwork import HyperNetwork, hnet_regularizer

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


class ChunkedHyperNetwork(nn.Module):
    """[task embedding; chunk embedding] -> MLP -> one chunk of `chunk_size` target weights,
    for every chunk embedding at once; the chunks concatenated and cut to `total`."""

    def __init__(
        self,
        total: int,
        n_tasks: int,
        emb_dim: int,
        chunk_emb_dim: int,
        chunk_size: int,
        hidden: list[int],
        activation: str = "elu",
    ):
        super().__init__()
        self.total, self.chunk_size = total, chunk_size
        self.n_chunks = math.ceil(total / chunk_size)
        self.embeddings = nn.Parameter(torch.randn(n_tasks, emb_dim))
        self.chunk_embeddings = nn.Parameter(torch.randn(self.n_chunks, chunk_emb_dim))
        sizes = [emb_dim + chunk_emb_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], chunk_size)
        self.act = F.elu if activation == "elu" else F.relu
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """hypercl's initialisation (mnist/train_utils.py, generate_classifier): weight matrices
        Xavier-uniform, biases zero, task and chunk embeddings N(0, 1)."""
        for layer in [*self.hidden, self.out]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.embeddings, 0.0, 1.0)
        nn.init.normal_(self.chunk_embeddings, 0.0, 1.0)

    @staticmethod
    def n_parameters(
        total: int, n_tasks: int, emb_dim: int, chunk_emb_dim: int, chunk_size: int, hidden: list[int]
    ) -> int:
        """Its parameter count for these sizes (the formula the tests check the module against)."""
        sizes = [emb_dim + chunk_emb_dim, *hidden, chunk_size]
        layers = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        return layers + n_tasks * emb_dim + math.ceil(total / chunk_size) * chunk_emb_dim

    def forward(self, tasks: Tensor | slice) -> Tensor:
        """Flat generated weights for the given tasks, shape (len(tasks), total)."""
        e = self.embeddings[tasks]
        k, c = e.shape[0], self.n_chunks
        h = torch.cat(
            [e.unsqueeze(1).expand(k, c, -1), self.chunk_embeddings.unsqueeze(0).expand(k, c, -1)], -1
        )
        for layer in self.hidden:
            h = self.act(layer(h))
        return self.out(h).reshape(k, c * self.chunk_size)[:, : self.total]

    def current_and_earlier(self, t: int) -> tuple[Tensor, Tensor]:
        """H(e_t), shape (total,), and H(e_j) for j < t, (t, total), from one call."""
        earlier, current = self(slice(0, t + 1)).split((t, 1))
        return current.squeeze(0), earlier


class HNETFull(MethodBase):
    """hnet_full behind the method contract (hypermask.methods.Method); HNET (below) differs
    only in its hypernetwork and in training the current task's embedding alone."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.shapes = target.masked_shapes()
        self.sizes = [s.numel() for s in self.shapes]
        self.hp = self.settings(cfg)
        self.hnet = self.build_hypernetwork(cfg)
        params = dict(target.named_parameters())
        for n in target.masked_names:  # generated, never trained
            params[n].requires_grad_(False)
        self.transient = tuple(f"target.{n}" for n in target.masked_names)
        self.h_star: Tensor | None = None

    def settings(self, cfg: ExperimentConfig):
        return cfg.hnet_full

    def build_hypernetwork(self, cfg: ExperimentConfig) -> HyperNetwork | ChunkedHyperNetwork:
        return HyperNetwork(self.shapes, cfg.data.n_tasks, self.hp.embedding_dim, list(self.hp.hnet_hidden))

    def generated(self, h: Tensor) -> dict[str, Tensor]:
        """Flat hypernetwork outputs (..., total) -> the target's tensors (with h's leading dims)."""
        lead = h.shape[:-1]
        return {
            n: c.view(*lead, *s)
            for n, c, s in zip(self.target.masked_names, h.split(self.sizes, -1), self.shapes)
        }

    def forward_with(
        self, weights: dict[str, Tensor], x: Tensor, t: int | None, features: bool = False
    ) -> Tensor:
        return functional_call(self.target, weights, (x,), {"task": t, "features": features})

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """H*_j = H(e_j) for j < t, fixed during task t."""
        self.h_star = self.hnet(slice(0, t)).detach().clone() if t > 0 else None

    def regularizer(self, h_earlier: Tensor) -> Tensor:
        """(1/t) sum_{j<t} ||H(e_j) - H*_j||^2."""
        assert self.h_star is not None  # start_task's, for t > 0
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


class HNET(HNETFull):
    """HNET with hypercl's chunked hypernetwork behind the method contract."""

    current_row: Tensor  # buffer: 1 at the current task's row (the embeddings' gradient mask)

    def settings(self, cfg: ExperimentConfig):
        return cfg.hnet

    def build_hypernetwork(self, cfg: ExperimentConfig) -> HyperNetwork | ChunkedHyperNetwork:
        hp = self.hp
        hnet = ChunkedHyperNetwork(
            sum(self.sizes),
            cfg.data.n_tasks,
            hp.embedding_dim,
            hp.chunk_embedding_dim,
            hp.chunk_size,
            list(hp.hnet_hidden),
            hp.activation,
        )
        # only the current task's embedding is trained (rebuilt at each task's start; not in checkpoints)
        self.register_buffer("current_row", torch.zeros(cfg.data.n_tasks, 1), persistent=False)
        hnet.embeddings.register_hook(lambda g: g * self.current_row)
        return hnet

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        super().start_task(t, n_iterations)
        self.current_row.zero_()[t] = 1.0

    def make_optimizer(self, lr: float):
        self.opt = super().make_optimizer(lr)  # the look-ahead reads its state
        return self.opt

    def graph_key(self, t: int, iteration: int):
        return None if self.hp.look_ahead and t > 0 else t

    def theta(self) -> dict[str, Tensor]:
        """The parameters dPhi covers: the hypernetwork's weights and chunk embeddings (hypercl's
        `theta`), not the task embeddings."""
        return {n: p for n, p in self.hnet.named_parameters() if n != "embeddings"}

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        if not (self.hp.look_ahead and t > 0 and self.hp.beta > 0):
            return super().loss(x, y, t, iteration)
        ce = F.cross_entropy(self.forward_with(self.generated(self.hnet(slice(t, t + 1))[0]), x, t), y)
        trained = [p for p in self.parameters() if p.requires_grad]
        grads: tuple[Tensor | None, ...] = torch.autograd.grad(ce, trained, allow_unused=True)  # unused: None
        g = {id(p): gr for p, gr in zip(trained, grads)}
        theta = self.theta()
        delta = adam_candidate(self.opt, list(theta.values()), [g[id(p)] for p in theta.values()])
        moved = {n: p + d for (n, p), d in zip(theta.items(), delta)}
        earlier = functional_call(self.hnet, moved, (slice(0, t),))
        linear = sum((gr * p).sum() for p, gr in zip(trained, grads) if gr is not None)
        assert isinstance(linear, Tensor)  # the task loss reaches some trained parameter
        task_term = linear - linear.detach() + ce.detach()  # value: the task loss; gradient: its gradient
        return task_term + self.hp.beta * self.regularizer(earlier), ce.detach()


@torch.no_grad()
def adam_candidate(opt, params: list[Tensor], grads: list[Tensor | None]) -> list[Tensor]:
    """The step Adam would take now for each parameter given its gradient, without changing the
    optimiser (hypercl utils/optim_step.py `adam_step`): m' = b1 m + (1 - b1) g,
    v' = b2 v + (1 - b2) g^2, -lr sqrt(1 - b2^s) / (1 - b1^s) m' / (sqrt(v') + eps), s the step
    count after this step. `opt` is what hypermask.optim.adam returns (FusedAdam, or
    torch.optim.Adam whose state is created at its first step); a missing gradient is zero."""
    out = []
    for p, g in zip(params, grads):
        g = torch.zeros_like(p) if g is None else g
        if hasattr(opt, "exp_avg"):  # hypermask.optim.FusedAdam
            i = next(k for k, q in enumerate(opt.params) if q is p)
            m, v, s = opt.exp_avg[i], opt.exp_avg_sq[i], float(opt.steps[i])
            lr, (b1, b2), eps = opt.lr, (opt.beta1, opt.beta2), opt.eps
        else:  # torch.optim.Adam
            group = next(gr for gr in opt.param_groups if any(q is p for q in gr["params"]))
            st = opt.state.get(p, {})
            m = st.get("exp_avg", torch.zeros_like(p))
            v = st.get("exp_avg_sq", torch.zeros_like(p))
            s = float(st.get("step", 0))
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        s += 1
        m = m * b1 + (1 - b1) * g
        v = v * b2 + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2**s) / (1 - b1**s)
        out.append(-step * m / (v.sqrt() + eps))
    return out
