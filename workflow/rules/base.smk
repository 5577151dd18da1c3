# Data split and base model: once per setup.


rule prepare_data:
    input:
        SETUP["path"],
    output:
        train=f"{OUT}/data/train.jsonl",
        heldout=f"{OUT}/data/heldout.jsonl",
        manifest=f"{OUT}/data/manifest.json",
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCH}/prepare_data.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.train),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m mawt prepare-data --setup {input} --out {params.out} > {log} 2>&1"


rule pretrain_micro:
    output:
        f"{OUT}/base/model/config.json",
        f"{OUT}/base/model/model.safetensors",
    log:
        f"{LOGS}/pretrain_micro.log",
    benchmark:
        f"{BENCH}/pretrain_micro.tsv"
    params:
        overrides=json.dumps(SETUP.get("pretrain") or {}),
        out=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt pretrain-micro --overrides '{params.overrides}' "
        "--out {params.out} > {log} 2>&1"
