"""The pipeline for real: Snakemake and DVC runs of a tiny suite on real data (digits),
their agreement, rerunning one seed with each tool, DVC push/pull, tables with a missing seed."""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, tiny_suite, write_params
from hypermask.cli.main import main
from hypermask.pipeline.plan import STUDIES_DVC_YAML, Plan
from hypermask.records.staging import stage_copy

pytestmark = pytest.mark.slow  # real Snakemake, DVC and Optuna runs: minutes (the fast lane skips them)

BIN = Path(sys.executable).parent


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env(cwd))
    if check and out.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def project(tmp: Path, params: dict) -> Path:
    """A project folder: the workflow, the code (a DVC dependency) and a params.yaml."""
    d = tmp / "proj"
    d.mkdir()
    # the rules, without the committed suite's studies pipeline (generated per suite; a test that
    # needs it writes its own with `hypermask dvc-yaml --studies`)
    shutil.copytree(ROOT / "workflow", d / "workflow", ignore=shutil.ignore_patterns("studies"))
    shutil.copytree(ROOT / "profiles", d / "profiles")
    shutil.copy(ROOT / "Snakefile", d / "Snakefile")
    shutil.copytree(ROOT / "hypermask", d / "hypermask", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".dvcignore", d / ".dvcignore")
    write_params(d / "params.yaml", params)
    return d


def snakemake(d: Path, *args: str) -> subprocess.CompletedProcess:
    return sh([str(BIN / "snakemake"), "--cores", "2", *args], d)


@pytest.fixture(scope="module")
def snake_run(tmp_path_factory):
    d = project(tmp_path_factory.mktemp("snake"), tiny_suite())
    snakemake(d, "all_tables", "all_sweeps")
    return d


