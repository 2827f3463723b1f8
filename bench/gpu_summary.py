"""A short table of the GPU benches' JSON (bench/run_gpu.sh writes it to a folder).

python bench/gpu_summary.py results/bench_gpu
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def ms(s: float) -> str:
    return f"{1e3 * s:.3f}"


def main(folder: str) -> None:
    out = Path(folder)
    c = json.loads((out / "gpu_ceilings.json").read_text())
    print(
        f"{c['gpu']['name']}: copy {c['copy_gb_per_s']:.0f} GB/s, fp32 {c['gemm_float32_tflops']:.1f} TFLOP/s, "
        f"tf32 {c['gemm_tf32_tflops']:.0f}, bf16 {c['gemm_bfloat16_tflops']:.0f}; torch {c['torch']}"
    )
    for f in sorted(out.glob("gpu_step*.json")):
        for r in json.loads(f.read_text())["results"]:
            if "error" in r:
                print(f.name, r)
                continue
            g = r.get("graphed", {})
            line = (
                f"{f.name} {r['config']} task {r['task']} fill {r.get('fill_uninitialized_memory')}: eager "
                f"{ms(r['sec_per_iter_median'])} [{ms(r['sec_per_iter_min'])}, {ms(r['sec_per_iter_max'])}] ms"
            )
            if g:
                line += (
                    f", graphed {ms(g['sec_per_iter_median'])} [{ms(g['sec_per_iter_min'])}, "
                    f"{ms(g['sec_per_iter_max'])}] ms ({g['captures']} capture)"
                )
            line += f", adam {ms(r['optimizer_step_seconds'])} ms, eval {r['eval_all_tasks_seconds']:.3f} s"
            print(line)
            if "epoch" in r:
                print("   epoch", r["epoch"])
            p = r.get("profile")
            if p:
                print(
                    f"   kernels {p.get('kernels_per_iter')} per step, busy {p.get('kernel_ms_per_iter')} ms"
                )
                for row in p["top"][:6]:
                    print(f"     {row['ms_per_iter']:.3f} ms x{row['calls_per_iter']:.0f} {row['op'][:90]}")
    for f in sorted(out.glob("gpu_eval_*.json")):
        d = json.loads(f.read_text())
        print(
            f.name,
            {
                k: d[k]
                for k in ("batched_seconds_median", "per_task_loop_seconds_median", "speedup", "same_outputs")
            },
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/bench_gpu")
