"""PackNet: A. Mallya and S. Lazebnik, "PackNet: Adding Multiple Tasks to a Single Network by
Iterative Pruning", CVPR 2018; where the paper is silent, the authors' code
(github.com/arunmallya/packnet, src/prune.py and src/main.py) decides, as noted.

1. Every weight of a linear or convolutional layer of the trunk has an owner:
   0 = free, k = task k - 1 (one byte per weight, as the official ByteTensor masks).
2. Task t trains the free weights; the weights of earlier tasks are used in the forward pass
   but receive no update: their gradient is zeroed (a hook on the weight, as the official
   `make_grads_zero`), and with a fresh Adam per task a weight whose gradient is always zero
   never moves, so it stays bit-identical.
3. After (1 - `retrain_fraction`) of the task's iterations, per layer, `prune` % of the weights
   the task trained are released: the official `pruning_mask` rule, the cutoff being the
   round(prune * n)-th smallest |w| among them and every one with |w| <= cutoff released. The
   remaining iterations retrain the kept weights at `retrain_lr` times the learning rate. The
   official scripts train 20 epochs at lr 1e-3, prune, and retrain 10 epochs at 1e-4:
   retrain_fraction 1/3, retrain_lr 0.1. A released weight is out of the forward pass from
   then on (the official code zeroes it after every step) and is set to 0 at the task's end.
   The free weights the next task then trains start from 0, as in the official code.
4. Task t's network is the weights owned by tasks 0..t (the official `apply_mask`): every
   earlier task's function is unchanged, BWT is exactly 0 by construction.

Heads: the official code gives each dataset its own classifier and prunes only the shared
trunk (src/networks.py `ModifiedVGG16.add_dataset`/`set_dataset`, one nn.Linear per dataset in
`classifiers`; src/prune.py skips the classifier). Here: one output head per task
(`TargetNet.n_heads`), trained only while its task trains (the other heads' outputs are not in
the loss, so a fresh Adam leaves them bit-identical), never pruned; steps 1-4 apply to the
trunk's layer weights.

Biases and batch norm: the official flags `--train_biases` and `--train_bn` are off, so the
shared biases never change; its first network is a trained ImageNet model. Here the target
starts from scratch, so its trunk biases are trained on the first task and fixed afterwards;
batch norm's scale and shift stay at identity (as WSN and SupSup here). Every task is pruned,
the last one too: the official scripts skip the last dataset's pruning, which a continual
learner cannot know.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from hypermask.methods.shared.base import MethodBase
from hypermask.methods.shared.percentile import kth_smallest
from hypermask.methods.shared.supermask import TaskTensors, freeze_batch_norm
from hypermask.optim import scale_lr

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet

# Each weight's owner: 0 free, t + 1 for the task t that trained it. Its width is the record's
# max_tasks (specs/packnet.py), which `check` enforces: 8 bits, 255 tasks.
OWNER_DTYPE = torch.uint8


def release_mask(w: Tensor, trainable: Tensor, prune: float) -> Tensor:
    """The weights of one layer that pruning releases: of the `trainable` ones (bool), those
    with |w| <= the round(prune * n)-th smallest |w| among them (official `pruning_mask`)."""
    vals = w.detach()[trainable].abs()
    k = round(prune * vals.numel())
    if k == 0:
        return torch.zeros_like(trainable)
    cutoff = kth_smallest(vals, k).to(w.device)
    return trainable & (w.detach().abs() <= cutoff)


class PackNet(TaskTensors, MethodBase):
    """PackNet behind the method contract (hypermask.methods.Method)."""

    learned: Tensor  # buffer: which tasks have been learned (and own their weights)

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        super().__init__(target)
        pc = cfg.packnet
        self.prune, self.retrain_fraction, self.retrain_lr = (
            pc.prune / 100,
            pc.retrain_fraction,
            pc.retrain_lr,
        )
        params = dict(target.named_parameters())
        head = target.head_names()  # one classifier per task, trained only with its task
        self.names = [
            n for n in target.masked_names if params[n].dim() > 1 and n not in head
        ]  # trunk weights
        self.biases = [n for n in target.masked_names if params[n].dim() == 1 and n not in head]
        freeze_batch_norm(target)
        self.register_buffer("learned", torch.zeros(cfg.data.n_tasks, dtype=torch.bool))
        for i, n in enumerate(self.names):
            shape = params[n].shape
            self.register_buffer(f"owner_{i}", torch.zeros(shape, dtype=OWNER_DTYPE))
            # during a task (not in checkpoints, rebuilt from the owners): 1 where the task trains,
            # and 1 where the forward pass uses the weight (0: released by this task's pruning)
            self.register_buffer(f"trains_{i}", torch.ones(shape), persistent=False)
            self.register_buffer(f"active_{i}", torch.ones(shape), persistent=False)
            params[n].register_hook(self._freeze_hook(i))
        self.pruned = False  # this task's pruning done
        self.prune_at = 0
        self._opt = None

    def trained_parameters(self) -> int:
        """Every weight and bias of the target (trunk biases on the first task only)."""
        params = dict(self.target.named_parameters())
        return sum(params[n].numel() for n in self.target.masked_names)

    def _freeze_hook(self, i: int):
        return lambda g: g * getattr(self, f"trains_{i}")

    def _weights(self) -> list[Tensor]:
        params = dict(self.target.named_parameters())
        return [params[n] for n in self.names]

    def owners(self) -> list[Tensor]:
        return [getattr(self, f"owner_{i}") for i in range(len(self.names))]

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """The free weights train; biases train on the first task only."""
        self.prune_at = n_iterations - round(self.retrain_fraction * n_iterations)
        self.pruned = False
        for i, owner in enumerate(self.owners()):
            getattr(self, f"trains_{i}").copy_((owner == 0).float())
            getattr(self, f"active_{i}").fill_(1.0)
        params = dict(self.target.named_parameters())
        for n in self.biases:
            params[n].requires_grad_(t == 0)

    def make_optimizer(self, lr: float):
        self._opt = super().make_optimizer(lr)
        return self._opt

    @torch.no_grad()
    def prune_task(self) -> None:
        """Release `prune` of the weights this task trains (per layer); retrain the rest at
        retrain_lr times the learning rate."""
        for i, w in enumerate(self._weights()):
            trains = getattr(self, f"trains_{i}").bool()
            released = release_mask(w, trains, self.prune)
            getattr(self, f"trains_{i}").copy_((trains & ~released).float())
            getattr(self, f"active_{i}").copy_((~released).float())
        if self._opt is not None:
            scale_lr(self._opt, self.retrain_lr)
        self.pruned = True

    def loss(self, x: Tensor, y: Tensor, t: int, iteration: int) -> tuple[Tensor, Tensor]:
        if not self.pruned and iteration >= self.prune_at:
            self.prune_task()
        if self.pruned:
            params = {
                n: w * getattr(self, f"active_{i}")
                for i, (n, w) in enumerate(zip(self.names, self._weights()))
            }
            out = functional_call(self.target, params, (x,), {"task": t})
        else:  # before pruning the task's network is every weight
            out = self.target(x, t)
        ce = F.cross_entropy(out, y)
        return ce, ce

    @torch.no_grad()
    def end_task(self, t: int, task) -> None:
        """Released weights to 0 and free; the kept ones become task t's."""
        if not self.pruned:  # a budget too short to reach the pruning iteration
            self.prune_task()
        for i, (w, owner) in enumerate(zip(self._weights(), self.owners())):
            released = getattr(self, f"active_{i}") == 0
            w[released] = 0.0
            owner[getattr(self, f"trains_{i}").bool()] = t + 1
        self.learned[t] = True

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        """Task t's weights: those owned by tasks 0..t; a task not learned yet gets the network
        being trained (the accuracy matrix's row before learning it)."""
        ws = self._weights()
        out = {}
        for t in tasks:
            if self.learned[t]:
                out[t] = {n: w * ((o > 0) & (o <= t + 1)) for n, w, o in zip(self.names, ws, self.owners())}
            else:
                out[t] = {n: w * getattr(self, f"active_{i}") for i, (n, w) in enumerate(zip(self.names, ws))}
        return out
