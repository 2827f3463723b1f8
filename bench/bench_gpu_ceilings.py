"""The two ceilings a GPU step is measured against, printed as JSON: device memory bandwidth
(a large device-to-device copy, bytes read plus bytes written) and matrix throughput (a
large float32 product as the trainer runs it, full float32; also TF32 and bf16 for scale).
Median of CUDA-event timings after warm-up, on random data.

    python bench/bench_gpu_ceilings.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch


def timed(fn, repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds of fn() by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1000)
    return statistics.median(times)


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("bench_gpu_ceilings: no CUDA device")
    dev = torch.device("cuda")
    out = {}
    n = 2**28  # 1 GiB of float32 per buffer, far beyond the L2
    src, dst = torch.rand(n, device=dev), torch.empty(n, device=dev)
    s = timed(lambda src=src, dst=dst: dst.copy_(src))
    out["copy_bytes"] = 2 * 4 * n
    out["copy_seconds"] = s
    out["copy_gb_per_s"] = 2 * 4 * n / s / 1e9
    del src, dst
    m = 8192
    for name, dtype, tf32 in (
        ("float32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bfloat16", torch.bfloat16, False),
    ):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = torch.randn(m, m, device=dev, dtype=dtype), torch.randn(m, m, device=dev, dtype=dtype)
        s = timed(lambda a=a, b=b: a @ b, repeats=10)
        out[f"gemm_{name}_tflops"] = 2 * m**3 / s / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import gpu

    print(json.dumps({"gpu": gpu(), "torch": torch.__version__, **out}, indent=2))


if __name__ == "__main__":
    main()
