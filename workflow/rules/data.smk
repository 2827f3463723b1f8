# Verify each raw source once and write the prepared form training reads.


rule prepare_data:
    output:
        npz=PLAN.prepared("{source}")[0],
        meta=PLAN.prepared("{source}")[1],
    params:
        cmd=lambda w: PLAN.prepare_cmd(w.source),
    log:
        "logs/prepare/{source}.log",
    benchmark:
        "benchmarks/prepare/{source}.tsv"
    threads: 1
    shell:
        "{params.cmd} > {log} 2>&1"
