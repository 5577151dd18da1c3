# MAWT ablation harness. Run with:  snakemake --cores all
#
# For now the workflow has one job: the layer demo (patch a tiny random Qwen2,
# capture the 5D attention, check that init_noise=0 reproduces the base model).
# The training/evaluation DAG and the ablation studies land on top of this.

include: "workflow/rules/demo.smk"


rule all:
    input:
        "results/demo/attention.txt",
    default_target: True
