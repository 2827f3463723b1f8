"""GPM: G. Saha, I. Garg, K. Roy, "Gradient Projection Memory for Continual Learning", ICLR 2021;
where the paper is silent, the authors' code (github.com/sahagobinda/GPM, main_pmnist.py).

1. After task t, per linear layer l: the representation matrix R^l, the layer's inputs on
   `gpm.samples` random training samples of the task (300 in the authors' MLP script), one
   column per sample. Here every layer has a bias, which is a weight on a constant input 1:
   R^l gets a row of ones and the basis lives in the (inputs + 1)-dimensional space, so the
   bias is protected with its weights (the authors' MLP has no biases).
2. Task 0: the SVD R = U S V^T and the smallest k with sum_{i<=k} s_i^2 >= eps_l ||R||_F^2
   (`energy_basis`). Later tasks: R_hat = R - M M^T R (the part outside the stored basis M), its
   SVD, and the smallest k with ||M M^T R||^2 + sum_{i<=k} s_hat_i^2 >= eps_l ||R||^2; the k
   new left singular vectors are appended to M (the authors' `update_GPM`), at most the
   space's dimension. Both tasks take the smallest k that reaches the threshold, the paper's
   Eq. 5 and 9; the authors' code does so from the second task on, but on the first task keeps
   the vectors strictly below it (`np.sum(np.cumsum(ratio) < threshold)`, its "+1" commented
   out), one fewer. eps_l:
   `gpm.threshold_first` for the first layer and `gpm.threshold` for every other one (the
   authors' Permuted MNIST values 0.95, 0.99, 0.99 for their three layers).
3. While learning task t > 0, every layer's gradient [dW | db] is projected off the stored
   subspace before the optimizer step: g <- g - g M M^T (a hook on each tensor).
4. Optimiser: plain SGD at `gpm.lr` (the authors: lr 0.01), not the Adam every other method
   here uses: Adam divides each coordinate by its own running scale, which moves the update out
   of the projected subspace, so the guarantee of step 3 holds only for SGD. The batches and
   per-task budget are the protocol's.

Heads: one per task on every benchmark, as every shared-network method here has them
(fine-tuning, EWC, SI, ER, joint): each task's head is trained only by its task and is not
projected; the trunk's layers are. The authors' split codes do the same (their CIFAR-100 and
5-datasets networks, a list of task heads). On Permuted MNIST their MLP (main_pmnist.py) has one
output layer shared by every task and projected like the others: a domain-incremental choice
(the same 10 outputs for every task, no task id needed), which the task-incremental protocol
here, with the task id given at test time, does not follow. Stores the target and the bases
(floats), no data. MLP targets only (the conv form of the paper is not implemented).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from hypermask.methods.shared.base import MethodBase, PlainSGD
from hypermask.nets import MLP

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


def energy_basis(R: Tensor, M: Tensor | None, threshold: float) -> Tensor:
    """The columns to append to the basis M (d x k, orthonormal; None: empty) for the
    representation matrix R (d x n) at energy `threshold` (step 2 of the module's docstring)."""
    total = R.pow(2).sum()
    if M is None or M.shape[1] == 0:
        U, S, _ = torch.linalg.svd(R, full_matrices=False)
        kept = torch.zeros((), dtype=R.dtype, device=R.device)
    else:
        inside = M @ (M.t() @ R)
        U, S, _ = torch.linalg.svd(R - inside, full_matrices=False)
        kept = inside.pow(2).sum()
    if kept >= threshold * total:
        return R.new_zeros(R.shape[0], 0)
    cum = kept + S.pow(2).cumsum(0)
    k = int((cum < threshold * total).sum()) + 1
    return U[:, : min(k, U.shape[1])]


class GPM(MethodBase):
    """GPM behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        self.hp = cfg.gpm
        # MLP targets (config.py refuses the others); the per-task heads are not projected (one
        # head: a target built outside the protocol's heads_of, e.g. a test's, projects it too)
        assert isinstance(target, MLP), "GPM is implemented for MLP targets (its record's targets)"
        self.layers = target.linears() if target.n_heads == 1 else target.linears()[:-1]
        self.thresholds = [self.hp.threshold_first] + [self.hp.threshold] * (len(self.layers) - 1)
        for i, layer in enumerate(self.layers):
            d = layer.weight.shape[1] + 1
            # the basis, d x d with its first size_i columns in use (a fixed shape for checkpoints)
            self.register_buffer(f"basis_{i}", torch.zeros(d, d))
            self.register_buffer(f"size_{i}", torch.zeros((), dtype=torch.long))

    def basis(self, i: int) -> Tensor:
        return getattr(self, f"basis_{i}")[:, : int(getattr(self, f"size_{i}"))]

    @torch.no_grad()
    def project_gradients(self) -> None:
        """[dW | db] <- [dW | db] (I - M M^T) for every layer with a stored basis."""
        for i, layer in enumerate(self.layers):
            M = self.basis(i)
            dw, db = layer.weight.grad, layer.bias.grad
            if M.shape[1] == 0 or dw is None:
                continue
            assert db is not None  # a layer's weight and bias are trained together
            g = torch.cat([dw, db.unsqueeze(1)], 1)
            g = g - (g @ M) @ M.t()
            dw.copy_(g[:, :-1])
            db.copy_(g[:, -1])

    def make_optimizer(self, lr: float):
        """Plain SGD at gpm.lr with the projection (the module's docstring, step 4)."""
        return PlainSGD(self, self.hp.lr, before=self.project_gradients)

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(self.target(x, t), y)
        return ce, ce

    @torch.no_grad()
    def representations(self, x: Tensor) -> list[Tensor]:
        """Each layer's inputs with a constant 1 appended, one column per sample: (d_l + 1, n)."""
        out, h = [], x.flatten(1)
        for i, layer in enumerate(self.layers):
            out.append(torch.cat([h, h.new_ones(len(h), 1)], 1).t())
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return out

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """Grow each layer's basis from R^l of `gpm.samples` random training samples of task t."""
        n = min(self.hp.samples, len(task.train.y))
        pick = torch.randperm(len(task.train.y))[:n].to(task.train.y.device)
        for i, R in enumerate(self.representations(task.inputs(task.train.x[pick]))):
            M = self.basis(i)
            new = energy_basis(R, M, self.thresholds[i])
            k, size = new.shape[1], M.shape[1]
            if k:
                k = min(k, R.shape[0] - size)
                getattr(self, f"basis_{i}")[:, size : size + k] = new[:, :k]
                getattr(self, f"size_{i}").fill_(size + k)
