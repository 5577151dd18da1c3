# The pilot, before the studies' GPU hours: one MAWT variant and its baseline at the setup's
# `pilot:` seeds on the full held-out set, measured (mawt/studies/pilot.py):
#   snakemake pilot --config setup=paper, then python -m mawt plan --setup paper --source pilot
# Its runs are resolved as their study resolves them (the same run ids): the train and eval_heldout
# rules make them, and the studies reuse them later instead of training them twice.
from mawt.studies.pilot import PILOT_JSON, PILOT_MD, pilot_file, pilot_heldout, resolve_pilot, write_pilot

try:
    PILOT = resolve_pilot(SETUP, STUDIES, config.get("ablations", "ablations"), base_model=BASE_MODEL, shape=SHAPE)
    _PILOT_ERROR = None
except StudyError as err:  # only `snakemake pilot` fails on it: other targets do not need the pilot
    PILOT, _PILOT_ERROR = None, f"Invalid pilot configuration: {err}"

# the pilot's runs join the run index (mawt/studies/index.py) before its batches are formed:
# they are already there when the pilot's study is one the workflow runs
for _run in PILOT.runs if PILOT else []:
    INDEX.add(_run.run)


rule pilot:  # the measurement; `python -m mawt plan --source pilot` reads pilot.json
    input:
        lambda wc: pilot_heldout(PILOT, _PILOT_ERROR, L),  # in `PILOT.runs` order: what write_pilot pairs
    output:
        json=pilot_file(L, PILOT_JSON),
        md=pilot_file(L, PILOT_MD),
    log:
        L.log("pilot"),
    threads: 1
    params:
        pilot=lambda wc: PILOT.describe() if PILOT else None,  # a changed pilot: section re-runs it
    run:
        write_pilot(PILOT, SETUP, list(input), output.json, output.md)
