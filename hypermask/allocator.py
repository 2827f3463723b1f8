"""The CPU memory allocator setting of a training process (glibc).

PyTorch's CPU tensors come from malloc. glibc serves a block above its mmap threshold (at
most 32 MiB) with a fresh mmap and unmaps it when freed, so a step that allocates such a
block (a gradient) pays its page faults again on every step: Split Fashion-MNIST's
hypernetwork output layer and its gradient are 48 MB each. Serving every block from the heap
and never trimming the heap keeps those pages mapped: fmnist_split 40.9 -> 29.2 ms per
iteration on 2 threads. It costs memory through fragmentation (fmnist_permuted peak RSS
+230 MB with nothing to gain), so it is switched on only where a parameter is that large.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable

import torch

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's largest mmap threshold on 64-bit systems
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Ask glibc not to mmap large blocks and not to trim the heap; False where that is not
    glibc (macOS, musl) or it refuses, which only costs speed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX) == 1
    except (OSError, AttributeError):
        return False


def tune_for(params: Iterable[torch.Tensor]) -> bool:
    """keep_freed_memory() when a CPU parameter (hence its gradient) exceeds the mmap threshold."""
    big = any(p.device.type == "cpu" and p.numel() * p.element_size() > MMAP_THRESHOLD_MAX for p in params)
    return keep_freed_memory() if big else False
