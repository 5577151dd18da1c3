# The base model, when the workflow builds it (a directory or a hub id needs no rule); only one of
# these exists per setup: the micro model, pre-trained here, or the 1.5B's stand-in (its geometry,
# random weights; mawt/bases/standin.py).
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
            num_layers=STANDIN["num_layers"],
            seed=STANDIN["seed"],
            out=lambda wc, output: os.path.dirname(output[0]),
        shell:
            "python -m mawt build-standin --num-layers {params.num_layers} --seed {params.seed} --out {params.out} "
            "> {log} 2>&1 || job_failed {log}"
