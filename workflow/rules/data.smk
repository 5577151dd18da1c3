# Data splits: one per distinct data config, keyed by its hash (mawt/data/split.py).


rule data_config:
    output:
        L.split_file("{data}", layout.DATA_CONFIG),
    log:
        L.log("data_config", "{data}"),
    threads: 1
    params:
        text=data_yaml,
    run:
        atomic.write_text(output[0], params.text)


rule prepare_data:
    input:
        L.split_file("{data}", layout.DATA_CONFIG),
    output:
        train=L.split_file("{data}", layout.TRAIN_SPLIT),
        heldout=L.split_file("{data}", layout.HELDOUT_SPLIT),
        manifest=L.split_file("{data}", layout.MANIFEST),
    log:
        L.log("prepare_data", "{data}"),
    benchmark:
        L.benchmark("prepare_data", "{data}")
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        out=lambda wc, output: os.path.dirname(output.train),
    shell:
        "python -m mawt prepare-data --data {input} --out {params.out} > {log} 2>&1 || job_failed {log}"
