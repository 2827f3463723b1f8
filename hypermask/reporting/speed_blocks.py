"""The speed blocks of the docs ("Speed on the CI machine kind" and "Speed on a GPU" in
docs/performance.md, the two commands' times in README.md), rendered from the benches' JSON
in bench/results/ (never typed) by `hypermask docs` (see hypermask/reporting/readme.py).

    python bench/bench_train_step.py --configs fmnist_permuted fmnist_split --threads 2 --profile > bench/results/speed_step.json
    python bench/bench_contention.py --configs fmnist_permuted --threads 2 --repeats 5 --rounds 7 \
        --variants hypermask_command default omp_passive passive_spin_2k one_thread \
        > bench/results/speed_contention.json
    python bench/bench_train_step.py --configs fmnist_permuted fmnist_split --threads 2 --profile \
        --warmup 3 --repeats 1 --per-repeat 5 > bench/results/speed_regions.json
    python bench/bench_gemm.py --threads 2 > bench/results/speed_gemm.json
    python bench/bench_run.py fmnist_permuted --threads 2 > bench/results/speed_run.json
    python bench/bench_reference.py --reference HYPERMASK_CHECKOUT --torchpercentile TORCHPERCENTILE_CHECKOUT \
        --out bench/results/speed_reference.json
    python bench/bench_run.py fmnist_permuted --threads 2 --hypermask CPU_VENV/bin/hypermask > bench/results/speed_run_cpu_build.json
    python bench/bench_gemm.py --threads 1 --by-task fmnist_permuted fmnist_split > bench/results/speed_gemm_tasks.json
    python bench/bench_percentile.py --threads 2 > bench/results/speed_percentile.json
    python bench/bench_jobs.py --configs fmnist_permuted fmnist_split --threads 2 --jobs 2 > bench/results/speed_jobs.json
    python bench/bench_suite.py --suite fmnist --cores 2 > bench/results/speed_suite.json
    python bench/bench_suite.py --readme --cores 2 > bench/results/readme_commands.json
    python bench/bench_suite.py --start-up 761b8d7 --cores 2 > bench/results/speed_startup.json
    bash bench/run_gpu.sh   # on a GPU machine: bench/results/gpu_{ceilings,step,step_task9,eval_*}.json
    python bench/bench_train_step.py --configs permuted_mnist cifar100_resnet20 --device cuda \
        --fill-uninitialized on|off > bench/results/gpu_step_fill_{on,off}.json
    python bench/gpu_runs.py --benchmarks fmnist_permuted fmnist_split > bench/results/gpu_runs.json
    hypermask docs            # rewrites every generated block of README.md and docs/*.md
    hypermask docs --check    # exit 1 where a page differs from what its sources give
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout (the docs are rendered from one)
RESULTS = ROOT / "bench" / "results"


def _load(name: str):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(m: dict) -> str:
    env = ", ".join(f"{k}={v}" for k, v in m.get("thread_env", {}).items()) or "no thread variables set"
    return (
        f"{m['cpu']}, {m['logical_cpus']} logical CPUs ({'/'.join(m['vector_extensions'])}); torch {m['torch']}, "
        f"ATen CPU capability {m['aten_cpu_capability']}, BLAS {m['blas']} {m.get('mkl_version') or ''} "
        f'(MKL reports: "{m.get("mkl_code_path") or "n/a"}"), oneDNN {m["onednn"]}, '
        f"{m['torch_threads']} torch threads; {env}"
    )


def render() -> str:
    out: list[str] = []
    step = _load("speed_step.json")
    if step:
        out += [
            f"Training step (`bench/bench_train_step.py`), on {machine_line(step['machine'])}:",
            "",
            "| configuration | ms/iteration, median [min, max] | Adam step alone | evaluation of all tasks | peak RSS |",
            "|---|---|---|---|---|",
        ]
        for r in step["results"]:
            if "error" in r:
                continue
            out.append(
                f"| `{r['config']}` ({r['method']}) | {1e3 * r['sec_per_iter_median']:.2f} "
                f"[{1e3 * r['sec_per_iter_min']:.2f}, {1e3 * r['sec_per_iter_max']:.2f}] | "
                f"{1e3 * r['optimizer_step_seconds']:.2f} ms | {r['eval_all_tasks_seconds']:.2f} s | "
                f"{r['peak_rss_mb'] / 1024:.2f} GB |"
            )
        out.append("")
        profiled = [r for r in step["results"] if "profile" in r]
        if profiled:
            out += [
                f"Where a step's time goes (the profiler's self time per iteration, task {profiled[0]['task']}; "
                "the profiler adds its own overhead):",
                "",
                "| configuration | " + " | ".join(["op", "ms", "calls"] * 2) + " |",
                "|---|" + "---|" * 6,
            ]
            for r in profiled:
                top = r["profile"]["top"][:8]
                half = (len(top) + 1) // 2
                for i in range(half):
                    cells = []
                    for e in (top[i], top[i + half] if i + half < len(top) else None):
                        cells += (
                            [
                                f"`{e['op'].removeprefix('aten::')}`",
                                f"{e['ms_per_iter']:.2f}",
                                f"{e['calls_per_iter']:g}",
                            ]
                            if e
                            else ["", "", ""]
                        )
                    out.append(f"| {'`' + r['config'] + '`' if i == 0 else ''} | " + " | ".join(cells) + " |")
            out.append("")
    out += render_regions()
    runs = [r for r in (_load("speed_run.json"), _load("speed_run_cpu_build.json")) if r]
    if runs:
        out += [
            f"Whole run, as a user starts it (`bench/bench_run.py`), on {machine_line(runs[0]['machine'])}:",
            "",
            "| command | torch in the run | MLflow | wall | ms/iteration (validation excluded) | peak RSS | average accuracy |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in runs:
            out.append(
                f"| `{run['command']}` | {run.get('run_torch', run['machine']['torch'])} | "
                f"{'on' if run['tracking'] else 'off'} | {run['wall_seconds']:.1f} s | "
                f"{run['ms_per_iteration']:.2f} | {run['peak_rss_gb']:.2f} GB | {run['average_accuracy']:.2f} |"
            )
        if len(runs) == 2 and runs[0].get("accuracy_matrix") is not None:
            same = runs[0]["accuracy_matrix"] == runs[1].get("accuracy_matrix")
            out.append(f"\nThe two runs' accuracy matrices are {'identical' if same else 'different'}.")
        out.append("")
    gemm = _load("speed_gemm.json")
    if gemm:
        out += [
            f"The step's matrix products (`bench/bench_gemm.py`, {gemm['threads']} threads; measured peak "
            f"{gemm['peak_gemm_gflops']} GFLOP/s on a 2048² product, copy bandwidth "
            f"{gemm['copy_bandwidth_gb_s']} GB/s):",
            "",
            "| product | m×k×n | operands | torch (MKL) | numpy (OpenBLAS) | floor | bound by |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in gemm["products"]:
            floor = max(r["compute_floor_us"], r["memory_floor_us"])
            name = r["product"] if r.get("in_step", True) else f"*not in the step:* {r['product']}"
            ops = f"A{'ᵀ' if r.get('a_transposed') else ''}, B{'ᵀ' if r.get('b_transposed') else ''}"
            out.append(
                f"| {name} | {r['m']}×{r['k']}×{r['n']} | {ops} | {r['torch_us']:.0f} µs | "
                f"{r['numpy_openblas_us']:.0f} µs | {floor:.0f} µs | {r['bound']} |"
            )
        s = gemm["sum_ms"]
        out += [
            "",
            "Aᵀ/Bᵀ: the operand is the transposed view of a row-major tensor, as the step passes it.",
            f"Sum over the step's products: torch {s['torch']:.2f} ms, OpenBLAS {s['numpy']:.2f} ms, "
            f"floor {s['floor']:.2f} ms.",
            "",
        ]
    tasks = _load("speed_gemm_tasks.json")
    if tasks:
        out += [
            f"The hypernetwork output layer's products on each task (`bench/bench_gemm.py --by-task`, "
            f"{tasks['threads']} thread as the pipeline's jobs run, {tasks['environment']}; measured peak "
            f"{tasks['peak_gemm_gflops']} GFLOP/s, copy bandwidth {tasks['copy_bandwidth_gb_s']} GB/s). Task t "
            "stacks t + 1 embeddings (its own and the earlier ones of the regularizer); each cell is µs "
            "(GFLOP/s reached):",
            "",
            "| benchmark | task | rows × hidden × n | forward | hidden grad | weight grad | sum | floor |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in tasks["by_task"]:
            timings = " | ".join(
                f"{r[k]['us']:.0f} ({r[k]['gflops']:.0f})" for k in ("forward", "hidden_grad", "weight_grad")
            )
            out.append(
                f"| `{r['benchmark']}` | {r['task']} | {r['rows']}×{r['hidden']}×{r['n']:,} | {timings} | "
                f"{r['sum_ms']:.2f} ms | {r['floor_sum_ms']:.2f} ms |"
            )
        out.append("")
    pct = _load("speed_percentile.json")
    if pct:
        out += [
            f"HyperMask's mask thresholds (`bench/bench_percentile.py`, `{pct['config']}`, p = {pct['sparsity']:g}): "
            "one tensor's two neighbouring order statistics",
            "",
            "| entries | torch.kthvalue + 2 passes | numpy.partition, both ranks | numpy.partition, lower rank + min (used) |",
            "|---|---|---|---|",
        ]
        for r in pct["tensors"]:
            out.append(
                f"| {r['entries']:,} | {r['torch_kthvalue_and_neighbour_us']:.0f} µs | "
                f"{r['numpy_partition_both_ranks_us']:.0f} µs | {r['numpy_partition_lower_rank_and_min_us']:.0f} µs |"
            )
        out += [
            "",
            f"All thresholds of the step (`thresholds()`): {pct['thresholds_call_us'] / 1e3:.2f} ms.",
            "",
        ]
    cont = _load("speed_contention.json")
    if cont:
        out += [
            f"Beside one other CPU-bound process (`bench/bench_contention.py`, a {cont['rows'][0]['busy']} "
            f"process the bench starts and stops"
            + (
                f"; every variant once per round, {cont['rows'][0]['rounds']} rounds one after the other, "
                "each time the median over the rounds [their least and greatest], each ratio of those medians, "
                "and in brackets the ratio within each round, its median over the rounds"
                if cont["rows"][0].get("rounds", 1) > 1
                else ""
            )
            + f"), on {machine_line(cont['machine'])}"
            + (f" (`{cont['command']}`)" if cont.get("command") else "")
            + ":",
            "",
            "| configuration | variant | threads | OpenMP settings | alone | alone / fastest alone | "
            "with the busy process | slowdown |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in cont["rows"]:
            policy = _openmp_cell(r)
            vs = f"{r['alone_vs_best']:.2f}x" if "alone_vs_best" in r else "-"
            slow = f"{r['slowdown']:.2f}x"
            if "slowdown_per_round" in r:  # paired within rounds (bench_contention.add_ratios)
                vs += f" (per round {r['alone_vs_best_per_round']:.2f}x)"
                slow += f" (per round {r['slowdown_per_round']:.2f}x)"

            def cell(key: str, r: dict = r) -> str:
                spread = r.get(f"{key}_rounds") or []
                return f"{r[key]:.2f} ms" + (
                    f" [{min(spread):.1f}, {max(spread):.1f}]" if len(spread) > 1 else ""
                )

            out.append(
                f"| `{r['config']}` | {r.get('variant', '-')} | {r['threads']} | {policy} | {cell('alone_ms')} | "
                f"{vs} | {cell('with_busy_process_ms')} | {slow} |"
            )
        out.append("")
    out += render_reference() + render_floor()
    jobs = _load("speed_jobs.json")
    if jobs:
        r0 = jobs["rows"][0]
        out += [
            f"The pipeline's jobs on the machine's cores (`bench/bench_jobs.py`): one {r0['threads']}-thread job "
            f"alone (passive policy) against {r0['jobs']} one-thread jobs at once (`pipeline.threads: 1`), on "
            f"{machine_line(jobs['machine'])}:",
            "",
            "| configuration | one job: ms/step | one thread alone | one-thread jobs at once: ms/step each | "
            "steps per second, one job | all jobs | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in jobs["rows"]:
            each = ", ".join(f"{t:.2f}" for t in r["one_thread_jobs_ms"])
            out.append(
                f"| `{r['config']}` | {r['one_job_ms']:.2f} | {r['one_thread_alone_ms']:.2f} | {each} | "
                f"{r['steps_per_second_one_job']:.1f} | {r['steps_per_second_jobs']:.1f} | "
                f"{r['throughput_ratio']:.2f}x |"
            )
        out.append("")
    suite = _load("speed_suite.json")
    if suite:
        wall = suite["wall_seconds"]
        out += [
            f"The `{suite['suite']}` suite from nothing (`bench/bench_suite.py`: a fresh clone of commit "
            f"{suite['commit'][:10]}, `{suite['command']}`, jobs of {suite.get('pipeline_threads', '?')} thread(s), setup not "
            f"timed), on {machine_line(suite['machine'])}: "
            f"**{int(wall // 60)} min {wall % 60:.0f} s**. The jobs' own wall times:",
            "",
            "| experiment | runs | job seconds, all seeds | ms/iteration, median over seeds |",
            "|---|---|---|---|",
        ]
        for name, runs in suite["runs"].items():
            spi = statistics.median(r["seconds_per_iteration"] for r in runs) * 1e3
            out.append(f"| `{name}` | {len(runs)} | {suite['job_seconds'][name]:.0f} | {spi:.1f} |")
        out.append("")
    return "\n".join(out).strip() + "\n"


def render_regions() -> list[str]:
    """The step's OpenMP parallel regions by op (bench/results/speed_regions.json: counts only;
    the timings of that profiled run are not used)."""
    data = _load("speed_regions.json")
    rows = [r for r in (data or {}).get("results", []) if "parallel_regions" in r.get("profile", {})]
    if not rows:
        return []
    out = [
        f"OpenMP parallel regions per step (`bench/bench_train_step.py --profile`, {rows[0]['threads']} threads, "
        f"task {rows[0]['task']}), counted from the profiler's ops and their shapes: an op whose largest operand "
        "exceeds ATen's grain of 32,768 elements is split over the threads (the fused Adam kernel once per such "
        "tensor, each matrix product of that size by MKL), a fork and a join of the thread team, and a wake-up "
        "wherever the team sleeps between regions. Views and metadata ops are not counted:",
        "",
        "| configuration | parallel regions | ops doing work | the regions by op |",
        "|---|---|---|---|",
    ]
    for r in rows:
        pr = r["profile"]["parallel_regions"]
        ops = ", ".join(f"`{k.removeprefix('aten::')}` {v:g}" for k, v in pr["by_op"].items())
        out.append(
            f"| `{r['config']}` ({r['method']}) | {pr['per_iter']:g} | {pr['leaf_ops_per_iter']:g} | {ops} |"
        )
    return out + [""]


def render_floor() -> list[str]:
    """The HyperMask fmnist_permuted step against its floors: the fused Adam step at the copy
    bandwidth (28 bytes a parameter: parameter, gradient and two moments read, three written)
    and the step's matrix products at max(memory, compute) floor (bench_gemm.py), the rest as
    measured; with the side-by-side run of the same machine, what 6x and 10x the reference need."""
    step, gemm, ref = _load("speed_step.json"), _load("speed_gemm.json"), _load("speed_reference.json")
    if not step or not gemm:
        return []
    r = next(
        (x for x in step["results"] if x["config"] == "fmnist_permuted" and x["method"] == "hypermask"), None
    )
    if r is None:
        return []
    same = step["machine"]["cpu"] == gemm["machine"]["cpu"]
    ms, adam = r["sec_per_iter_median"] * 1e3, r["optimizer_step_seconds"] * 1e3
    n = r["hnet_parameters"] + r["target_parameters"]
    adam_floor = 28 * n / (gemm["copy_bandwidth_gb_s"] * 1e9) * 1e3
    prods = [p for p in gemm["products"] if p["in_step"]]
    prod_ms = sum(p["torch_us"] for p in prods) / 1e3
    prod_floor = sum(max(p["memory_floor_us"], p["compute_floor_us"]) for p in prods) / 1e3
    rest = ms - adam - prod_ms
    out = [
        f"The `fmnist_permuted` step by part ({r['threads']} threads; the step and Adam from "
        f"`bench/results/speed_step.json`, the products and the copy bandwidth ({gemm['copy_bandwidth_gb_s']:.1f} GB/s, "
        f"buffers larger than the caches) from `bench/results/speed_gemm.json`"
        + ("" if same else "; NOTE: the two files come from different machines")
        + "). The floor column is the "
        "part's memory traffic at that bandwidth (for products, the larger of that and the compute floor at the "
        "measured peak); below 1x the operands stayed in cache:",
        "",
        "| part | measured | floor | measured / floor |",
        "|---|---|---|---|",
        f"| fused Adam step ({n / 1e6:.2f}M parameters, 28 bytes each) | {adam:.2f} ms | {adam_floor:.2f} ms | "
        f"{adam / adam_floor:.2f}x |",
        f"| the step's {len(prods)} matrix products | {prod_ms:.2f} ms | {prod_floor:.2f} ms | {prod_ms / prod_floor:.2f}x |",
        f"| everything else (masks and thresholds, element-wise ops, batch, autograd and Python) | {rest:.2f} ms | "
        "not bounded here | |",
        f"| the step | {ms:.2f} ms | | |",
        "",
    ]
    if ref and ref["machine"]["cpu"] == step["machine"]["cpu"]:
        rm = ref["reference"]["ms_per_iteration"]
        out += [
            f"On this machine the reference takes {rm:.2f} ms per iteration (side-by-side table): 6x needs a step of "
            f"{rm / 6:.2f} ms, 10x one of {rm / 10:.2f} ms. Adam and the products take {adam + prod_ms:.2f} ms of "
            f"the step; the rest, {rest:.2f} ms, is what stands between the two: for 10x it would have to fall to "
            f"{max(rm / 10 - adam - prod_ms, 0):.2f} ms.",
            "",
        ]
    return out


def _openmp_words(env: dict) -> str:
    return (
        ", ".join(f"{k}={v}" for k, v in env.items() if k != "HYPERMASK_CPUS_BUSY")
        or "none (libgomp spins 300,000 times)"
    )


def _openmp_cell(row: dict) -> str:
    """A contention row's OpenMP settings; for the command's own choice (made as each measured
    process starts), what it chose alone and beside the busy process, in how many rounds, and the
    CPUs it found busy."""
    if isinstance(row["env"], dict):
        return _openmp_words(row["env"])
    sides = []
    for side, key in (("alone", "env_alone_rounds"), ("beside the busy process", "env_busy_rounds")):
        envs = row.get(key, [])
        chosen: dict[str, int] = {}
        for e in envs:
            chosen[_openmp_words(e)] = chosen.get(_openmp_words(e), 0) + 1
        busy = [float(e["HYPERMASK_CPUS_BUSY"]) for e in envs if "HYPERMASK_CPUS_BUSY" in e]
        found = f" (CPUs found busy: {min(busy):.2f}-{max(busy):.2f})" if busy else ""
        sides.append(f"{side}: " + "; ".join(f"{w} in {n} of {len(envs)}" for w, n in chosen.items()) + found)
    return "chosen at start; " + "; ".join(sides)


def render_reference() -> list[str]:
    """The side-by-side run against the reference implementation (bench/bench_reference.py)."""
    ref = _load("speed_reference.json")
    if not ref:
        return []
    r, h, c = ref["reference"], ref["hypermask"], ref["configuration"]

    def env(side: dict) -> str:
        e = {
            k: v
            for k, v in (side.get("environment") or side.get("process_settings") or {}).items()
            if k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "HYPERMASK_CPUS_BUSY")
        }
        busy = e.pop("HYPERMASK_CPUS_BUSY", None)
        return (", ".join(f"{k}={v}" for k, v in e.items()) or "OpenMP's default") + (
            f" (chosen by the command: CPUs found busy {busy})" if busy is not None else ""
        )

    load = [
        f"{x['load_average_1min']['before']:.1f} -> {x['load_average_1min']['after']:.1f}" for x in (r, h)
    ]
    out = [
        f"Side by side with the reference implementation (`bench/bench_reference.py`: gmum/HyperMask at "
        f"{r.get('commit', '674bf9b')[:7]}, then `hypermask train`, one after the other on {machine_line(ref['machine'])}; "
        f"`{c['benchmark']}`, beta {c['beta']:g}, lambda {c['lambda']:g}, seed {c['seed']}, {c['threads']} threads, "
        f"{c['iterations_per_task']} iterations per task; the settings compared: "
        f"{'all equal' if ref['settings_match'] else 'NOT all equal'}; {len(ref['edits'])} edits of the reference's copy, "
        "listed in the JSON):",
        "",
        "| | reference | `hypermask train` | ratio |",
        "|---|---|---|---|",
        f"| ms per iteration (validation excluded) | {r['ms_per_iteration']:.2f} | {h['ms_per_iteration']:.2f} | "
        f"{ref['ratio']['ms_per_iteration']:.2f}x |",
        f"| wall, whole process | {_min_s(r['wall_seconds'])} | {_min_s(h['wall_seconds'])} | {ref['ratio']['wall']:.2f}x |",
        f"| peak RSS | {r['peak_rss_gb']:.2f} GB | {h['peak_rss_gb']:.2f} GB | {ref['ratio']['peak_rss']:.2f}x |",
        f"| average accuracy / BWT | {r['average_accuracy']:.2f} / {r['bwt']:.2f} | {h['average_accuracy']:.2f} / "
        f"{h['bwt']:.2f} | |",
        f"| torch, OpenMP settings | {r['torch']}, {env(r)} | {h['torch']}, {env(h)} | |",
        f"| 1-minute load average before -> after | {load[0]} | {load[1]} | |",
        "",
    ]
    return out


def _min_s(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def render_commands() -> str:
    """The two commands' times (bench_suite.py --readme)."""
    r = _load("readme_commands.json")
    if not r:
        return "Not measured yet: `python bench/bench_suite.py --readme --cores 2`.\n"
    m = r["machine"]
    tests, fast = r["tests"]["tests"], r["tests"]["fast_lane"]
    return (
        f"Timed by `python bench/bench_suite.py --readme --cores 2` in a fresh clone of commit "
        f"{r['commit'][:10]}, on {m['cpu']} ({m['logical_cpus']} logical CPUs), torch {m['torch']}, nothing else "
        f"running: the setup (a virtual environment, `pip install` from the lock) {_min_s(r['setup_seconds'])}; "
        f"the `{r['suite']}` pipeline from nothing **{_min_s(r['wall_seconds'])}** "
        f"({sum(len(v) for v in r['runs'].values())} runs, jobs of {r['pipeline_threads']} "
        f"thread{'' if r['pipeline_threads'] == 1 else 's'}); "
        f"the tests **{_min_s(tests['wall_seconds'])}** ({tests['summary'].split(' in ')[0]}); "
        f"the fast lane `{fast['command']}` {_min_s(fast['wall_seconds'])} ({fast['summary'].split(' in ')[0]}).\n"
    )


