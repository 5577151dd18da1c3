# MAWT ablation harness.
#   snakemake --cores all                       the setup's studies, micro setup -> results/micro/report.html,
#                                               copied to results/report.html (the configured setup's report)
#   snakemake --report results/snakemake_report.html   Snakemake's own report of the same outputs
#   snakemake --cores all --config setup=paper  the full-scale setup (GPU, HF cache)
#   snakemake --profile workflow/profiles/slurm --config setup=paper   on a SLURM cluster
# Outputs land under results/<setup>/; see docs/workflow.md.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "workflow/config.yaml"


report: "workflow/report/workflow.rst"


validate(config, "mawt/schemas/config.schema.yaml")


wildcard_constraints:
    run="[0-9a-f]{12}|base-[0-9a-f]{8}",  # a trained run, or the untuned base on one data split
    ev="[0-9a-f]{8}",  # an eval config


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/pilot.smk"
include: "workflow/rules/demo.smk"


# Rules that do no heavy work run where Snakemake runs, never through a cluster executor (with the
# SLURM profile each would otherwise be an sbatch job with the default resources): config writers,
# the study index and tables, the report.
localrules:
    all,
    data_config,
    run_config,
    eval_config,
    run_files,
    eval_files,
    study_index,
    study_table,
    setup_text,
    report,
    current_report,
    pilot,


rule all:
    default_target: True
    input:
        "results/report.html",
