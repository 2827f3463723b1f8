"""Target networks: MLP, ResNet-20 (CIFAR-style, width factor k) and ZenkeNet.

Ordinary nn.Modules that HyperMask runs with masked weights through
torch.func.functional_call. Each publishes `masked_names`: its weights and biases
in the reference's order (layer by layer, weight then bias, the output layer last),
batch-norm parameters excluded. The hypernetwork is sized from those shapes.
Initialisation is PyTorch's default for Linear/Conv2d, which equals hypnettorch's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from hypermask.config import TargetConfig


class TaskBatchNorm(nn.Module):
    """Batch norm whose scale/shift are shared by all tasks.

    mode "batch_stats" (reference): always normalises with the statistics of the batch
    at hand, in training and evaluation alike. mode "per_task" (corrected option): keeps
    running statistics per task and uses the task's own in evaluation.
    """

    running_mean: Tensor  # buffers, per_task mode: (n_tasks, channels)
    running_var: Tensor

    def __init__(self, channels: int, n_tasks: int, mode: str, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.mode, self.eps, self.momentum = mode, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        if mode == "per_task":
            self.register_buffer("running_mean", torch.zeros(n_tasks, channels))
            self.register_buffer("running_var", torch.ones(n_tasks, channels))

    def forward(self, x: Tensor, task: int | None) -> Tensor:
        if self.mode == "batch_stats":
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        if task is None:
            raise ValueError("per_task batch norm needs the task id")
        rm, rv = self.running_mean[task], self.running_var[task]  # views: updated in place
        return F.batch_norm(x, rm, rv, self.weight, self.bias, self.training, self.momentum, self.eps)


class TargetNet(nn.Module):
    masked_names: list[str]
    # Multi-head (split benchmarks, methods whose weights have no task-specific part): the
    # output layer holds n_heads blocks of equal width and task t reads block t.
    n_heads: int = 1

    def features(self, x: Tensor, task: int | None = None) -> Tensor:  # penultimate layer
        raise NotImplementedError

    def head(self) -> nn.Linear:  # the output layer
        raise NotImplementedError

    def forward(self, x: Tensor, task: int | None = None, features: bool = False) -> Tensor:
        h = self.features(x, task)
        if features:
            return h
        out = self.head()(h)
        if self.n_heads == 1:
            return out
        if task is None:
            raise ValueError("a multi-head target needs the task id")
        w = out.shape[1] // self.n_heads
        return out[:, task * w : (task + 1) * w]

    def head_names(self) -> list[str]:
        """The output layer's parameter names (weight, bias)."""
        head = self.head()
        return [n for n, p in self.named_parameters() if p is head.weight or p is head.bias]

    def task_heads(self, feats: Tensor, tasks: list[int]) -> Tensor:
        """Stacked penultimate features (K, N, F) of K tasks -> (K, N, out), feats[k] through
        task tasks[k]'s head block (one output block per task: n_heads > 1)."""
        head = self.head()
        w = head.weight.view(self.n_heads, -1, head.weight.shape[1])[tasks]
        b = head.bias.view(self.n_heads, -1)[tasks]
        return torch.baddbmm(b.unsqueeze(1), feats, w.transpose(1, 2))

    @property
    def batch_dependent(self) -> bool:
        """True when a sample's output depends on the rest of its batch (batch norm with batch
        statistics): then evaluation must see a whole split at once, as the reference does."""
        return any(isinstance(m, TaskBatchNorm) and m.mode == "batch_stats" for m in self.modules())

    @property
    def per_task_bn(self) -> bool:
        """True when batch norm keeps running statistics per task: outputs need the task id."""
        return any(isinstance(m, TaskBatchNorm) and m.mode == "per_task" for m in self.modules())

    def masked_shapes(self) -> list[torch.Size]:
        params = dict(self.named_parameters())
        return [params[n].shape for n in self.masked_names]


class MLP(TargetNet):
    def __init__(self, n_in: int, hidden: list[int], n_out: int):
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.masked_names = [f"layers.{i}.{p}" for i in range(len(self.layers)) for p in ("weight", "bias")]

    def features(self, x: Tensor, task: int | None = None) -> Tensor:
        h = x.flatten(1)
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return h

    def head(self) -> nn.Linear:
        return cast(nn.Linear, self.layers[-1])  # nn.ModuleList is not generic: its items are Modules

    def linears(self) -> list[nn.Linear]:
        """Its layers, the output layer last."""
        return cast(list[nn.Linear], list(self.layers))  # nn.ModuleList is not generic


