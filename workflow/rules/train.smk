# One job per (experiment, seed). Checkpoints are not declared outputs, so a killed job
# rerun with --rerun-incomplete resumes from its last completed task.
#
# Benchmarks in pipeline.seeds_in_one_job: one more job per experiment, `train_seeds`, trains
# its seeds one after another in one process (torch and MLflow loaded once), each seed's
# outputs staged under seed_N/staged/; each seed's job then adopts its outputs (a rename, in a
# process of 0.1 s) or, with nothing staged (a forced rerun of that seed), trains the seed
# itself. The seeds job is an `ancient` input, its marker kept through a failed rerun
# (`update`): its rerun alone (a seed added to the list) reruns no seed whose outputs are
# current. Where the marker is missing, Snakemake reruns every seed's job after it, so the
# seeds job also stages the current seeds' outputs (--stage-current; records/staging.py).
# A seed whose outputs hold other settings than params.yaml's now reads the marker as a plain
# input, so that the Snakemake that reruns the seeds job after an edit also reruns (adopts)
# that seed (PLAN.outputs_current).


rule train_seeds:
    input:
        lambda w: PLAN.train_inputs(w.exp),
    output:
        update(PLAN.seeds_marker("{exp}")),
    params:
        cmd=lambda w: PLAN.seeds_cmd(w.exp),
        settings=lambda w: PLAN.train_settings(w.exp),  # an edit of these reruns the job (params trigger)
    log:
        "logs/train/{exp}/seeds.log",
    benchmark:
        "benchmarks/train/{exp}/seeds.tsv"
    threads: PLAN.params.pipeline.threads
    resources:
        gpu=PLAN.params.pipeline.gpus,
    shell:
        "{params.cmd} $(test -e {output} || echo --stage-current) > {log} 2>&1 && touch {output}"


rule train:
    input:
        lambda w: PLAN.train_inputs(w.exp),
        seeds=lambda w: [ancient(f) if PLAN.outputs_current(w.exp, w.seed) else f for f in PLAN.seeds_inputs(w.exp)],
    output:
        metrics=PLAN.run_files("{exp}", "{seed}")[0],
        matrix=PLAN.run_files("{exp}", "{seed}")[1],
        heatmap=PLAN.run_files("{exp}", "{seed}")[2],
    params:
        cmd=lambda w: PLAN.seed_job_cmd(w.exp, w.seed),
        settings=lambda w: PLAN.train_settings(w.exp),  # an edit of these reruns the job (params trigger)
    log:
        "logs/train/{exp}/seed_{seed}.log",
    benchmark:
        "benchmarks/train/{exp}/seed_{seed}.tsv"
    threads: PLAN.params.pipeline.threads
    resources:
        gpu=PLAN.params.pipeline.gpus,
    shell:
        "{params.cmd} > {log} 2>&1"
