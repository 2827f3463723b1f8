# Aggregate the suite's runs: tables (csv, md, tex, html) and figures (png and pdf), in the
# report under the suite's category: its tables, then one subcategory per benchmark whose
# figures carry their kind as a label (hypermask/reporting/plots.py).


rule tables:
    input:
        [PLAN.run_files(e, s)[0] for e, s in PLAN.runs()],
    output:
        csv=PLAN.table_files()[0],
        md=PLAN.table_files()[1],
        tex=PLAN.table_files()[2],
        html=report(
            PLAN.table_files()[3],
            caption="../report/table.rst",
            category=f"Suite {PLAN.suite}",
            subcategory="Tables",
            labels={"table": "comparison tables"},
        ),
        figures=report(
            directory(PLAN.figures_dir()),
            patterns=PLAN.figure_patterns(),
            caption="../report/figures.rst",
            category=f"Suite {PLAN.suite}",
            subcategory="{benchmark}",
            labels={"benchmark": "{benchmark}", "figure": "{kind}"},
        ),
    params:
        cmd=PLAN.tables_cmd(),
    log:
        f"logs/tables/{PLAN.suite}.log",
    benchmark:
        f"benchmarks/tables/{PLAN.suite}.tsv"
    shell:
        "{params.cmd} > {log} 2>&1"
