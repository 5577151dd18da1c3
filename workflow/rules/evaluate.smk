# Held-out answers of the untuned base model (run id `base-<data id>`; a trained run's
# heldout.json comes from its train job, with the same code), and lm-eval tasks for every run.


rule eval_heldout:
    input:
        model=eval_model,
        heldout=run_heldout,
    output:
        f"{OUT}/runs/{{run,base-[0-9a-f]+}}/heldout.json",
    log:
        f"{LOGS}/eval_heldout/{{run}}.log",
    benchmark:
        f"{BENCH}/eval_heldout/{{run}}.tsv"
    params:
        model=model_dir,
        batch=SETUP.get("run", {}).get("eval", {}).get("batch_size", 32),
        tokens=SETUP.get("run", {}).get("eval", {}).get("max_new_tokens", 24),
        length=SETUP.get("run", {}).get("train", {}).get("max_length", 128),
    conda:
        "../../environment.yml"
    threads: RES["threads"]
    resources:
        mem_mb=RES["mem_mb"],
        runtime=RES["runtime"],
        **gpu_resources(),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt eval-heldout --model {params.model} --heldout {input.heldout} "
        "--batch-size {params.batch} --max-new-tokens {params.tokens} --max-length {params.length} --out {output} "
        "> {log} 2>&1"


rule lm_eval:
    input:
        model=eval_model,
        heldout=run_heldout,
    output:
        f"{OUT}/runs/{{run}}/lmeval.json",
    log:
        f"{LOGS}/lm_eval/{{run}}.log",
    benchmark:
        f"{BENCH}/lm_eval/{{run}}.tsv"
    params:
        model=model_dir,
        tasks=" ".join(SETUP["lm_eval"]["tasks"]),
        limit=f"--limit {SETUP['lm_eval']['limit']}" if SETUP["lm_eval"].get("limit") else "",
        device="cuda" if RES.get("gpus") else "cpu",
    conda:
        "../../environment.yml"
    threads: RES["threads"]
    resources:
        mem_mb=RES["mem_mb"],
        runtime=RES["runtime"],
        **gpu_resources(),
    shell:
        "OMP_NUM_THREADS={threads} python -m mawt lm-eval --model {params.model} --tasks {params.tasks} "
        "--heldout {input.heldout} --device {params.device} {params.limit} --out {output} > {log} 2>&1"


rule attention_example:  # the report's heatmaps: one held-out example's 5D attention
    input:
        model=eval_model,
        heldout=run_heldout,
    output:
        f"{OUT}/runs/{{run}}/attention.npz",
    log:
        f"{LOGS}/attention_example/{{run}}.log",
    params:
        model=model_dir,
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=RES["mem_mb"],
        runtime=RES["runtime"],
    shell:
        "python -m mawt attention --model {params.model} --heldout {input.heldout} --out {output} > {log} 2>&1"