def _ms(s: float) -> str:
    return f"{1e3 * s:.2f}"


def _mean_sd(xs: list[float]) -> str:
    m = statistics.mean(xs)
    return f"{m:.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{m:.2f}"


def render_gpu() -> str:
    """The GPU block: ceilings, the paper configurations' steps (eager and CUDA graph), torch's
    deterministic fill, a CIFAR-100 epoch, the batched evaluation, whole runs."""
    ceil, step = _load("gpu_ceilings.json"), _load("gpu_step.json")
    if not (ceil and step):
        return "No GPU figures in bench/results.\n"
    g, host = ceil["gpu"], step["machine"]
    bw = ceil["copy_gb_per_s"] * 1e9
    out = [
        f"On one {g['name']} ({g['memory_gib']} GiB, compute capability {g['capability']}, "
        f"{g['multiprocessors']} multiprocessors; driver {g['driver']}, CUDA {g['cuda']}, cuDNN {g['cudnn']}), "
        f"torch {ceil['torch']}, host {host['cpu']} ({host['logical_cpus']} logical CPUs); random inputs of the "
        f"benchmarks' shapes (MNIST and CIFAR-100 are not installable here). Measured ceilings "
        f"(`bench/bench_gpu_ceilings.py`): device copy {ceil['copy_gb_per_s']:.0f} GB/s (read + write), "
        f"float32 product {ceil['gemm_float32_tflops']:.1f} TFLOP/s (TF32 {ceil['gemm_tf32_tflops']:.0f}, "
        f"bf16 {ceil['gemm_bfloat16_tflops']:.0f}; the trainer runs full float32 products).",
        "",
        "Training step (`bench/bench_train_step.py --device cuda`; eager: `training_step` as launched from "
        "Python; CUDA graph: the same step replayed as the trainer runs it, `hypermask/engine/graphs.py`):",
        "",
        "| configuration | task | hypernetwork | eager ms [min, max] | CUDA graph ms [min, max] | GPU busy (profiler) | "
        "memory floor | Adam step alone | evaluation of all tasks | peak GPU memory |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = step["results"] + (_load("gpu_step_task9.json") or {"results": []})["results"]
    for r in sorted((r for r in rows if "error" not in r), key=lambda r: (r["config"], r["task"])):
        gr, prof = r.get("graphed"), r.get("profile") or {}
        busy = (
            f"{prof['kernel_ms_per_iter']:.2f} ms, {prof['kernels_per_iter']:.0f} kernels"
            if "kernel_ms_per_iter" in prof
            else ""
        )
        floor = 40 * r["hnet_parameters"] / bw  # Adam 7 x 4 bytes, the three output products 3 x 4 bytes
        out.append(
            f"| `{r['config']}` | {r['task']} | {r['hnet_parameters'] / 1e6:.1f}M | {_ms(r['sec_per_iter_median'])} "
            f"[{_ms(r['sec_per_iter_min'])}, {_ms(r['sec_per_iter_max'])}] | "
            + (
                f"**{_ms(gr['sec_per_iter_median'])}** [{_ms(gr['sec_per_iter_min'])}, {_ms(gr['sec_per_iter_max'])}]"
                if gr
                else ""
            )
            + f" | {busy} | {_ms(floor)} ms | {_ms(r['optimizer_step_seconds'])} ms | "
            f"{r['eval_all_tasks_seconds']:.2f} s | {r['peak_cuda_mb'] / 1024:.1f} GiB |"
        )
    out += [
        "",
        "Memory floor: 40 bytes per hypernetwork parameter at the copy bandwidth (the fused Adam step "
        "reads parameter, gradient and both moments and writes three of them; the output layer's three "
        "products read its weight twice and write its gradient once).",
        "",
    ]
    for r in step["results"]:
        prof = r.get("profile") or {}
        if "error" in r or "top" not in prof:
            continue
        top = {e["op"]: e for e in prof["top"]}
        adam = 28 * r["hnet_parameters"]
        products = sum(top[k]["ms_per_iter"] for k in ("aten::mm", "aten::addmm") if k in top)
        gemm = max(
            (e for e in prof["top"] if "gemm" in e["op"].lower() and not e["op"].startswith("aten::")),
            key=lambda e: e["ms_per_iter"],
            default=None,
        )
        line = (
            f"* `{r['config']}`, task {r['task']} (profiler): the fused Adam step moves {adam / 1e9:.1f} GB in "
            f"{_ms(r['optimizer_step_seconds'])} ms ({adam / r['optimizer_step_seconds'] / 1e12:.2f} TB/s, "
            f"{100 * adam / r['optimizer_step_seconds'] / bw:.0f}% of the copy bandwidth); the matrix products "
            f"(`aten::mm`, `aten::addmm`) take {products:.2f} ms, against {_ms(12 * r['hnet_parameters'] / bw)} ms "
            f"to move the output layer's bytes"
        )
        if gemm:
            line += f"; the largest, `{gemm['op'][:40]}…`, {gemm['ms_per_iter']:.2f} ms"
        out.append(line + ".")
    out.append("")
    on, off = _load("gpu_step_fill_on.json"), _load("gpu_step_fill_off.json")
    if on and off:
        out += [
            "Torch's deterministic mode fills every new tensor with NaN unless told not to "
            "(`torch.utils.deterministic.fill_uninitialized_memory`); the trainer turns the fill off "
            "(eager steps, before CUDA graphs):",
            "",
            "| configuration | fill on | fill off | one task epoch, fill on | fill off |",
            "|---|---|---|---|---|",
        ]
        for a, b in zip(on["results"], off["results"]):
            ea, eb = a.get("epoch"), b.get("epoch")
            out.append(
                f"| `{a['config']}` | {_ms(a['sec_per_iter_median'])} ms | {_ms(b['sec_per_iter_median'])} ms | "
                + (f"{ea['seconds']:.2f} s | {eb['seconds']:.2f} s |" if ea and eb else "| |")
            )
        out.append("")
    for r in step["results"]:
        e = r.get("epoch")
        if e and "eager_seconds" in e:
            per_seed = e["seconds"] * e["paper_epochs"] * 10 / 60
            out += [
                f"One `{r['config']}` task epoch as the trainer runs it ({e['iterations']} steps of batch "
                f"{r['batch_size']}, then validation, best-validation selection and the scheduler): "
                f"**{e['seconds']:.2f} s** with CUDA graphs, {e['eager_seconds']:.2f} s eager; the paper's "
                f"{e['paper_epochs']} epochs × 10 tasks: about {per_seed:.0f} min of training per seed.",
                "",
            ]
    evals = [_load(f"gpu_eval_{c}.json") for c in ("permuted_mnist", "cifar100_resnet20")]
    if any(evals):
        out += [
            "Every task's mask on every task's test set (`bench/bench_eval_masks.py --device cuda`), "
            "batched (one vmapped call over the stacked masked weights) against the per-task loop:",
            "",
            "| configuration | tasks × test samples | batched | per-task loop | speed-up | largest output difference |",
            "|---|---|---|---|---|---|",
        ]
        for e in (e for e in evals if e):
            out.append(
                f"| `{e['experiment']}` | {e['tasks']} × {e['test_samples_per_task']:,} | "
                f"{e['batched_seconds_median']:.3f} s | {e['per_task_loop_seconds_median']:.3f} s | "
                f"{e['speedup']:.2f}x | {e['max_abs_difference']:.1e} |"
            )
        out.append("")
    runs = _load("gpu_runs.json")
    if runs:
        rs = [r for r in runs["runs"] if "error" not in r]
        out += [
            f"Whole runs (`hypermask train BENCHMARK --seed N --device cuda --no-tracking`, "
            f"`bench/gpu_runs.py`), {rs[0]['device']}, torch {rs[0]['torch_version']}:",
            "",
            "| configuration | CUDA graphs | seeds | average accuracy | BWT | ms/iteration | wall per seed |",
            "|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list] = {}
        for r in rs:
            groups.setdefault((r["experiment"], r["cuda_graphs"]), []).append(r)
        for (exp, graphs), grp in groups.items():
            out.append(
                f"| `{exp}` | {'on' if graphs else 'off'} | {', '.join(str(r['seed']) for r in grp)} | "
                f"{_mean_sd([r['average_accuracy'] for r in grp])} | {_mean_sd([r['bwt'] for r in grp])} | "
                f"{_mean_sd([1e3 * r['seconds_per_iteration'] for r in grp])} | "
                f"{_mean_sd([r['wall_seconds'] for r in grp])} s |"
            )
        for r in (r for r in rs if not r["cuda_graphs"]):
            twin = next(
                (
                    x
                    for x in rs
                    if x["cuda_graphs"] and x["experiment"] == r["experiment"] and x["seed"] == r["seed"]
                ),
                None,
            )
            if twin:
                same = twin["accuracy_matrix"] == r["accuracy_matrix"]
                out.append(
                    f"\n`{r['experiment']}` seed {r['seed']}: the accuracy matrices with and without CUDA "
                    f"graphs are {'identical' if same else 'different'}."
                )
        out.append("")
    return "\n".join(out).strip() + "\n"


def render_methods_step() -> str:
    """Every method's training step (bench/bench_train_step.py --methods ...): one table per JSON,
    methods x benchmarks, each cell the median ms per iteration, the Adam step alone and peak RSS."""
    out = []
    for name in ("methods_fmnist.json", "speed_baselines.json"):
        data = _load(name)
        if not data:
            continue
        rows = [r for r in data["results"] if "error" not in r]
        benchmarks = list(dict.fromkeys(r["config"].split("/")[0] for r in rows))
        cell = {(r["config"].split("/")[0], r["method"]): r for r in rows}
        r0 = rows[0]
        out += [
            f"`bench/results/{name}`: ms per training iteration (median of {r0['repeats']} x "
            f"{r0['iters_per_repeat']}; the Adam step alone) and peak RSS, {r0['threads']} thread(s), on "
            f"{machine_line(data['machine'])}:",
            "",
            "| method | " + " | ".join(f"`{b}`" for b in benchmarks) + " |",
            "|---|" + "---|" * len(benchmarks),
        ]
        for m in dict.fromkeys(r["method"] for r in rows):
            cells = [
                ""
                if (r := cell.get((b, m))) is None
                else f"{1000 * r['sec_per_iter_median']:.2f} ms (Adam {1000 * r['optimizer_step_seconds']:.2f}; "
                f"{r['peak_rss_mb'] / 1024:.2f} GB)"
                for b in benchmarks
            ]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).strip() + "\n"


def render_startup() -> str:
    """The default suite's start-up share, before and after seeds_in_one_job (bench_suite.py --start-up)."""
    r = _load("speed_startup.json")
    if not r:
        return "Not measured yet: `python bench/bench_suite.py --start-up REV --cores 2`.\n"
    out = [
        f"`{r['command']}` (the `{r['suite']}` suite) from nothing in fresh clones, one after the other, "
        f"nothing else running, on {machine_line(r['machine'])}:",
        "",
        "| commit | pipeline wall | runs | the runs' own seconds | their share of the cores' time | jobs |",
        "|---|---|---|---|---|---|",
    ]
    for side in ("before", "after"):
        x = r[side]
        jobs = ", ".join(f"{k} {v}" for k, v in x["jobs"].items())
        adopting = (
            f" ({x['seed_jobs_adopting']} seed jobs adopting staged outputs)"
            if x["seed_jobs_adopting"]
            else ""
        )
        out.append(
            f"| {side}: {x['commit'][:10]} | {_min_s(x['wall_seconds'])} | {x['runs']} | {x['run_seconds']:.0f} s "
            f"| **{100 * x['in_run_share']:.0f}%** | {jobs}{adopting} |"
        )
    return "\n".join(out) + "\n"


BLOCKS = {
    ("<!-- speed -->", "<!-- end speed -->"): render,
    ("<!-- speed gpu -->", "<!-- end speed gpu -->"): render_gpu,
    ("<!-- speed methods -->", "<!-- end speed methods -->"): render_methods_step,
    ("<!-- commands -->", "<!-- end commands -->"): render_commands,
    ("<!-- speed startup -->", "<!-- end speed startup -->"): render_startup,
}
