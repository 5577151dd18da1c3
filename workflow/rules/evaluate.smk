# Evaluation: the held-out split (`mawt eval-heldout`) and lm-eval tasks, for trained runs and the
# untuned base (run id `base-<data id>`). Outputs live in `runs/<run>/eval-<eval id>/`: the eval
# config is not part of the run id, so an eval-only edit re-runs these jobs, not training.


rule eval_config:
    output:
        L.eval_file("{run}", "{ev}", layout.EVAL_CONFIG),
    log:
        L.log("eval_config", "{run}-{ev}"),
    priority: CONFIG_PRIORITY
    threads: 1
    params:
        text=eval_yaml,
    run:
        atomic.write_text(output[0], params.text)


rule eval_heldout:  # a batch: the runs of one train batch (or the untuned base) under one eval config
    input:
        models=eval_batch_models,
        heldout=eval_batch_heldout,
        config=eval_batch_config,
    output:
        L.eval_batch_file("{ebatch}"),
    log:
        L.log("eval_heldout", "{ebatch}"),
    benchmark:
        L.benchmark("eval_heldout", "{ebatch}")
    wildcard_constraints:
        ebatch="[0-9a-f]{12}",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        runs=eval_batch_args,
        device=device(),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt eval-heldout {params.runs} --heldout {input.heldout} "
        "--eval-config {input.config} --device {params.device} --manifest {output} > {log} 2>&1 || job_failed {log}"


rule eval_files:  # a run's held-out evaluation: its eval batch's file for it, linked
    input:
        lambda wc: L.eval_batch_file(INDEX.eval_batch_of(wc.run, wc.ev)),
    output:
        L.eval_file("{run}", "{ev}", layout.HELDOUT),
    log:
        L.log("eval_files", "{run}-{ev}"),
    threads: 1
    run:
        link_eval_files(wildcards)


rule lm_eval:
    input:
        model=eval_model,
        heldout=run_heldout,
        config=L.eval_file("{run}", "{ev}", layout.EVAL_CONFIG),
    output:
        L.eval_file("{run}", "{ev}", layout.LMEVAL),
    log:
        L.log("lm_eval", "{run}-{ev}"),
    benchmark:
        L.benchmark("lm_eval", "{run}-{ev}")
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        model=model_dir,
        tasks=" ".join(SETUP["lm_eval"]["tasks"]),
        limit=f"--limit {SETUP['lm_eval']['limit']}" if SETUP["lm_eval"].get("limit") else "",
        device=device(),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt lm-eval --model {params.model} --tasks {params.tasks} "
        "--heldout {input.heldout} --eval-config {input.config} --device {params.device} {params.limit} "
        "--out {output} > {log} 2>&1 || job_failed {log}"


rule attention_example:  # the report's heatmaps: one held-out example's 5D attention
    input:
        model=eval_model,
        heldout=run_heldout,
    output:
        L.run_file("{run}", layout.ATTENTION),
    log:
        L.log("attention_example", "{run}"),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        model=model_dir,
    shell:
        "python -m mawt attention --model {params.model} --heldout {input.heldout} --out {output} "
        "> {log} 2>&1 || job_failed {log}"
