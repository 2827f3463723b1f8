"""The pipeline plan: which jobs a suite needs, their files and their commands.

The one definition both orchestrators read: the Snakemake rules (workflow/rules/*.smk) take
their paths and commands from here, and `hypermask dvc-yaml` writes dvc.yaml from here, so
the two pipelines cannot drift (tests/pipeline/test_pipeline.py checks that they agree).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hypermask.config import (
    ConfigError,
    ExperimentConfig,
    ParamsFile,
    SweepConfig,
    experiment_config,
    load_yaml,
    parse_params,
    split_name,
    training_fingerprint,
)
from hypermask.records.provenance import (
    CODE,  # the package: a code dependency of every stage
)
from hypermask.records.runs import RUN_FILES, read_metrics, run_relpath, stale_keys
from hypermask.records.runs import run_dir as run_paths

SWEEP_FILES = ("best_params.yaml", "trials.csv", "optimisation_history.png")
# The studies' DVC pipeline (Plan.dvc_stages(studies=True)), beside the repository's dvc.yaml:
# `dvc repro` leaves it alone; `dvc repro workflow/studies/dvc.yaml` runs it.
STUDIES_DVC_YAML = "workflow/studies/dvc.yaml"
TABLE_FILES = ("csv", "md", "tex", "html")
KEEP_FREED_MEMORY = "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647"  # glibc, read at process start


def keep_freed_memory_env() -> dict[str, str]:
    """KEEP_FREED_MEMORY as environment variables (for a child process, or the process itself
    started again)."""
    return dict(kv.split("=", 1) for kv in KEEP_FREED_MEMORY.split())


@dataclass
class Plan:
    params: ParamsFile
    suite: str
    params_path: str = "params.yaml"
    raw: dict = field(default_factory=dict)  # the file as written (DVC params must exist in it)
    jobs_params: str = "params.yaml"  # the file as the jobs name it (relative to where they run)
    _configs: dict = field(default_factory=dict, repr=False)  # experiment -> its validated config

    @classmethod
    def from_file(
        cls,
        path: str | Path = "params.yaml",
        suite: str | None = None,
        raw: Any = None,
        jobs_dir: str | Path = ".",
    ) -> Plan:
        """The plan of a params file; `raw`: its content when the caller has read it already;
        `jobs_dir`: where the jobs run (Snakemake's working directory, dvc.yaml's folder)."""
        if raw is None:
            raw = load_yaml(path)  # read once: validated here, and DVC's params must exist as written
        params = parse_params(raw, path)
        suite = suite or params.suite
        if suite is None:
            raise ConfigError(f"{path}: suite: no suite chosen (set `suite:` or pass one)")
        if suite not in params.suites:
            raise ConfigError(f"{path}: suite: unknown suite {suite!r} (known: {', '.join(params.suites)})")
        return cls(params, suite, str(path), raw, os.path.relpath(path, jobs_dir))

    def _keys(self, *dotted: str) -> list[str] | list[dict[str, list[str]]]:
        """The params keys a DVC stage depends on, those present in the file (DVC requires them)."""
        out = []
        for key in dotted:
            node: Any = self.raw
            for k in key.split("."):
                node = node.get(k) if isinstance(node, dict) else None
            if node is not None:
                out.append(key)
        # DVC reads dotted keys from ./params.yaml; those of another file are listed under its name
        return out if self.jobs_params == "params.yaml" else [{self.jobs_params: out}]

    # ------------------------------------------------------------------ what the suite holds
    def tracking_uri(self) -> str:
        """The one MLflow store of every job (tracking.resolve_uri's order)."""
        from hypermask.tracking.store import resolve_uri

        return resolve_uri(None, self.params.pipeline.tracking_uri, Path(self.params_path).resolve().parent)

    @property
    def results(self) -> str:
        return self.params.pipeline.results

    def experiments(self) -> list[str]:
        """The suite's (benchmark, method) pairs as BENCHMARK/METHOD."""
        return self.params.suite_experiments(self.suite)

    def config(self, exp: str) -> ExperimentConfig:
        if exp not in self._configs:
            self._configs[exp] = experiment_config(self.params, exp, self.params_path)
        return self._configs[exp]

    def runs(self) -> list[tuple[str, int]]:
        return [(e, s) for e in self.experiments() for s in self.config(e).seeds]

    def sources(self) -> dict[str, str]:
        """source -> the first experiment of the suite that reads it (its data settings)."""
        out: dict[str, str] = {}
        for e in self.experiments():
            out.setdefault(self.config(e).data.source, e)
        return out

    def study(self, exp: str) -> SweepConfig | None:
        return self.params.sweeps.study(*split_name(exp))

    def sweeps(self) -> list[str]:
        """The suite's pairs that have a study (sweeps.benchmarks x sweeps.spaces)."""
        return [e for e in self.experiments() if self.study(e) is not None]

    def uses_best(self, exp: str) -> bool:
        sc = self.study(exp)
        return sc is not None and sc.use_best

    @staticmethod
    def stage(exp: str) -> str:
        """A DVC stage-name part: BENCHMARK_METHOD (method names hold no underscore)."""
        return exp.replace("/", "_")

    # ------------------------------------------------------------------ files
    def prepared(self, source: str) -> list[str]:
        base = f"{self.params.pipeline.data_cache}/{source}"
        return [f"{base}.npz", f"{base}.json"]

    def run_dir(self, exp: str, seed: int | str) -> str:
        return f"{self.results}/{run_relpath(exp, seed)}"

    def run_files(self, exp: str, seed: int | str) -> list[str]:
        return [f"{self.run_dir(exp, seed)}/{f}" for f in RUN_FILES]

    def seeds_in_one_job(self, exp: str) -> bool:
        """Whether one job trains the experiment's seeds in one process (pipeline.seeds_in_one_job,
        records/staging.py), each seed's own job then adopting its staged outputs."""
        benchmark = self.params.base_benchmark(split_name(exp)[0])  # a derived benchmark: its base's
        return benchmark in self.params.pipeline.seeds_in_one_job and len(self.config(exp).seeds) > 1

    def seeds_marker(self, exp: str) -> str:
        """The output of the job that trains an experiment's seeds in one process."""
        return f"{self.results}/runs/{exp}/seeds.done"

    def seeds_inputs(self, exp: str) -> list[str]:
        """What a seed's own job waits for: the experiment's seeds job, where there is one."""
        return [self.seeds_marker(exp)] if self.seeds_in_one_job(exp) else []

    def outputs_current(self, exp: str, seed: int | str) -> bool:
        """Whether a seed's outputs hold the experiment's settings as params.yaml gives them now
        (the config its metrics.json recorded; records/runs.stale_keys). The train rule waits
        for the seeds job's marker as an `ancient` input only for such a seed: Snakemake never
        follows a rerun job to a job whose input is an existing ancient file, its own params
        trigger notwithstanding, so a seed of edited settings must read the marker plainly to
        be rerun (adopting what the seeds job trained) by the same Snakemake."""
        run, _ = read_metrics(run_paths(self.results, exp, int(seed)), exp, int(seed))
        return run is not None and not stale_keys(run, self.config(exp))

    def sweep_files(self, exp: str) -> list[str]:
        return [f"{self.results}/sweeps/{exp}/{f}" for f in SWEEP_FILES]

    def sweep_worker_files(self, exp: str) -> list[str]:
        """The markers of a study's worker jobs (none with sweeps.workers = 1: the study's own job
        runs every trial); the study's job then only writes its outputs."""
        n = self.params.sweeps.workers
        return [f"{self.results}/sweeps/{exp}/workers/{i}.done" for i in range(1, n + 1)] if n > 1 else []

    def table_files(self, suite: str | None = None) -> list[str]:
        return [f"{self.results}/tables/{suite or self.suite}.{x}" for x in TABLE_FILES]

    def figure_patterns(self) -> list[str]:
        """The Snakemake report's patterns of the suite's figures (hypermask/reporting/plots.py):
        `benchmark` and `kind` (methods, per_task, memory, memory_class_il, METHOD_accuracy_matrix)
        name its subcategory and its label; the benchmark alternatives keep the split unambiguous
        where names hold underscores."""
        import re

        benchmarks = "|".join(
            re.escape(b) for b in dict.fromkeys(split_name(e)[0] for e in self.experiments())
        )
        patterns = [f"{{benchmark,{benchmarks}}}_{{kind,[A-Za-z0-9_]+}}.png"]
        if self.params.suites[self.suite].axes:  # the axes' figures: axis_AXIS_BENCHMARK.png
            patterns.append("{benchmark,axis}_{kind,[A-Za-z0-9_]+}.png")
        return patterns

    def figures_dir(self, suite: str | None = None) -> str:
        return f"{self.results}/figures/{suite or self.suite}"

    def train_inputs(self, exp: str) -> list[str]:
        inputs = [self.prepared(self.config(exp).data.source)[0]]
        if self.uses_best(exp):
            inputs.append(self.sweep_files(exp)[0])
        return inputs

    # ------------------------------------------------------------------ what makes a job stale
    def train_settings(self, exp: str) -> str:
        """What a train job's results depend on (Snakemake `params:`, compared at every run)."""
        return training_fingerprint(self.config(exp))

    def sweep_settings(self, exp: str) -> str:
        """What a sweep's results depend on: the experiment's settings and its sweep block."""
        study = self.study(exp)
        assert study is not None, f"{exp} has no study"  # asked of self.sweeps() only
        sweep = study.model_dump(mode="json")
        return json.dumps(
            {
                "experiment": json.loads(self.train_settings(exp)),
                "sweep": sweep,
                "storage": self.params.sweeps.storage,
            },
            sort_keys=True,
        )

    # ------------------------------------------------------------------ commands
    @property
    def _hypermask(self) -> str:
        """The hypermask command reading this plan's params file: `--params FILE` unless it is
        the default ./params.yaml (`snakemake --config params=FILE`: every job reads FILE)."""
        if self.jobs_params == "params.yaml":
            return "hypermask"
        return f"hypermask --params {shlex.quote(self.jobs_params)}"

    def prepare_cmd(self, source: str) -> str:
        return f"{self._hypermask} prepare {self._which(self.sources()[source])}"

    def _env(self, exp: str) -> str:
        """Environment of a training process (pipeline.keep_freed_memory): glibc serves large
        blocks from a heap it never trims, instead of mmap and munmap on every step."""
        benchmark = self.params.base_benchmark(split_name(exp)[0])
        return KEEP_FREED_MEMORY + " " if benchmark in self.params.pipeline.keep_freed_memory else ""

    @staticmethod
    def _which(exp: str) -> str:
        benchmark, method = split_name(exp)
        return f"{benchmark} --method {method}"

    def sweep_cmd(self, exp: str, worker: bool = False) -> str:
        """A study's job; `worker`: one of sweeps.workers jobs, which runs trials until the
        budget is taken and writes no outputs."""
        return f"{self._env(exp)}{self._hypermask} sweep {self._which(exp)}" + (" --worker" if worker else "")

    def train_cmd(self, exp: str, seed: int | str) -> str:
        """A seed's job: it trains the seed (DVC's stages: one process per seed)."""
        return self._train(exp, str(seed))

    def seed_job_cmd(self, exp: str, seed: int | str) -> str:
        """A seed's Snakemake job: where the experiment's seeds job ran (seeds_in_one_job), it
        adopts that seed's staged outputs in a process of 0.1 s, and trains the seed only when
        nothing is staged (a forced rerun of this seed)."""
        cmd = self.train_cmd(exp, seed)
        if self.seeds_in_one_job(exp):
            return f"(python -m hypermask.records.staging {self.run_dir(exp, seed)} || {cmd})"
        return cmd

    def seeds_cmd(self, exp: str) -> str:
        """The job that trains every seed of an experiment in one process, each seed's outputs staged."""
        return self._train(exp, " ".join(str(s) for s in self.config(exp).seeds)) + " --stage"

    def _train(self, exp: str, seeds: str) -> str:
        cmd = (
            f"{self._env(exp)}{self._hypermask} train {self._which(exp)} --seed {seeds} --quiet --restart-on-change "
            f"--threads {self.params.pipeline.threads}"
        )
        if self.uses_best(exp):
            cmd += f" --override {self.sweep_files(exp)[0]}"
        return cmd

    def tables_cmd(self, suite: str | None = None) -> str:
        return f"{self._hypermask} tables {suite or self.suite}"

    # ------------------------------------------------------------------ DVC
    def _settings_keys(self, exp: str) -> list[str]:
        """The params.yaml keys an experiment's settings are merged from (config.experiment_config):
        a variant's base method's first."""
        benchmark, method = split_name(exp)
        base = self.params.implementation(method)
        point = self.params.axis_points.get(benchmark)  # a derived benchmark: its base's, and its axis
        own = self.params.base_benchmark(benchmark)
        return [
            "defaults",
            f"benchmarks.{own}",
            *([f"suites.{point.suite}.axes.{point.axis}"] if point is not None else []),
            *(
                f"methods.{m}.{k}"
                for m in dict.fromkeys([base, method])
                for k in ("settings", f"benchmarks.{own}")
            ),
        ]

    def dvc_stages(self, studies: bool = False) -> dict[str, Any]:
        """DVC's stages. By default the pipeline `dvc repro` runs: the same work as Snakemake's
        `all_tables` (prepared data, the studies whose best values train the seeds, that is
        `sweeps.use_best`, every seed, the tables). With `studies`: every other study of the
        suite (Snakemake's `all_sweeps`), the pipeline of STUDIES_DVC_YAML, run on request
        (`dvc repro workflow/studies/dvc.yaml`): their values are committed in params.yaml, and
        rerunning them is hours, not the reproduction of the tables."""
        if studies:
            return {
                f"sweep_{self.stage(exp)}": self._sweep_stage(exp)
                for exp in self.sweeps()
                if not self.uses_best(exp)
            }
        stages: dict[str, Any] = {}
        for source in self.sources():
            npz, meta = self.prepared(source)
            stages[f"prepare_{source}"] = {
                "cmd": self.prepare_cmd(source),
                "deps": [f"{CODE}/data"],  # the sources, their checks and the prepared cache
                "params": self._keys(
                    f"benchmarks.{self.params.base_benchmark(split_name(self.sources()[source])[0])}.data"
                ),
                "outs": [npz, {meta: {"cache": False}}],
            }
        for exp in self.sweeps():
            if self.uses_best(exp):  # an input of its runs
                stages[f"sweep_{self.stage(exp)}"] = self._sweep_stage(exp)
        for exp, seed in self.runs():
            metrics, csv, png = self.run_files(exp, seed)
            stages[f"train_{self.stage(exp)}_{seed}"] = {
                "cmd": self.train_cmd(exp, seed),
                "deps": [CODE, *self.train_inputs(exp)],
                "params": self._keys(*self._settings_keys(exp)),
                "outs": [{f"{self.run_dir(exp, seed)}/checkpoints": {"persist": True}}, png],
                "metrics": [{metrics: {"cache": False}}],
                "plots": [{csv: {"cache": False, "x": "after_task"}}],
            }
        stages[f"tables_{self.suite}"] = {
            "cmd": self.tables_cmd(),
            "deps": [CODE, *[self.run_files(e, s)[0] for e, s in self.runs()]],
            "params": self._keys(f"suites.{self.suite}"),  # DVC's params are dotted keys of params.yaml
            "outs": [
                *[{f: {"cache": False}} for f in self.table_files()],
                {self.figures_dir(): {"cache": False}},
            ],
        }
        return stages

    def _sweep_stage(self, exp: str) -> dict[str, Any]:
        best, trials, history = self.sweep_files(exp)
        return {
            "cmd": self.sweep_cmd(exp),
            "deps": [CODE, self.prepared(self.config(exp).data.source)[0]],
            "params": self._keys(*self._settings_keys(exp), "sweeps"),
            "outs": [{best: {"cache": False}}, {trials: {"cache": False}}, {history: {"cache": False}}],
        }

    def dvc_yaml(self, studies: bool = False, wdir: str | None = None) -> str:
        """dvc.yaml's text (dvc_stages); `wdir`: where its stages run, relative to the file (the
        studies' file lives under workflow/studies/ and runs its jobs at the repository root)."""
        what = "the studies of" if studies else "the pipeline of"
        flag = " --studies" if studies else ""
        head = (
            f"# Generated by `hypermask dvc-yaml{flag}` from {self.jobs_params} and hypermask/pipeline/plan.py (the plan the\n"
            f"# Snakemake rules read too). Do not edit: change {self.jobs_params} and regenerate.\n"
            f"# Suite: {self.suite} ({what} it)\n"
        )
        stages = self.dvc_stages(studies)
        if wdir is not None and wdir != ".":
            stages = {name: {"wdir": wdir, **st} for name, st in stages.items()}
        return head + yaml.safe_dump({"stages": stages}, sort_keys=False, width=200)
