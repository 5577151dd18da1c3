# Per-study tables and plots, then the report that collects them.


rule study_index:
    output:
        f"{OUT}/studies/{{study}}/runs.json",
    log:
        f"{LOGS}/study_index/{{study}}.log",
    params:
        text=study_index,
    threads: 1
    run:
        atomic.write_text(output[0], params.text)


rule study_table:
    input:
        index=f"{OUT}/studies/{{study}}/runs.json",
        results=study_inputs,
    output:
        md=report(f"{OUT}/studies/{{study}}/table.md", caption="../report/table.rst", category="{study}",
                  labels={"study": "{study}", "figure": "table"}),
        csv=f"{OUT}/studies/{{study}}/table.csv",
        runs=f"{OUT}/studies/{{study}}/runs.csv",
        long=f"{OUT}/studies/{{study}}/long.csv",
        plots=report(directory(f"{OUT}/studies/{{study}}/plots"), patterns=["{name}.svg"],
                     caption="../report/plots.rst", category="{study}",
                     labels={"study": "{study}", "figure": "{name}"}),
    log:
        f"{LOGS}/study_table/{{study}}.log",
    benchmark:
        f"{BENCH}/study_table/{{study}}.tsv"
    params:
        out=lambda wc: f"{OUT}/studies/{wc.study}",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "python -m mawt table --index {input.index} --out-dir {params.out} --plots {output.plots} > {log} 2>&1"


rule setup_text:  # what the report shows of the setup: resolved (`extends` merged), without `resources`
    output:
        f"{OUT}/setup.yaml",
    log:
        f"{LOGS}/setup_text.log",
    params:
        text=yaml.safe_dump({k: v for k, v in SETUP.items() if k not in ("resources", "path", "files")},
                            sort_keys=False),  # a resources-only edit leaves it (and everything) as it is
    threads: 1
    run:
        atomic.write_text(output[0], params.text)


rule report:
    input:
        indexes=study_indexes(),
        tables=study_tables(),
        setup=f"{OUT}/setup.yaml",
    output:
        html=report(f"{OUT}/report.html", caption="../report/report.rst", category="Report",
                    labels={"figure": "report.html"}),
        csv=f"{OUT}/all_runs.csv",
        parquet=f"{OUT}/all_runs.parquet",
    log:
        f"{LOGS}/report.log",
    params:
        bench=BENCH,
        tidy=lambda wc, output: os.path.splitext(output.csv)[0],
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "python -m mawt report --index {input.indexes} --setup-file {input.setup} --bench-dir {params.bench} "
        "--out {output.html} --tidy-out {params.tidy} > {log} 2>&1"


rule current_report:  # results/report.html: the configured setup's report (switching setups re-copies it)
    input:
        f"{OUT}/report.html",
    output:
        "results/report.html",
    log:
        f"{LOGS}/current_report.log",
    params:
        setup=SETUP["name"],  # a params change re-runs the rule: the copy follows --config setup=...
    threads: 1
    run:
        atomic.write_text(output[0], open(input[0]).read())
