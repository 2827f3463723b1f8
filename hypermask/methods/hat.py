"""HAT: J. Serra, D. Suris, M. Miron, A. Karatzoglou, "Overcoming Catastrophic Forgetting with
Hard Attention to the Task", ICML 2018; where the paper is silent, the authors' code
(github.com/joansj/hat, src/approaches/hat.py and src/networks/mlp_hat.py).

1. A learned embedding e_t^l per task and hidden layer (N(0,1), as the official nn.Embedding);
   unit gates a_t^l = sigmoid(s e_t^l) multiply the layer's outputs after the ReLU (mlp_hat).
   The input and the output heads are not gated; one output head per task.
2. s is annealed within each epoch, s = 1/s_max + (s_max - 1/s_max) * i / N for the batch that
   starts at sample i of the N training samples (the official `train_epoch`); at test time
   s = s_max. The budgets here are iterations: an "epoch" is ceil(N / batch size) iterations,
   and iteration k is batch k mod that count of its epoch (`anneal`).
3. Loss: CE + c * sum_l sum(a_t^l (1 - a_<t^l)) / sum_l sum(1 - a_<t^l) (t = 0: c * sum a / count),
   a_<t the cumulative gates max(a_<t-1, a_{t-1}) at s_max, recorded after each task (`criterion`).
4. The step (`before_step`, the step, `after_step`, in the official order): every weight's gradient times
   1 - min(a_<t of its output unit, a_<t of its input unit) (the first layer: its output unit
   only; a bias: its unit), so units earlier tasks use are frozen; each embedding's gradient
   times s_max / s * (cosh(clamp(s e, -50, 50)) + 1) / (cosh(e) + 1) (the annealing
   compensation); the gradient norm clipped at `hat.clip_grad` (10,000); the optimiser's step;
   the embeddings clamped to [-6, 6].
5. Optimiser: plain SGD at `hat.lr` (the authors': 0.05), not the Adam of the other methods:
   Adam divides each coordinate by its own running scale, which undoes the gradient scaling of
   step 4 (a gradient times 0.01 moves as far as the unscaled one). The official plateau
   schedule of the learning rate is not applied (iteration budgets), nor its model selection
   (src/approaches/hat.py restores the epoch-end model of lowest validation loss before
   recording a task's gates; the protocol keeps every method's last model), nor its MLP's
   dropout (0.2 on the input, 0.5 after each hidden ReLU, src/networks/mlp_hat.py; the
   project's targets have none). bench/verify/verify_hat.py runs the official code with the
   same choices beside this one; with its model selection left in, Permuted Fashion-MNIST
   differed by 1.4 points.

MLP targets only (config.py; the paper's AlexNet form is not implemented). Stores the target,
the embeddings and the cumulative gates.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hypermask.methods.shared.base import MethodBase, PlainSGD
from hypermask.nets import MLP

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet

THRES_COSH, THRES_EMB = 50.0, 6.0  # the official code's constants


def anneal(iteration: int, per_epoch: int, n_samples: int, batch_size: int, s_max: float) -> float:
    """s for this iteration: batch (iteration mod per_epoch) of its epoch starts at sample
    b * batch_size of n_samples (the module's docstring, step 2)."""
    b = iteration % per_epoch
    return 1 / s_max + (s_max - 1 / s_max) * (b * batch_size) / n_samples


class HAT(MethodBase):
    """HAT behind the method contract (hypermask.methods.Method)."""

    cumulative: Tensor  # buffer: a_<t, all layers side by side

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = cfg.hat
        assert isinstance(target, MLP), "HAT is implemented for MLP targets (its record's targets)"
        self.hidden = target.linears()[:-1]  # the gated layers
        self.units = [layer.weight.shape[0] for layer in self.hidden]
        self.embeddings = nn.Parameter(torch.randn(cfg.data.n_tasks, sum(self.units)))
        self.register_buffer("cumulative", torch.zeros(sum(self.units)))  # a_<t, all layers side by side
        self.batch_size = cfg.train.batch_size
        self.s = self.hp.s_max
        self.per_epoch, self.n_samples = 1, 1

    def attach(self, tasks) -> None:
        self.train_sizes = [len(t.train.y) for t in tasks]

    def start_task(self, t: int, n_iterations: int) -> None:
        self.n_samples = self.train_sizes[t]
        self.per_epoch = math.ceil(self.n_samples / self.batch_size)

    def gates(self, t: int, s: float) -> list[Tensor]:
        """a_t^l = sigmoid(s e_t^l), one tensor per hidden layer."""
        return list(torch.sigmoid(s * self.embeddings[t]).split(self.units))

    def forward_gated(
        self, x: Tensor, t: int, s: float, features: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        gates = self.gates(t, s)
        h = x.flatten(1)
        for layer, a in zip(self.hidden, gates):
            h = F.relu(layer(h)) * a
        if features:
            return h, gates
        net = self.target
        out = net.head()(h)
        return out.view(len(h), net.n_heads, -1)[:, t], gates

    def attention_regularizer(self, gates: list[Tensor], t: int) -> Tensor:
        """sum a_t (1 - a_<t) / sum (1 - a_<t) over every gated unit (t = 0: mean of a_t)."""
        a = torch.cat(gates)
        if t == 0:
            return a.sum() / a.numel()
        free = 1 - self.cumulative
        return (a * free).sum() / free.sum()

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        self.s = anneal(iteration, self.per_epoch, self.n_samples, self.batch_size, self.hp.s_max)
        out, gates = self.forward_gated(x, t, self.s)
        ce = F.cross_entropy(out, y)
        return ce + self.hp.c * self.attention_regularizer(gates, t), ce

    def weight_factors(self) -> list[tuple[Tensor, Tensor]]:
        """(weight factor, bias factor) of each gated layer: 1 - min(a_<t out, a_<t in), 1 - a_<t out."""
        cum = self.cumulative.split(self.units)
        out = []
        for i, post in enumerate(cum):
            if i == 0:
                w = (1 - post).unsqueeze(1).expand_as(self.hidden[0].weight)
            else:
                w = 1 - torch.minimum(post.unsqueeze(1), cum[i - 1].unsqueeze(0))
            out.append((w, 1 - post))
        return out

    @torch.no_grad()
    def restrict_gradients(self) -> None:
        if not self.cumulative.any():
            return
        for layer, (fw, fb) in zip(self.hidden, self.weight_factors()):
            dw, db = layer.weight.grad, layer.bias.grad
            if dw is not None:
                assert db is not None  # a layer's weight and bias are trained together
                dw.mul_(fw)
                db.mul_(fb)

    @torch.no_grad()
    def compensate_embeddings(self) -> None:
        g = self.embeddings.grad
        if g is None:
            return
        e, s = self.embeddings, self.s
        num = torch.cosh(torch.clamp(s * e, -THRES_COSH, THRES_COSH)) + 1
        den = torch.cosh(e) + 1
        g.mul_(self.hp.s_max / s * num / den)

    @torch.no_grad()
    def before_step(self) -> None:
        """Step 4 before the optimiser's step: gradient restriction, compensation, clipping."""
        self.restrict_gradients()
        self.compensate_embeddings()
        nn.utils.clip_grad_norm_([p for p in self.parameters() if p.grad is not None], self.hp.clip_grad)

    @torch.no_grad()
    def after_step(self) -> None:
        self.embeddings.clamp_(-THRES_EMB, THRES_EMB)

    def make_optimizer(self, lr: float):
        """Plain SGD at hat.lr, with step 4 around it (the module's docstring)."""
        return PlainSGD(self, self.hp.lr, before=self.before_step, after=self.after_step)

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """a_<=t = max(a_<t, a_t at s_max)."""
        self.cumulative.copy_(
            torch.maximum(self.cumulative, torch.sigmoid(self.hp.s_max * self.embeddings[t]))
        )

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.forward_gated(x, t, self.hp.s_max, features)[0]
