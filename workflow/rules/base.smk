# Data splits (one per distinct data config, keyed by its hash) and the base model.


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


# A base the workflow builds itself (only one of these exists per setup): the micro model,
# pre-trained here, or the 1.5B's stand-in (its geometry, random weights; mawt/standin.py).
if SETUP["base_model"] == "pretrain":

    rule pretrain_micro:
        output:
            f"{L.built_base}/config.json",
            f"{L.built_base}/model.safetensors",
        log:
            L.log("pretrain_micro"),
        benchmark:
            L.benchmark("pretrain_micro")
        conda:
            "../../environment.yml"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            overrides=json.dumps(SETUP.get("pretrain") or {}),
            out=lambda wc, output: os.path.dirname(output[0]),
        shell:
            "OMP_NUM_THREADS={threads} python -m mawt pretrain-micro --overrides '{params.overrides}' "
            "--out {params.out} > {log} 2>&1 || job_failed {log}"

elif SETUP["base_model"] == "standin":

    rule build_standin:
        input:  # the shipped tokenizer (assets/paper_standin, see assets/README.md) is copied in;
            # from the checkout, so that a working directory elsewhere (-d) still finds it
            os.path.join(_ROOT, "assets/paper_standin/tokenizer/tokenizer.json"),
            os.path.join(_ROOT, "assets/paper_standin/tokenizer/tokenizer_config.json"),
        output:
            f"{L.built_base}/config.json",
            f"{L.built_base}/model.safetensors",
        log:
            L.log("build_standin"),
        benchmark:
            L.benchmark("build_standin")
        conda:
            "../../environment.yml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            num_layers=(SETUP.get("standin") or {}).get("num_layers", 2),
            seed=(SETUP.get("standin") or {}).get("seed", 0),
            out=lambda wc, output: os.path.dirname(output[0]),
        shell:
            "python -m mawt build-standin --num-layers {params.num_layers} --seed {params.seed} --out {params.out} "
            "> {log} 2>&1 || job_failed {log}"
