# Aggregate the suite's runs: tables (csv, md, tex) and figures, in the report.


rule tables:
    input:
        [PLAN.run_files(e, s)[0] for e, s in PLAN.runs()],
    output:
        csv=report(PLAN.table_files()[0], caption="../report/table.rst", category="Tables"),
        md=PLAN.table_files()[1],
        tex=PLAN.table_files()[2],
        figures=report(
            directory(PLAN.figures_dir()),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        cmd=PLAN.tables_cmd(),
    log:
        f"logs/tables/{PLAN.suite}.log",
    benchmark:
        f"benchmarks/tables/{PLAN.suite}.tsv"
    shell:
        "{params.cmd} > {log} 2>&1"
