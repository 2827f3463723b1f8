"""What a timing depends on, printed beside it so that figures from two machines can be told apart.

The CPU (model, logical CPUs, vector extensions), torch and the kernels it dispatches to
(ATen's CPU capability, the BLAS and its version, oneDNN, OpenMP), the code path MKL itself
reports for this CPU (its MKL_VERBOSE header, read from a child process), and the thread
settings (torch's intra/inter-op threads, the OpenMP/MKL environment).

    python bench/machine.py      # JSON
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "KMP_BLOCKTIME",
    "OMP_PROC_BIND",
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
)


def _cpuinfo() -> dict:
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    ext = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {"cpu": model or "unknown", "logical_cpus": os.cpu_count(), "vector_extensions": ext}


def mkl_code_path() -> str | None:
    """The header MKL prints on its first call with MKL_VERBOSE=1: its version and the code
    path it chose for this CPU (on Intel CPUs it names the instruction set, e.g. "Intel(R)
    AVX-512 ... enabled processors"; on others it says "Intel(R) Architecture processors")."""
    code = "import torch; torch.mm(torch.ones(64, 64), torch.ones(64, 64))"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MKL_VERBOSE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("MKL_VERBOSE") and ("oneMKL" in line or "Intel(R) MKL" in line):
            return line.replace("MKL_VERBOSE", "").strip()
    return None


def gpu() -> dict | None:
    """The GPU torch sees (name, memory, compute capability, multiprocessors), the CUDA and
    cuDNN versions torch was built with, the driver, and the float32 matmul precision."""
    import torch

    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    driver = None
    try:
        driver = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "name": p.name,
        "memory_gib": round(p.total_memory / 2**30, 1),
        "capability": f"{p.major}.{p.minor}",
        "multiprocessors": p.multi_processor_count,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "driver": driver,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }


def describe(probe_mkl: bool = True) -> dict:
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    onednn = re.search(r"MKL-DNN v([\w.]+)", config)
    omp = re.search(r"OpenMP (\d+)", config)
    return {
        **_cpuinfo(),
        "torch": torch.__version__,
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas.group(1) if blas else None,
        "mkl_version": mkl.group(1) if mkl else None,
        "mkl_code_path": mkl_code_path() if probe_mkl and torch.backends.mkl.is_available() else None,
        "onednn": onednn.group(1) if onednn else None,
        "openmp": omp.group(1) if omp else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        **({"gpu": g} if (g := gpu()) else {}),
    }


if __name__ == "__main__":
    print(json.dumps(describe(), indent=2))