class ResNet20(TargetNet):
    """hypnettorch's ResNet with n=3 (6n+2 = 20 layers): 3x3 convs with biases, BN after every
    conv, zero-padded identity shortcuts (option A), global average pooling, one FC layer.
    Feature maps: 16, then 16k, 32k, 64k in the three groups. Works for 32x32 and 64x64 inputs."""

    def __init__(
        self,
        in_channels: int,
        n_out: int,
        n_tasks: int,
        width: int = 2,
        bn_mode: str = "batch_stats",
        n: int = 3,
    ):
        super().__init__()
        self.n = n
        self.fs = [16, 16 * width, 32 * width, 64 * width]
        convs, bns = (
            [nn.Conv2d(in_channels, self.fs[0], 3, padding=1)],
            [TaskBatchNorm(self.fs[0], n_tasks, bn_mode)],
        )
        for g in range(3):
            c_in = self.fs[g]
            for _ in range(2 * n):
                convs.append(nn.Conv2d(c_in, self.fs[g + 1], 3, padding=1, stride=1))
                bns.append(TaskBatchNorm(self.fs[g + 1], n_tasks, bn_mode))
                c_in = self.fs[g + 1]
        self.convs, self.bns = nn.ModuleList(convs), nn.ModuleList(bns)
        self.fc = nn.Linear(self.fs[-1], n_out)
        self.masked_names = [f"convs.{i}.{p}" for i in range(len(convs)) for p in ("weight", "bias")] + [
            "fc.weight",
            "fc.bias",
        ]

    def _conv(self, i: int, h: Tensor, stride: int, task, shortcut: Tensor | None = None) -> Tensor:
        conv = cast(nn.Conv2d, self.convs[i])  # nn.ModuleList is not generic: its items are Modules
        h = F.conv2d(h, conv.weight, conv.bias, stride=stride, padding=1)
        h = self.bns[i](h, task)
        if shortcut is not None:
            h = h + shortcut
        return F.relu(h)

    def features(self, x: Tensor, task: int | None = None) -> Tensor:
        h = self._conv(0, x, 1, task)
        i = 1
        for g in range(3):
            stride = 1 if g == 0 else 2
            for j in range(self.n):
                sc = h
                if j == 0 and self.fs[g + 1] != self.fs[g]:
                    if stride == 2:
                        sc = sc[:, :, ::2, ::2]
                    extra = self.fs[g + 1] - self.fs[g]
                    sc = F.pad(sc, (0, 0, 0, 0, extra // 2, extra - extra // 2))
                h = self._conv(i, h, stride, task)
                h = self._conv(i + 1, h, 1, task, shortcut=sc)
                i += 2
                stride = 1
        return h.mean(dim=(2, 3))

    def head(self) -> nn.Linear:
        return self.fc


class ZenkeNet(TargetNet):
    """The reference's ZenkeNet: `cifar` (32x32: conv 32,32, conv 64,64, FC 512, FC out) and
    `tiny` (64x64: four convs of 64, FC out). Dropout2d(0.25) after each conv block and
    Dropout(0.5) after the first FC layer (cifar)."""

    def __init__(self, variant: str, n_out: int):
        super().__init__()
        self.variant = variant
        c = (32, 32, 64, 64) if variant == "cifar" else (64, 64, 64, 64)
        self.c0, self.c1 = nn.Conv2d(3, c[0], 3, padding=1), nn.Conv2d(c[0], c[1], 3)
        self.c2, self.c3 = nn.Conv2d(c[1], c[2], 3, padding=1), nn.Conv2d(c[2], c[3], 3)
        self.drop_conv, self.drop_fc = nn.Dropout2d(0.25), nn.Dropout(0.5)
        if variant == "cifar":
            self.fc1, self.fc2 = nn.Linear(64 * 6 * 6, 512), nn.Linear(512, n_out)
            fcs = ["fc1", "fc2"]
        else:
            self.fc2 = nn.Linear(64 * 14 * 14, n_out)
            fcs = ["fc2"]
        self.masked_names = [f"{m}.{p}" for m in ("c0", "c1", "c2", "c3", *fcs) for p in ("weight", "bias")]

    def features(self, x: Tensor, task: int | None = None) -> Tensor:
        h = F.relu(self.c1(F.relu(self.c0(x))))
        h = self.drop_conv(F.max_pool2d(h, 2))
        h = F.relu(self.c3(F.relu(self.c2(h))))
        h = self.drop_conv(F.max_pool2d(h, 2)).flatten(1)
        if self.variant == "cifar":
            h = self.drop_fc(F.relu(self.fc1(h)))
        return h

    def head(self) -> nn.Linear:
        return self.fc2


def build_target(
    cfg: TargetConfig, input_shape: tuple[int, ...], n_out: int, n_tasks: int, heads: int = 1
) -> TargetNet:
    """The target network; heads > 1: one output block of n_out per head (multi-head)."""
    net = _build_target(cfg, input_shape, n_out * heads, n_tasks)
    net.n_heads = heads
    return net


def _build_target(cfg: TargetConfig, input_shape: tuple[int, ...], n_out: int, n_tasks: int) -> TargetNet:
    if cfg.kind == "mlp":
        n_in = 1
        for d in input_shape:
            n_in *= d
        return MLP(n_in, list(cfg.hidden), n_out)
    if cfg.kind == "resnet20":
        return ResNet20(input_shape[0], n_out, n_tasks, cfg.width, cfg.batch_norm)
    side = input_shape[-1]
    if side not in (32, 64):
        raise ValueError(f"target.kind: zenkenet takes 32x32 or 64x64 inputs, not {side}x{side}")
    return ZenkeNet("cifar" if side == 32 else "tiny", n_out)


def set_train_mode(net: nn.Module, dropout: bool) -> None:
    """Training mode, with dropout on or off (the reference trains with it off after its first validation check)."""
    net.train()
    if not dropout:
        for m in net.modules():
            if isinstance(m, (nn.Dropout, nn.Dropout2d)):
                m.eval()