def test_snakemake_builds_tables_figures_sweep_and_one_mlflow_store(snake_run):
    d = snake_run
    table = (d / "results/tables/demo.csv").read_text()
    assert "tiny/hypermask,tiny,hypermask,2/2" in table and "tiny/finetune,tiny,finetune,2/2" in table
    md = (d / "results/tables/demo.md").read_text()
    assert md.count("±") >= 8 and "Task inferred by entropy: task accuracy" in md
    entropy = md.split("### Task inferred by entropy: task accuracy")[1].split("###")[0]
    assert "| finetune  | n/a" not in entropy  # a head per task: fine-tuning infers the task too
    assert "\\begin{tabular}" in (d / "results/tables/demo.tex").read_text()
    html = (d / "results/tables/demo.html").read_text()
    assert html.count("<h2>") == md.count("### ") and "<table" in html and "±" in html
    for f in ("tiny_methods", "tiny_per_task", "tiny_memory", "tiny_hypermask_accuracy_matrix"):
        assert (d / "results/figures/demo" / f"{f}.png").stat().st_size > 1000
        assert (d / "results/figures/demo" / f"{f}.pdf").exists() or "matrix" in f  # vector beside it
    best = yaml.safe_load((d / "results/sweeps/tiny/hypermask/best_params.yaml").read_text())
    assert set(best) == {"hypermask.beta"}
    trials = (d / "results/sweeps/tiny/hypermask/trials.csv").read_text()
    assert trials.count("COMPLETE") + trials.count("PRUNED") == 3
    for rule, name in (("train", "tiny/hypermask/seed_1"), ("prepare", "digits")):
        assert (d / "logs" / rule / f"{name}.log").exists()
        assert (d / "benchmarks" / rule / f"{name}.tsv").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{d / 'mlflow.db'}")
    runs = {e.name: client.search_runs([e.experiment_id]) for e in client.search_experiments()}
    # one MLflow experiment per benchmark, its runs (method, seed) tagged for the UI's grouping
    from hypermask.tracking.summary import SUMMARY_TAG

    parents = {r.data.tags["method"]: r for r in runs["tiny"] if SUMMARY_TAG in r.data.tags}
    seeds = [r for r in runs["tiny"] if SUMMARY_TAG not in r.data.tags]
    by_method = {m: [r for r in seeds if r.data.tags["method"] == m] for m in ("hypermask", "finetune")}
    assert len(seeds) == 4 and all(len(v) == 2 for v in by_method.values())
    assert all(r.data.tags["protocol"] == "task-incremental" for r in runs["tiny"])
    assert all(r.data.tags["suites"] == "demo" for r in seeds)  # the suites that list the pair
    # one parent run per method, the table's figures on it, its seeds nested under it
    csv = pd.read_csv(d / "results/tables/demo.csv").set_index("method")
    assert set(parents) == {"hypermask", "finetune"}
    for m, parent in parents.items():
        assert parent.info.run_name == m and parent.info.status == "FINISHED"
        assert {r.data.tags["mlflow.parentRunId"] for r in by_method[m]} == {parent.info.run_id}
        for key in (
            "average_accuracy_mean",
            "average_accuracy_std",
            "average_accuracy_ci_low",
            "memory_kib_mean",
        ):
            assert parent.data.metrics[key] == pytest.approx(csv.loc[m, key], abs=1e-3), key
    assert "average_accuracy_p_holm_vs_hypermask" in parents["finetune"].data.metrics
    sweep_runs = runs["sweep_tiny/hypermask"]
    parents = [r for r in sweep_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in sweep_runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


def _snakemake_jobs(d: Path, *flags: str) -> dict[str, set[str]]:
    """command -> outputs, from a dry run (what Snakemake would execute; all of it by default)."""
    out = snakemake(d, "-n", "-p", *(flags or ("--forceall",)), "all_tables", "all_sweeps").stdout
    jobs: dict[str, set[str]] = {}
    for block in out.split("\nrule ")[1:] + out.split("\nlocalrule ")[1:]:
        m_out = re.search(r"^\s+output: (.*)$", block, re.M)
        m_cmd = re.search(r"^Shell command: (.*?)(?: > \S+ 2>&1)?$", block, re.M)
        if m_out and m_cmd and m_cmd.group(1) != "None":
            jobs[m_cmd.group(1).strip()] = {p.strip() for p in m_out.group(1).split(",")}
    return jobs


def _dvc_stages(d: Path) -> dict[str, set[str]]:
    """command -> outputs, over dvc.yaml and the studies' workflow/studies/dvc.yaml."""
    stages = yaml.safe_load((d / "dvc.yaml").read_text())["stages"]
    studies = d / STUDIES_DVC_YAML
    if studies.exists():
        stages = {**stages, **(yaml.safe_load(studies.read_text())["stages"] or {})}
    out = {}
    for st in stages.values():
        files = set()
        for key in ("outs", "metrics", "plots"):
            for o in st.get(key, []):
                files.add(o if isinstance(o, str) else next(iter(o)))
        out[st["cmd"]] = files
    return out


def test_snakemake_and_dvc_declare_the_same_commands_and_outputs(tmp_path):
    d = project(tmp_path, tiny_suite())
    assert main(["--params", str(d / "params.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    studies = ["--params", str(d / "params.yaml"), "dvc-yaml", "--studies", "-o", str(d / STUDIES_DVC_YAML)]
    assert main(studies) == 0
    snk, dvc = _snakemake_jobs(d), _dvc_stages(d)
    assert set(snk) == set(dvc), set(snk) ^ set(dvc)
    for cmd, outs in snk.items():
        extra = dvc[cmd] - outs
        assert outs <= dvc[cmd], cmd
        assert all(p.endswith("/checkpoints") for p in extra), extra  # DVC also caches checkpoints


def test_committed_dvc_yaml_and_schema_are_generated_from_params():
    plan = Plan.from_file(ROOT / "params.yaml", jobs_dir=ROOT)
    assert (ROOT / "dvc.yaml").read_text() == plan.dvc_yaml(), "run: hypermask dvc-yaml -o dvc.yaml"
    assert (ROOT / STUDIES_DVC_YAML).read_text() == plan.dvc_yaml(studies=True, wdir="../.."), (
        f"run: hypermask dvc-yaml --studies -o {STUDIES_DVC_YAML}"
    )
    out = subprocess.run(
        [str(BIN / "hypermask"), "schema"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert (ROOT / "workflow/schemas/params.schema.json").read_text() == out.stdout, (
        "run: hypermask schema > workflow/schemas/params.schema.json"
    )


def test_workflow_rejects_bad_params_before_any_job(tmp_path):
    p = tiny_suite()
    p["methods"]["hypermask"]["settings"]["hypermask"]["sparsity"] = 120
    d = project(tmp_path, p)
    out = sh([str(BIN / "snakemake"), "--cores", "1", "-n", "all_tables"], d, check=False)
    assert out.returncode != 0
    assert "methods.hypermask.hypermask.sparsity" in out.stdout + out.stderr
    p = tiny_suite()
    p["pipeline"] = {"threads": "many"}
    write_params(d / "params.yaml", p)
    out = sh([str(BIN / "snakemake"), "--cores", "1", "-n", "all_tables"], d, check=False)
    assert out.returncode != 0 and "threads" in out.stdout + out.stderr


def test_another_params_file_is_read_by_every_job_of_snakemake_and_dvc(tmp_path):
    """`snakemake --config params=FILE` and `hypermask --params FILE dvc-yaml`: each job (data,
    training, tables) reads FILE, not the ./params.yaml beside it, which here sets other
    iterations (a job reading it would train another experiment)."""
    p = tiny_suite()
    p["suites"]["demo"]["methods"] = ["finetune"]
    p["benchmarks"]["tiny"]["seeds"] = [1]
    d = project(tmp_path, p)
    other = copy.deepcopy(p)
    other["benchmarks"]["tiny"]["train"]["iterations"] = 20
    write_params(d / "other.yaml", other)
    metrics = d / "results/runs/tiny/finetune/seed_1/metrics.json"
    snakemake(d, "all_tables", "--config", "params=other.yaml")
    assert json.loads(metrics.read_text())["config"]["train"]["iterations"] == 20
    assert (d / "results/tables/demo.md").exists()
    shutil.rmtree(d / "results")
    sh(["git", "init", "-q"], d)
    sh([str(BIN / "dvc"), "init", "-q"], d)
    assert main(["--params", str(d / "other.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    sh([str(BIN / "dvc"), "repro"], d)
    assert json.loads(metrics.read_text())["config"]["train"]["iterations"] == 20
    other["benchmarks"]["tiny"]["train"]["iterations"] = 30  # an edit of FILE makes its stages stale
    write_params(d / "other.yaml", other)
    assert "train_tiny_finetune_1" in sh([str(BIN / "dvc"), "status"], d).stdout


def test_rerun_one_seed_with_snakemake_retrains_it_alone(snake_run):
    d = snake_run
    m1 = d / "results/runs/tiny/hypermask/seed_1/metrics.json"
    m2 = d / "results/runs/tiny/hypermask/seed_2/metrics.json"
    before1, before2 = json.loads(m1.read_text()), m2.stat().st_mtime_ns
    snakemake(d, "--force", str(m1.relative_to(d)))
    after1 = json.loads(m1.read_text())
    assert after1["finished_at"] >= before1["finished_at"] and after1["wall_seconds"] > 0
    assert "forced rerun" in (d / "logs/train/tiny/hypermask/seed_1.log").read_text()
    assert after1["accuracy_matrix"] == before1["accuracy_matrix"]  # deterministic retraining
    assert m2.stat().st_mtime_ns == before2  # the other seed untouched


def test_seeds_in_one_job_train_in_one_process_and_keep_their_own_jobs(tmp_path):
    """pipeline.seeds_in_one_job: one process trains an experiment's seeds (staged), each
    seed's job adopts its outputs; the results equal a seed trained alone; forcing one seed
    retrains it alone; a seed added later trains alone in the seeds job; nothing finished is
    trained again."""
    p = tiny_suite()
    p["sweeps"] = {}
    p["benchmarks"]["tiny"]["seeds"] = [1, 2, 3]
    p["pipeline"] = {"seeds_in_one_job": ["tiny"]}
    d = project(tmp_path, p)
    snakemake(d, "all_tables")
    runs = {
        (m, s): d / f"results/runs/tiny/{m}/seed_{s}" for m in ("hypermask", "finetune") for s in (1, 2, 3)
    }
    for (m, s), run in runs.items():
        assert (run / "metrics.json").is_file() and not (run / "staged").exists()
        assert "outputs adopted" in (d / f"logs/train/tiny/{m}/seed_{s}.log").read_text()
    seeds_log = (d / "logs/train/tiny/hypermask/seeds.log").read_text()
    assert seeds_log.count("MLflow store") == 1  # one process for the three seeds
    # the same numbers as the seed trained alone, in a process of its own
    alone = tmp_path / "alone"
    sh(
        [
            str(BIN / "hypermask"),
            "train",
            "tiny",
            "--seed",
            "2",
            "--quiet",
            "--threads",
            "2",
            "--no-tracking",
            "--results",
            str(alone),
        ],
        d,
    )
    together = json.loads((runs["hypermask", 2] / "metrics.json").read_text())
    assert (
        json.loads((alone / "runs/tiny/hypermask/seed_2/metrics.json").read_text())["accuracy_matrix"]
        == together["accuracy_matrix"]
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{d / 'mlflow.db'}")
    tiny = client.get_experiment_by_name("tiny")
    seed_runs = [
        r for r in client.search_runs([tiny.experiment_id]) if "hypermask.summary_of" not in r.data.tags
    ]
    assert len(seed_runs) == 6  # one MLflow run per seed (beside the tables' parent run per method)

    mtimes = {k: (r / "metrics.json").stat().st_mtime_ns for k, r in runs.items()}
    snakemake(d, "--force", str((runs["hypermask", 2] / "metrics.json").relative_to(d)))
    assert "forced rerun" in (d / "logs/train/tiny/hypermask/seed_2.log").read_text()
    assert (
        json.loads((runs["hypermask", 2] / "metrics.json").read_text())["accuracy_matrix"]
        == together["accuracy_matrix"]
    )
    assert all(
        (r / "metrics.json").stat().st_mtime_ns == mtimes[k] for k, r in runs.items() if k != ("hypermask", 2)
    )
    assert (d / "logs/train/tiny/hypermask/seeds.log").read_text() == seeds_log  # the seeds job did not run
    assert {_stage_name(c) for c in _snakemake_jobs(d, "--rerun-incomplete")} == {"tables_demo"}

    snakemake(d, "all_tables")
    marker = d / Plan.from_file(d / "params.yaml", "demo").seeds_marker("tiny/finetune")
    marker.unlink()  # as after `dvc pull` into a new clone
    assert not _snakemake_jobs(d, "--rerun-incomplete")  # not needed while its seeds are current
    p["benchmarks"]["tiny"]["seeds"] = [1, 2, 3, 4]  # a seed added: trained alone by the seeds jobs
    write_params(d / "params.yaml", p)
    before = {k: json.loads((r / "metrics.json").read_text()) for k, r in runs.items()}
    logs = {k: d / f"logs/train/tiny/{k[0]}/seed_{k[1]}.log" for k in runs}
    log_before = {k: f.read_text() for k, f in logs.items()}
    snakemake(d, "all_tables")
    for k, r in runs.items():  # hypermask's seed jobs did not run; finetune's (no marker) adopted them again
        assert json.loads((r / "metrics.json").read_text()) == before[k] and not (r / "staged").exists()
        assert (
            logs[k].read_text() == log_before[k]
            if k[0] == "hypermask"
            else logs[k].read_text().startswith(f"results/runs/tiny/finetune/seed_{k[1]}: outputs adopted")
        )
    for m in ("hypermask", "finetune"):
        assert json.loads((d / f"results/runs/tiny/{m}/seed_4/metrics.json").read_text())["seed"] == 4
        assert "outputs adopted" in (d / f"logs/train/tiny/{m}/seed_4.log").read_text()
    assert "4/4" in (d / "results/tables/demo.csv").read_text()

    # The marker missing and one seed the only target: the seeds job stages copies of the other
    # seeds' current outputs, which no job adopts; they are dropped when Snakemake ends, so a
    # later forced rerun of one of those seeds trains it instead of adopting a copy.
    marker.unlink()
    (runs["finetune", 1] / "metrics.json").unlink()
    snakemake(d, str((runs["finetune", 1] / "metrics.json").relative_to(d)))
    assert "outputs adopted" in logs["finetune", 1].read_text()
    assert not any((d / f"results/runs/tiny/finetune/seed_{s}/staged").exists() for s in (1, 2, 3, 4))
    snakemake(d, "--force", str((runs["finetune", 3] / "metrics.json").relative_to(d)))
    assert "outputs adopted" not in logs["finetune", 3].read_text()
    assert (
        json.loads((runs["finetune", 3] / "metrics.json").read_text())["accuracy_matrix"]
        == before["finetune", 3]["accuracy_matrix"]
    )
    # A killed Snakemake runs no handler and leaves such copies: the next Snakemake drops them
    # before its first job, so the forced rerun still trains.
    stage_copy(runs["finetune", 2])
    snakemake(d, "--force", str((runs["finetune", 2] / "metrics.json").relative_to(d)))
    assert (
        "outputs adopted" not in logs["finetune", 2].read_text()
        and not (runs["finetune", 2] / "staged").exists()
    )

    # An edited setting: one Snakemake retrains the experiment's seeds in its seeds job, every
    # seed's job adopts them and the tables are rebuilt; nothing is left for a second Snakemake.
    p["methods"]["finetune"]["benchmarks"]["tiny"]["train"]["lr"] = 2e-3
    write_params(d / "params.yaml", p)
    hypermask_mtimes = {s: (runs["hypermask", s] / "metrics.json").stat().st_mtime_ns for s in (1, 2, 3)}
    snakemake(d, "all_tables")
    for s in (1, 2, 3, 4):
        run = d / f"results/runs/tiny/finetune/seed_{s}"
        assert json.loads((run / "metrics.json").read_text())["config"]["train"]["lr"] == 2e-3
        assert not (run / "staged").exists()
    assert all(
        (runs["hypermask", s] / "metrics.json").stat().st_mtime_ns == hypermask_mtimes[s] for s in (1, 2, 3)
    )
    table = pd.read_csv(d / "results/tables/demo.csv").set_index("experiment")
    accs = [
        json.loads((d / f"results/runs/tiny/finetune/seed_{s}/metrics.json").read_text())["average_accuracy"]
        for s in (1, 2, 3, 4)
    ]
    assert table.loc["tiny/finetune", "average_accuracy_mean"] == pytest.approx(
        sum(accs) / 4, abs=1e-4
    )  # 4 decimals
    assert not _snakemake_jobs(d, "--rerun-incomplete")


def git_clone(tmp: Path) -> Path:
    """A real `git clone` of this repository's committed state: git's ignore rules, the
    committed .dvc/ and dvc.yaml, nothing untracked (a copied tree hid a `dvc repro` that
    failed for every new user)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    d = tmp / "clone"
    sh(["git", "clone", "-q", str(ROOT), str(d)], tmp)
    return d


def test_dvc_repro_in_a_fresh_clone_as_the_readme_says(tmp_path):
    """The README's `dvc repro` in a fresh clone of the repository, as committed: the same work
    as `snakemake all_tables` (data, runs, tables), not the suite's Optuna studies (once, a fresh
    clone's `dvc repro` was still on the first of 28 studies after 10 minutes); those run on
    request with `dvc repro workflow/studies/dvc.yaml`, as `snakemake all_sweeps`."""
    d = git_clone(tmp_path)
    assert "dvc.lock" not in sh(["git", "check-ignore", "-v", "dvc.lock"], d, check=False).stdout
    committed = yaml.safe_load((d / STUDIES_DVC_YAML).read_text())["stages"]
    assert committed and all(
        name.startswith("sweep_") and st["wdir"] == "../.." for name, st in committed.items()
    )
    write_params(d / "params.yaml", tiny_suite())  # the committed dvc.yaml, made for this suite
    assert main(["--params", str(d / "params.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    studies = ["--params", str(d / "params.yaml"), "dvc-yaml", "--studies", "-o", str(d / STUDIES_DVC_YAML)]
    assert main(studies) == 0
    sh([str(BIN / "dvc"), "repro"], d)
    assert (d / "dvc.lock").exists() and (d / "results/tables/demo.md").exists()
    assert not (d / "results/sweeps").exists()  # the study of tiny/hypermask was left alone
    untracked = [
        line[3:] for line in sh(["git", "status", "--porcelain"], d).stdout.splitlines() if line[:2] == "??"
    ]
    assert untracked == ["dvc.lock"]  # generated outputs stay out of git; the lock is to commit
    sh([str(BIN / "dvc"), "repro", STUDIES_DVC_YAML], d)  # the studies, on request
    assert (d / "results/sweeps/tiny/hypermask/best_params.yaml").exists()
    assert (d / "workflow/studies/dvc.lock").exists()
    sh([str(BIN / "dvc"), "repro", "-s", "-f", "train_tiny_hypermask_2"], d)


def test_dvc_repro_same_tables_push_pull_and_one_stage_again(snake_run, tmp_path):
    d = project(tmp_path, tiny_suite())
    sh(["git", "init", "-q"], d)
    sh([str(BIN / "dvc"), "init", "-q"], d)
    sh([str(BIN / "dvc"), "config", "core.analytics", "false"], d)
    assert main(["--params", str(d / "params.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    sh([str(BIN / "dvc"), "repro"], d)

    # the same numbers as the Snakemake pipeline
    def numbers(root: Path) -> pd.DataFrame:  # every column but the measured step time
        return pd.read_csv(root / "results/tables/demo.csv").filter(regex="^(?!ms_per_iteration)")

    pd.testing.assert_frame_equal(numbers(d), numbers(snake_run))
    metrics = sh([str(BIN / "dvc"), "metrics", "show", "--json"], d).stdout
    assert "average_accuracy" in metrics
    # editing one experiment makes only that experiment's stages stale
    p = tiny_suite()
    p["methods"]["finetune"]["benchmarks"]["tiny"]["train"]["lr"] = 2e-3
    write_params(d / "params.yaml", p)
    status = sh([str(BIN / "dvc"), "status"], d).stdout
    assert "train_tiny_finetune_1" in status and "train_tiny_finetune_2" in status
    assert "train_tiny_hypermask_1:" not in status and "prepare_digits" not in status
    write_params(d / "params.yaml", tiny_suite())
    # one seed again
    m = d / "results/runs/tiny/hypermask/seed_2/metrics.json"
    before = json.loads(m.read_text())
    sh([str(BIN / "dvc"), "repro", "-s", "-f", "train_tiny_hypermask_2"], d)
    after = json.loads(m.read_text())
    assert (
        after["finished_at"] >= before["finished_at"]
        and after["accuracy_matrix"] == before["accuracy_matrix"]
    )
    # push to a local remote, lose the cache and outputs, pull them back
    remote = tmp_path / "remote"
    sh([str(BIN / "dvc"), "remote", "add", "-d", "local", str(remote)], d)
    sh([str(BIN / "dvc"), "push"], d)
    npz = d / "data/prepared/digits.npz"
    digest = npz.read_bytes()
    shutil.rmtree(d / ".dvc/cache")
    npz.unlink()
    shutil.rmtree(d / "results/runs/tiny/hypermask/seed_1/checkpoints")
    sh([str(BIN / "dvc"), "pull"], d)
    assert npz.read_bytes() == digest
    assert (d / "results/runs/tiny/hypermask/seed_1/checkpoints/task_002.pt").exists()


def test_the_snakemake_report_groups_the_suite(snake_run):
    """`snakemake --report`: the suite's category holds its HTML tables and, per benchmark, its
    figures labelled by kind."""
    import zipfile

    d = snake_run
    out = snakemake(d, "all_tables", "--report", "report.zip")
    assert out.returncode == 0, out.stderr[-2000:]
    with zipfile.ZipFile(d / "report.zip") as z:
        names = z.namelist()
        text = "".join(z.read(n).decode("utf-8", "replace") for n in names if n.endswith((".js", ".html")))
    assert any(n.endswith("demo.html") for n in names) and any(n.endswith("tiny_memory.png") for n in names)
    for needle in ("Suite demo", "Tables", "per_task", "memory"):
        assert needle in text, needle


def test_tables_report_a_missing_seed(snake_run, tmp_path):
    d = tmp_path / "t"
    shutil.copytree(snake_run / "results", d / "results")
    write_params(d / "params.yaml", tiny_suite())
    (d / "results/runs/tiny/hypermask/seed_2/metrics.json").unlink()
    assert main(["--params", str(d / "params.yaml"), "tables", "demo", "--results", str(d / "results")]) == 0
    rows = {r.split(",")[0]: r for r in (d / "results/tables/demo.csv").read_text().splitlines()}
    assert ",1/2,2," in rows["tiny/hypermask"]  # seeds found/expected, then the missing seed
    assert ",2/2,," in rows["tiny/finetune"]
    md = (d / "results/tables/demo.md").read_text()
    acc = md.split("### Average accuracy")[1].split("###")[0]
    lines = {line.split("|")[1].strip(): line for line in acc.splitlines() if line.startswith("| ")}
    assert "(1/2)" in lines["hypermask"] and "(" not in lines["finetune"].split("|")[2]  # that cell only


def test_tables_count_a_run_of_other_settings_as_missing(snake_run, tmp_path, capsys):
    """A run restored without Snakemake's records (dvc pull, a copy) after params.yaml changed
    is not averaged as if current: it counts as missing, and the warning names the key."""
    d = tmp_path / "t"
    shutil.copytree(snake_run / "results", d / "results")
    p = tiny_suite()
    p["methods"]["hypermask"]["settings"]["hypermask"]["beta"] = 0.5
    write_params(d / "params.yaml", p)
    assert main(["--params", str(d / "params.yaml"), "tables", "demo", "--results", str(d / "results")]) == 0
    rows = {r.split(",")[0]: r for r in (d / "results/tables/demo.csv").read_text().splitlines()}
    assert ",0/2,1 2," in rows["tiny/hypermask"] and ",2/2,," in rows["tiny/finetune"]
    err = capsys.readouterr().err
    assert "hypermask.beta" in err and "snakemake --forcerun" in err and "seed_1/metrics.json" in err


BAD_FOR_TOOLS = [
    ("benchmarks.tiny.train.iterations", -1),
    ("methods.hypermask.settings.hypermask.sparsity", 101),
    ("benchmarks.tiny.target.kind", "vgg"),
]


def _set(d: dict, dotted: str, value) -> dict:
    node = d
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return d


@pytest.mark.parametrize("key,value", BAD_FOR_TOOLS, ids=[k for k, _ in BAD_FOR_TOOLS])
def test_bad_params_stop_snakemake_and_dvc_before_any_work(tmp_path, key, value):
    d = project(tmp_path, tiny_suite())
    assert main(["--params", str(d / "params.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    sh(["git", "init", "-q"], d)
    sh([str(BIN / "dvc"), "init", "-q"], d)
    write_params(d / "params.yaml", _set(tiny_suite(), key, value))
    for cmd in ([str(BIN / "snakemake"), "--cores", "1", "all_tables"], [str(BIN / "dvc"), "repro"]):
        out = sh(cmd, d, check=False)
        assert out.returncode != 0, cmd
        shown = key.replace(".settings", "").replace("benchmarks.tiny.", "")
        assert shown in out.stdout + out.stderr, (cmd, out.stdout[-2000:], out.stderr[-2000:])
        assert not (d / "results").exists() and not (d / "data/prepared/digits.npz").exists()


def test_killed_snakemake_job_resumes_from_its_checkpoint(tmp_path):
    import signal
    import time

    p = tiny_suite()
    p["suites"]["demo"]["methods"] = ["hypermask"]
    p["sweeps"] = {}
    p["benchmarks"]["tiny"]["seeds"] = [1]
    p["benchmarks"]["tiny"]["train"]["iterations"] = 1500
    d = project(tmp_path, p)
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "2", "all_tables"],
        cwd=d,
        env=_env(d),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = d / "results/runs/tiny/hypermask/seed_1/checkpoints/task_000.pt"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists() and proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)  # the scheduler and its job, mid-run
    proc.wait()
    assert not (d / "results/runs/tiny/hypermask/seed_1/metrics.json").exists()
    sh([str(BIN / "snakemake"), "--unlock"], d)  # a SIGKILLed Snakemake leaves its lock
    snakemake(d, "all_tables")  # the default profile reruns incomplete jobs
    log = (d / "logs/train/tiny/hypermask/seed_1.log").read_text()
    assert "resuming tiny/hypermask seed 1 after task" in log, log
    assert (
        json.loads((d / "results/runs/tiny/hypermask/seed_1/metrics.json").read_text())["status"]
        == "finished"
    )


def _stage_name(cmd: str) -> str:
    """DVC's stage name for a hypermask command (train_B_M_SEED, sweep_B_M, tables_SUITE, prepare_SOURCE)."""
    words = cmd.split()
    words = words[words.index("hypermask") :]  # after any environment settings
    if words[1] == "train":
        return f"train_{words[2]}_{words[4]}_{words[6]}"
    if words[1] == "sweep":
        return f"sweep_{words[2]}_{words[4]}"
    return f"{words[1]}_{words[2]}"


def _stale_stages_dvc(d: Path, *targets: str) -> set[str]:
    out = sh([str(BIN / "dvc"), "status", "--json", *(targets or ("dvc.yaml",))], d).stdout
    return set(json.loads(out))


def test_an_edit_reruns_the_same_jobs_under_snakemake_and_dvc(snake_run, tmp_path):
    """After a finished run, editing one experiment's hyperparameter makes exactly its train
    jobs (and the tables) stale, under Snakemake as under DVC; a description edit, nothing."""
    d = tmp_path / "proj"
    shutil.copytree(snake_run, d, symlinks=True)
    shutil.rmtree(d / ".snakemake/locks", ignore_errors=True)
    snakemake(d, "all_tables")  # up to date (an earlier test forced one seed alone)
    sh(["git", "init", "-q"], d)
    sh([str(BIN / "dvc"), "init", "-q"], d)
    assert main(["--params", str(d / "params.yaml"), "dvc-yaml", "-o", str(d / "dvc.yaml")]) == 0
    studies = ["--params", str(d / "params.yaml"), "dvc-yaml", "--studies", "-o", str(d / STUDIES_DVC_YAML)]
    assert main(studies) == 0
    sh([str(BIN / "dvc"), "commit", "-f", "-q"], d)  # DVC records the finished state as it is
    sh([str(BIN / "dvc"), "commit", "-f", "-q", STUDIES_DVC_YAML], d)
    assert _stale_stages_dvc(d) == set() and not _snakemake_jobs(d, "--rerun-incomplete")
    assert _stale_stages_dvc(d, STUDIES_DVC_YAML) == set()

    p = tiny_suite()
    p["methods"]["finetune"]["benchmarks"]["tiny"]["train"]["lr"] = 2e-3
    write_params(d / "params.yaml", p)
    expected = {"train_tiny_finetune_1", "train_tiny_finetune_2"}
    assert _stale_stages_dvc(d) == expected  # DVC lists the stages whose own inputs changed
    # Snakemake lists those and what follows from them (DVC reruns the tables too, in `dvc repro`)
    assert {_stage_name(c) for c in _snakemake_jobs(d, "--rerun-incomplete")} == expected | {"tables_demo"}

    p = tiny_suite()
    p["benchmarks"]["tiny"]["description"] = "edited"
    p["benchmarks"]["tiny"]["seeds"] = [1, 2]
    p["defaults"]["train"]["log_every"] = 7  # MLflow's logging interval: not a training setting
    write_params(d / "params.yaml", p)
    assert {_stage_name(c) for c in _snakemake_jobs(d, "--rerun-incomplete")} == set()

    p = tiny_suite()
    p["sweeps"]["spaces"]["hypermask"]["hypermask.beta"]["high"] = 0.5
    write_params(d / "params.yaml", p)
    assert {_stage_name(c) for c in _snakemake_jobs(d, "--rerun-incomplete")} == {"sweep_tiny_hypermask"}
    # DVC: the study is stale in the studies' pipeline; `dvc repro` (dvc.yaml) has nothing to do
    assert _stale_stages_dvc(d, STUDIES_DVC_YAML) == {f"{STUDIES_DVC_YAML}:sweep_tiny_hypermask"}
    assert _stale_stages_dvc(d) == set()


def test_snakemake_job_stopped_before_its_end_is_rebuilt_not_retrained(snake_run):
    """Ctrl-C after the last checkpoint, before the run's end (metrics.json or MLflow's uploads
    unfinished): Snakemake removes the job's outputs and reruns it; the run is rebuilt from its
    checkpoints, exactly as plain `hypermask train` does, never retrained from task 0."""
    d = snake_run
    run = d / "results/runs/tiny/finetune/seed_2"
    before = json.loads((run / "metrics.json").read_text())
    for name in ("metrics.json", "accuracy_matrix.csv", "accuracy_matrix.png", ".finished"):
        (run / name).unlink()
    snakemake(d, str((run / "metrics.json").relative_to(d)))  # the interrupted job, rerun
    log = (d / "logs/train/tiny/finetune/seed_2.log").read_text()
    assert "rebuilding it" in log and "forced rerun" not in log, log
    after = json.loads((run / "metrics.json").read_text())
    assert after["accuracy_matrix"] == before["accuracy_matrix"] and after["per_task"] == before["per_task"]


BAD_NAMES = ["../../escape", "/abs/x", "a/b", "with space", "dots.in.name"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_experiment_names_that_are_not_identifiers_stop_every_tool(tmp_path, name):
    p = tiny_suite()
    p["benchmarks"][name] = p["benchmarks"].pop("tiny")
    p["suites"]["demo"]["benchmarks"] = [name]
    p["sweeps"]["benchmarks"] = []
    d = project(tmp_path, p)
    for cmd in (
        [str(BIN / "hypermask"), "train", name, "--seed", "1"],
        [str(BIN / "snakemake"), "-n", "all_tables"],
    ):
        out = sh(cmd, d, check=False)
        text = out.stdout + out.stderr  # hypermask's message, or the JSON schema's naming the value
        assert out.returncode != 0 and (f"name {name!r} is not allowed" in text or f"'{name}'" in text), cmd
    assert not (d / "results").exists() and not list(tmp_path.rglob("metrics.json"))


def test_readme_block_is_copied_from_the_tables_and_checked_against_them(snake_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n<!-- headline: demo -->\n<!-- end headline: demo -->\n\n"
        "<!-- results: demo -->\nold, typed by hand\n<!-- end results: demo -->\n\ntail\n"
    )
    base = [
        str(BIN / "hypermask"),
        "--params",
        str(snake_run / "params.yaml"),
        "readme",
        "demo",
        "--readme",
        str(readme),
        "--results",
        str(snake_run / "results"),
    ]
    sh(base, snake_run)
    text = readme.read_text()
    assert "typed by hand" not in text and text.endswith("\ntail\n") and "| finetune " in text
    assert "Produced by `hypermask tables demo` from 4 runs on " in text and " threads), torch " in text
    head = text[text.index("<!-- headline: demo -->") : text.index("<!-- end headline: demo -->")]
    assert "### Average accuracy after the last task (%)" in head and "### Backward transfer, BWT (%)" in head
    assert "Forgetting" not in head and "Task-incremental protocol" not in head and "Produced by" in head
    assert sh([*base, "--check"], snake_run).returncode == 0
    df = pd.read_csv(snake_run / "results/tables/demo.csv")
    acc = float(df.loc[df["experiment"] == "tiny/hypermask", "average_accuracy_mean"].iloc[0])
    said = f"{acc:.2f}"
    assert said in text
    readme.write_text(text.replace(said, f"{acc + 1.5:.2f}", 1))
    out = sh([*base, "--check"], snake_run, check=False)
    assert out.returncode == 1 and "tiny/hypermask: average_accuracy" in out.stderr, out.stderr
    assert sh([*base, "--check", "--tolerance", "2"], snake_run).returncode == 0


def test_a_docs_results_block_embeds_the_suites_figures(snake_run, tmp_path):
    """On a docs page, a suite's results block gets a heading per table and, per benchmark, the
    suite's figures, copied beside the page; --check fails where one is gone."""
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("# Results\n\n<!-- results: demo -->\n<!-- end results: demo -->\n")
    base = [
        str(BIN / "hypermask"),
        "--params",
        str(snake_run / "params.yaml"),
        "readme",
        "demo",
        "--readme",
        str(page),
        "--results",
        str(snake_run / "results"),
    ]
    sh(base, snake_run)
    text = page.read_text()
    assert "### Average accuracy after the last task (%)" in text and "#### tiny" in text
    for kind in ("methods", "per_task", "memory"):
        assert "![tiny: " in text and f"(figures/demo/tiny_{kind}.png)" in text
        assert (page.parent / "figures/demo" / f"tiny_{kind}.png").stat().st_size > 1000
    assert sh([*base, "--check"], snake_run).returncode == 0
    (page.parent / "figures/demo/tiny_memory.png").unlink()
    out = sh([*base, "--check"], snake_run, check=False)
    assert out.returncode == 1 and "tiny_memory.png is not in" in out.stderr, out.stderr
