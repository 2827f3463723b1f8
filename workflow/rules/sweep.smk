# Optuna study per (benchmark, method): sweeps.benchmarks x the methods with a sweeps.spaces entry.


rule sweep:
    input:
        lambda w: PLAN.prepared(PLAN.config(w.exp).data.source)[0],
    output:
        PLAN.sweep_files("{exp}"),
    params:
        cmd=lambda w: PLAN.sweep_cmd(w.exp),
        settings=lambda w: PLAN.sweep_settings(w.exp),  # an edit of these reruns the job (params trigger)
    log:
        "logs/sweep/{exp}.log",
    benchmark:
        "benchmarks/sweep/{exp}.tsv"
    threads: PLAN.params.pipeline.threads
    resources:
        gpu=PLAN.params.pipeline.gpus,
    shell:
        "{params.cmd} > {log} 2>&1"
