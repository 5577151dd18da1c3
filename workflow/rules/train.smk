# One fine-tuning run per resolved config (runs are keyed by a hash of their
# config, so identical runs of different studies are trained once).


rule run_config:
    output:
        L.run_file("{run}", layout.RUN_CONFIG),
    log:
        L.log("run_config", "{run}"),
    priority: CONFIG_PRIORITY
    threads: 1
    params:
        text=run_yaml,
    run:
        atomic.write_text(output[0], params.text)


rule train:  # a batch: the seeds of one config, trained one after the other in one process
    input:
        configs=batch_configs,
        split=batch_train_split,
        base=base_model_files,
    output:
        L.batch_file("{batch}"),
    log:
        L.log("train", "{batch}"),
    benchmark:
        L.benchmark("train", "{batch}")
    wildcard_constraints:
        batch="[0-9a-f]{12}",
    priority: train_priority  # the longest batches first: none starts last and runs alone
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        runs=batch_train_args,
        split=lambda wc, input: os.path.dirname(input.split),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt train {params.runs} --split {params.split} --manifest {output} "
        "> {log} 2>&1 || job_failed {log}"


rule run_files:  # a run's own outputs: its batch's files for it, linked (work/<run>/ -> runs/<run>/)
    input:
        lambda wc: L.batch_file(INDEX.batch_of(wc.run)),
    output:
        model=f"{L.run_file('{run}', layout.MODEL)}/model.safetensors",
        summary=L.run_file("{run}", layout.RUN_JSON),
        metrics=L.run_file("{run}", layout.METRICS),
    log:
        L.log("run_files", "{run}"),
    wildcard_constraints:
        run="[0-9a-f]{12}",  # trained runs; the untuned base is `base-<data id>`
    threads: 1
    run:
        link_run_files(wildcards)
