"""What most methods share: a torch module around the target network, no-op task hooks,
batches from the current task, a fresh Adam per task over all trained parameters (the
protocol every method here faces) and the count of the memory a method keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from hypermask.nets import TargetNet


class MethodBase(nn.Module):
    # state_dict key prefixes a method needs while learning a task but not to serve (or go
    # on learning) its tasks: left out of `memory()` (they are in the checkpoint for resumes).
    transient: tuple[str, ...] = ()

    def __init__(self, target: TargetNet):
        super().__init__()
        self.target = target

    def attach(self, tasks) -> None:
        pass

    def start_task(self, t: int, n_iterations: int) -> None:
        pass

    def batch(self, task, idx: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """One training batch of the current task (augmented with the task's generator)."""
        return task.inputs(task.train.x.index_select(0, idx), train=True, gen=gen), task.train.y.index_select(
            0, idx
        )

    def end_task(self, t: int, task) -> None:
        pass

    def graph_key(self, t: int, iteration: int):
        """None: the training step cannot be replayed from a CUDA graph (hypermask/engine/graphs.py);
        else a value equal for any two iterations of task t whose steps run the same kernels
        with the same constants."""
        return None

    def make_optimizer(self, lr: float):
        """A fresh Adam per task over every trained parameter (the reference's protocol)."""
        from hypermask.optim import adam

        return adam([p for p in self.parameters() if p.requires_grad], lr)

    @torch.no_grad()
    def eval_context(self, tasks: list[int]) -> dict:
        return {}

    def logits(self, ctx: dict, x: Tensor, t: int, features: bool = False) -> Tensor:
        return self.target(x, t, features=features)

    def all_task_outputs(self, ctx: dict, tasks: list[int], x: Tensor, features: bool = False) -> Tensor:
        """(K, N, C) outputs (or features) of x under each of the K tasks' models, one `logits` call
        per task: for a shared network with a head per task, the trunk and head k (features: the
        trunk's, the same for every k). Methods with a faster batched form override it."""
        return torch.stack([self.logits(ctx, x, t, features=features) for t in tasks])

    def trained_parameters(self) -> int:
        """How many values the method's optimisers update over the T tasks (the trainable
        parameters; methods that freeze some after a task or train a fresh set per task say so)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def memory(self) -> dict:
        """Bytes of every tensor of the method's state (its checkpoint's `learner` entry) that
        serving and further learning need, by top-level part (target, hnet, masks, fisher ...)."""
        parts: dict[str, int] = {}
        for k, v in self.state_dict().items():
            if self.transient and k.startswith(self.transient):
                continue
            part = k.split(".")[0].rstrip("_0123456789") or k
            parts[part] = parts.get(part, 0) + v.numel() * v.element_size()
        return {"bytes": sum(parts.values()), "parts": parts, "trained_parameters": self.trained_parameters()}


class PlainSGD:
    """torch.optim.SGD (no momentum) over the method's trained parameters, with the method's own
    work on the gradients before the step and on the parameters after it (HAT, GPM: methods
    whose gradient surgery Adam's per-coordinate scaling would undo)."""

    def __init__(self, method: nn.Module, lr: float, before=None, after=None):
        self.inner = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lr)
        self.param_groups = self.inner.param_groups
        self.before, self.after = before, after

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        if self.before is not None:
            self.before()
        self.inner.step()
        if self.after is not None:
            self.after()
