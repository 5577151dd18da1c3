# MAWT ablation harness.
#   snakemake --cores all                       every study in ablations/, micro setup
#   snakemake --cores all --config setup=paper  the full-scale setup (GPU, HF cache)
#   snakemake --profile workflow/profiles/slurm --config setup=paper   on a SLURM cluster
# Outputs land under results/<setup>/; see README.md.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "workflow/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/demo.smk"


rule all:
    input:
        study_tables(),
    default_target: True
