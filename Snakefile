# HyperMask reproduction pipeline: data -> (sweeps) -> every seed -> tables, figures, report.
#
#   snakemake --cores 8 all_tables                        # the suite named in params.yaml
#   snakemake --cores 8 all_tables --config suite=compare_fmnist  # another suite
#   snakemake --cores 8 all_tables --config params=mine.yaml  # another settings file, read by every job
#   snakemake --profile profiles/slurm all_tables
#   snakemake --report report.html
#
# Paths and commands come from hypermask.pipeline.plan.Plan, which also writes dvc.yaml.

include: "workflow/rules/common.smk"


rule all_tables:
    input:
        PLAN.table_files(),


# The suite's Optuna studies (the values they chose are committed in params.yaml; a study
# whose best values train the final seeds, sweeps.use_best, is an input of its runs anyway).
rule all_sweeps:
    input:
        [PLAN.sweep_files(e) for e in PLAN.sweeps()],


include: "workflow/rules/data.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tables.smk"
