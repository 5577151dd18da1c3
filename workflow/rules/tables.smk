# Per-study tables and plots, then the report that collects them.


rule study_index:
    output:
        L.study_file("{study}", layout.STUDY_INDEX),
    log:
        L.log("study_index", "{study}"),
    threads: 1
    params:
        text=study_index,
    run:
        atomic.write_text(output[0], params.text)


rule study_table:  # every file of the study folder (mawt/analysis/tables.py); the report reads only these
    input:
        index=L.study_file("{study}", layout.STUDY_INDEX),
        results=study_inputs,
    output:
        **{role: L.study_file("{study}", name) for role, name in layout.STUDY_FILES.items() if role != "markdown"},
        md=report_once_made(
            L.study_file("{study}", layout.STUDY_FILES["markdown"]),
            [L.study_file(s, layout.STUDY_FILES["markdown"]) for s in STUDIES],
            caption="../report/table.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "table"},
        ),
        plots=report_once_made(
            directory(L.study_file("{study}", layout.PLOTS)),
            [L.study_file(s, layout.PLOTS) for s in STUDIES],
            patterns=["{name}.svg"],
            caption="../report/plots.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "{name}"},
        ),
    log:
        L.log("study_table", "{study}"),
    benchmark:
        L.benchmark("study_table", "{study}")
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1500,
    params:
        out=lambda wc: L.study_dir(wc.study),
    shell:
        "python -m mawt table --index {input.index} --out-dir {params.out} --plots {output.plots} "
        "> {log} 2>&1 || job_failed {log}"


rule setup_text:  # what the report shows of the setup: resolved (`extends` merged)
    output:
        L.setup_text,
    log:
        L.log("setup_text"),
    threads: 1
    params:
        text=yaml.safe_dump({k: v for k, v in SETUP.items() if k not in ("path", "files")}, sort_keys=False),
    run:
        atomic.write_text(output[0], params.text)


rule report:
    input:
        studies=all_study_files(),
        setup=L.setup_text,
    output:
        html=report_once_made(
            L.report, [L.report], caption="../report/report.rst", category="Report", labels={"figure": "report.html"}
        ),
        summary=L.summary,
        csv=f"{L.tidy}.csv",
        parquet=f"{L.tidy}.parquet",
    log:
        L.log("report"),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1500,
    params:
        bench=L.bench,
        tidy=lambda wc, output: os.path.splitext(output.csv)[0],
        dirs=lambda wc, input: " ".join(dict.fromkeys(os.path.dirname(f) for f in input.studies)),  # in study order
    shell:
        "python -m mawt report --study-dir {params.dirs} --setup-file {input.setup} --bench-dir {params.bench} "
        "--out {output.html} --summary {output.summary} --tidy-out {params.tidy} > {log} 2>&1 || job_failed {log}"


rule current_report:  # results/report.html: the configured setup's report (switching setups re-copies it)
    input:
        L.report,
    output:
        layout.CURRENT_REPORT,
    log:
        L.log("current_report"),
    threads: 1
    params:
        setup=SETUP["name"],  # a params change re-runs the rule: the copy follows --config setup=...
    run:
        atomic.write_text(output[0], open(input[0]).read())
