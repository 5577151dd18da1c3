# Per-study tables (the report collects them).


rule study_index:
    output:
        f"{OUT}/studies/{{study}}/runs.json",
    log:
        f"{LOGS}/study_index/{{study}}.log",
    params:
        text=study_index,
    threads: 1
    run:
        with open(output[0], "w") as f:
            f.write(params.text)


rule study_table:
    input:
        index=f"{OUT}/studies/{{study}}/runs.json",
        results=study_inputs,
    output:
        md=f"{OUT}/studies/{{study}}/table.md",
        csv=f"{OUT}/studies/{{study}}/table.csv",
        runs=f"{OUT}/studies/{{study}}/runs.csv",
    log:
        f"{LOGS}/study_table/{{study}}.log",
    params:
        out=lambda wc: f"{OUT}/studies/{wc.study}",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "python -m mawt table --index {input.index} --out-dir {params.out} > {log} 2>&1"
