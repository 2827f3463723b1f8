# Optuna study per experiment (only those with an entry under sweeps.experiments).


rule sweep:
    input:
        lambda w: PLAN.prepared(PLAN.config(w.exp).data.source)[0],
    output:
        PLAN.sweep_files("{exp}"),
    params:
        cmd=lambda w: PLAN.sweep_cmd(w.exp),
    log:
        "logs/sweep/{exp}.log",
    benchmark:
        "benchmarks/sweep/{exp}.tsv"
    threads: PLAN.params.pipeline.threads
    resources:
        gpu=PLAN.params.pipeline.gpus,
    shell:
        "{params.cmd} > {log} 2>&1"
