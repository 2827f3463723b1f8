"""The training step replayed as a CUDA graph.

On a GPU a step of the hypernetwork methods is a few hundred small kernels, and launching them
from Python costs more than running them (docs/performance.md, "Speed on a GPU": on an H200 the Permuted
MNIST step took 4.8 ms eagerly while its kernels kept the GPU busy about 3.4 ms). A CUDA graph
records the step's kernels once (`torch.cuda.graph`) and replays them with one launch: the
same kernels on the same memory, so the same numbers as the eager step.

What may be captured is the method's to say: `Method.graph_key(t, iteration)` returns None
where the step cannot be replayed (the default), else a value that is equal for any two
iterations whose steps run the same kernels with the same constants (HyperMask: its sparsity,
which its first task ramps; every method: whether dropout is active). The learning rate is a
constant of the fused Adam kernel, so it is part of the key too: a scheduler's change captures
again. The batch is cut and augmented eagerly (its indices change every step) and copied into
the graph's input buffers.

Following PyTorch's recipe (CUDA semantics, "Whole-network capture"): a few eager warm-up steps
on a side stream for every new key, gradients set to None before the capture so that backward
allocates them in the graph's private pool, and no `zero_grad` between replays (the captured
backward writes the gradients, it does not accumulate). Off with HYPERMASK_CUDA_GRAPHS=0; off
on a CPU, for methods that give no key, and with torch.optim's Adam (HYPERMASK_TORCH_OPTIM).
"""

from __future__ import annotations

import sys

import torch

from hypermask.engine.step import step_on, training_step
from hypermask.optim import FusedAdam

WARMUP = 3  # eager steps on the side stream before each capture (PyTorch's recipe)


def graphs_enabled(device: torch.device) -> bool:
    from hypermask.environment import read_environment

    return device.type == "cuda" and read_environment().cuda_graphs == "1"


class GraphedSteps:
    """training_step(learner, opt, task, stream, gen, i), replayed from a CUDA graph wherever the
    method's key allows; eager otherwise. Returns the detached loss (no host sync)."""

    def __init__(self, learner, opt, task, stream, gen):
        self.learner, self.opt, self.task, self.stream, self.gen = learner, opt, task, stream, gen
        self.enabled = graphs_enabled(task.train.y.device) and isinstance(opt, FusedAdam)
        self.key, self.seen, self.graph = None, 0, None
        self.side = torch.cuda.Stream() if self.enabled else None
        self.x = self.y = self.loss = None
        self.captures = 0

    def _key(self, i: int):
        if not self.enabled:
            return None
        k = self.learner.graph_key(self.task.index, i)
        if k is None or any(
            m.training and isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d))
            for m in self.learner.modules()
        ):
            return None
        return (k, self.opt.lr)

    def __call__(self, i: int):
        key = self._key(i)
        if key is None:
            self.graph, self.key = None, None
            return training_step(self.learner, self.opt, self.task, self.stream, self.gen, i)
        if key != self.key:
            self.key, self.seen, self.graph = key, 0, None
        if self.graph is None and self.seen < WARMUP:
            self.seen += 1
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                loss = training_step(self.learner, self.opt, self.task, self.stream, self.gen, i)
            torch.cuda.current_stream().wait_stream(self.side)
            return loss
        x, y = self.learner.batch(self.task, self.stream.next(), self.gen)
        if self.graph is None:
            try:
                self._capture(x, y, i)
            except RuntimeError as e:  # an op that cannot be captured: this step and the rest eager
                print(
                    f"warning: CUDA graph capture failed ({str(e).splitlines()[0]}); training eagerly",
                    file=sys.stderr,
                )
                torch.cuda.synchronize()
                self.enabled, self.graph, self.key = False, None, None
                return step_on(self.learner, self.opt, x, y, self.task.index, i)
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss

    def _capture(self, x, y, i: int) -> None:
        self.x, self.y = x.clone(), y.clone()
        self.opt.zero_grad()  # backward allocates the gradients in the graph's pool
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.side):
            loss, _ = self.learner.loss(self.x, self.y, self.task.index, i)
            loss.backward()
            self.opt.step()
            self.loss = loss.detach()
        self.graph = graph
        self.captures += 1
