rule demo:  # snakemake demo: the layer demo alone
    output:
        "results/demo/attention.txt",
    log:
        "results/logs/demo.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        depth=4,
        mixer="grpo",
    shell:
        "python -m mawt demo --depth {params.depth} --mixer {params.mixer} > {output} 2> {log} || job_failed {log}"
