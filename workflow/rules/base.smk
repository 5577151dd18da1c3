# Data splits (one per distinct data config, keyed by its hash) and the base model.


rule data_config:
    output:
        f"{OUT}/data/{{data}}/data.yaml",
    log:
        f"{LOGS}/data_config/{{data}}.log",
    params:
        text=data_yaml,
    threads: 1
    run:
        atomic.write_text(output[0], params.text)


rule prepare_data:
    input:
        f"{OUT}/data/{{data}}/data.yaml",
    output:
        train=f"{OUT}/data/{{data}}/train.jsonl",
        heldout=f"{OUT}/data/{{data}}/heldout.jsonl",
        manifest=f"{OUT}/data/{{data}}/manifest.json",
    log:
        f"{LOGS}/prepare_data/{{data}}.log",
    benchmark:
        f"{BENCH}/prepare_data/{{data}}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.train),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m mawt prepare-data --data {input} --out {params.out} > {log} 2>&1"


# A base the workflow builds itself (only one of these exists per setup): the micro model,
# pre-trained here, or the 1.5B's stand-in (its geometry, random weights; mawt/standin.py).
if SETUP["base_model"] == "pretrain":

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


elif SETUP["base_model"] == "standin":

    rule build_standin:
        input:  # the shipped tokenizer (assets/paper_standin, see assets/README.md) is copied in;
            # from the checkout, so that a working directory elsewhere (-d) still finds it
            os.path.join(_ROOT, "assets/paper_standin/tokenizer/tokenizer.json"),
            os.path.join(_ROOT, "assets/paper_standin/tokenizer/tokenizer_config.json"),
        output:
            f"{OUT}/base/model/config.json",
            f"{OUT}/base/model/model.safetensors",
        log:
            f"{LOGS}/build_standin.log",
        benchmark:
            f"{BENCH}/build_standin.tsv"
        params:
            layers=(SETUP.get("standin") or {}).get("layers", 2),
            seed=(SETUP.get("standin") or {}).get("seed", 0),
            out=lambda wc, output: os.path.dirname(output[0]),
        conda:
            "../../environment.yml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        shell:
            "python -m mawt build-standin --layers {params.layers} --seed {params.seed} --out {params.out} "
            "> {log} 2>&1"
