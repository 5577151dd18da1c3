# One fine-tuning run per resolved config (runs are keyed by a hash of their
# config, so identical runs of different studies are trained once).


rule run_config:
    output:
        L.run_file("{run}", layout.RUN_CONFIG),
    log:
        L.log("run_config", "{run}"),
    threads: 1
    params:
        text=run_yaml,
    run:
        atomic.write_text(output[0], params.text)


rule train:
    input:
        config=L.run_file("{run}", layout.RUN_CONFIG),
        split=run_train_split,
        base=base_model_files,
    output:
        model=f"{L.run_file('{run}', layout.MODEL)}/model.safetensors",
        summary=L.run_file("{run}", layout.RUN_JSON),
        metrics=L.run_file("{run}", layout.METRICS),
    log:
        L.log("train", "{run}"),
    benchmark:
        L.benchmark("train", "{run}")
    wildcard_constraints:
        run="[0-9a-f]{12}",  # trained runs; the untuned base is `base-<data id>`
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        out=lambda wc, output: os.path.dirname(output.summary),
        split=lambda wc, input: os.path.dirname(input.split),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt train --config {input.config} --split {params.split} "
        "--out {params.out} > {log} 2>&1 || job_failed {log}"
