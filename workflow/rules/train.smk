# One job per (experiment, seed). Checkpoints are not declared outputs, so a killed job
# rerun with --rerun-incomplete resumes from its last completed task.


rule train:
    input:
        lambda w: PLAN.train_inputs(w.exp),
    output:
        metrics=PLAN.run_files("{exp}", "{seed}")[0],
        matrix=PLAN.run_files("{exp}", "{seed}")[1],
        heatmap=PLAN.run_files("{exp}", "{seed}")[2],
    params:
        cmd=lambda w: PLAN.train_cmd(w.exp, w.seed),
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
