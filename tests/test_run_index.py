"""The run index (mawt/studies/index.py) and its file, runs.json (mawt/studies/runsfile.py), without Snakemake.

Each claim is checked against a truth computed another way: a run resolved afresh from its overrides
(not derived from the study's first-seed resolution), axes read from the training config's mapping
(not from the dataclass), batches checked by their definition."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mawt.common.layout import Layout, base_run
from mawt.studies import runsfile
from mawt.studies.index import RunIndex
from mawt.studies.setup import deep_merge, load_setup
from mawt.studies.study import load_studies, resolve_variant, run_id

ROOT = Path(__file__).resolve().parents[1]
SETUPS = ["micro", "paper", str(ROOT / ".test" / "smoke.yaml")]


def _index(name: str) -> RunIndex:
    setup = load_setup(name)
    folder = ROOT / (".test/ablations" if name.endswith(".yaml") else "ablations")
    studies = load_studies(setup, setup.get("studies") or None, folder)
    paths = Layout(setup["name"])
    base = paths.built_base if setup["base_model"] in ("pretrain", "standin") else setup["base_model"]
    return RunIndex(setup, studies, paths, base)


@pytest.fixture(scope="module", params=SETUPS, ids=["micro", "paper", "smoke"])
def index(request) -> RunIndex:
    return _index(request.param)


def test_each_run_equals_the_run_resolved_afresh(index):
    """The index resolves each variant once and derives its seeds; a fresh resolution of every
    (variant, seed) from the study's overrides, through the setup's defaults, gives the same config."""
    n = 0
    for name, study in index.studies.items():
        for run in index.study_runs[name]:
            fresh = resolve_variant(index.setup, study.path, run.variant, study.variants[run.variant], run.seed,
                                    base_model=index.base_model).to_dict()
            assert index.configs[run.run_id].to_dict() == fresh, (name, run)
            assert run.run_id == run_id(fresh) and index.runs[run.run_id] == {k: v for k, v in fresh.items()
                                                                                if k != "eval"}
            assert fresh["train"]["seed"] == run.seed and fresh["base_model"] == index.base_model
            n += 1
        assert len(index.study_runs[name]) == len(study.variants) * len(study.seeds)
    assert n == sum(len(s.variants) * len(s.seeds) for s in index.studies.values())


def _axes_from_mapping(cfg: dict) -> dict:
    """A run's axes read off its training config's mapping (config.yaml), written apart from run_axes."""
    m, train = cfg["mawt"], cfg["train"]
    out = {"depth": m and m["depth"], "mixer": m and m["mixer"], "gate": m and m["gate"],
           "layers": str(m and m["layers"]), "trainable": cfg["trainable"],
           "families": "+".join(cfg["data"].get("families") or []), "group_size": train["group_size"],
           "learning_rate": train["learning_rate"], "steps": train["steps"]}
    mawt_depths = m is not None and m["depth"] > 1
    if m is not None and m["mixer"] == "grpo" and mawt_depths:  # the GRPO objective trains only these
        out.update(credit=train["credit"], advantage=train["advantage"], reward_control=train["reward_control"])
    if mawt_depths and m["mixer"] in ("softmax", "grpo", "gumbel"):
        out["selector_input"] = m["selector_input"]
    if m is not None and m["plant"] != "none":
        out["plant"] = m["plant"]
    return out


def test_the_axes_are_the_run_configs_settings(index):
    seen = set()
    for name in index.studies:
        entry = index.study_entry(name)
        for run in entry["runs"]:
            assert run["axes"] == _axes_from_mapping(index.runs[run["run_id"]]), (name, run["variant"])
            seen.update(run["axes"])
    assert {"depth", "mixer", "steps"} <= seen


def test_the_mapping_reader_knows_the_grpo_mixers():
    """_axes_from_mapping's mixer sets, against the layer's own (so the test above tests something)."""
    from mawt.layer.config import LEARNED_MIXERS, MAWTConfig

    assert set(LEARNED_MIXERS) == {"softmax", "grpo", "gumbel"}
    assert {mix for mix in LEARNED_MIXERS if MAWTConfig(depth=2, mixer=mix).uses_grpo} == {"grpo"}
    assert not MAWTConfig(depth=1, mixer="grpo").uses_grpo


def test_the_batches_are_the_seeds_of_one_config(index):
    batches = index.train_batches()
    members = [r for runs in batches.values() for r in runs]
    assert sorted(members) == sorted(index.runs)  # every run in exactly one batch
    for runs in batches.values():
        assert len(runs) <= index.seeds_per_job
        rest = [json.dumps({**index.runs[r], "train": {**index.runs[r]["train"], "seed": None}}, sort_keys=True)
                for r in runs]
        assert len(set(rest)) == 1  # only the seed differs
        seeds = [index.runs[r]["train"]["seed"] for r in runs]
        assert seeds == sorted(seeds)
        assert all(index.eval_members(r) == runs and index.batch_of(r) in batches for r in runs)
    evals = index.eval_batches()
    assert len(evals) == (len(batches) + len(index.data)) * len(index.evals)
    assert {(ev, tuple(runs)) for ev, runs in evals.values()} == {
        (ev, tuple(g)) for g in [*batches.values(), *([base_run(d)] for d in index.data)] for ev in index.evals}


def test_a_study_entry_is_valid_and_names_every_file_its_tables_read(index):
    for name in index.studies:
        entry = index.study_entry(name)
        text = runsfile.dumps(entry)  # the schema and the cross-checks pass
        assert json.loads(text) == json.loads(json.dumps(entry))
        inputs = set(index.study_inputs(name))
        named = {r["heldout"] for r in entry["runs"]} | {r["lmeval"] for r in entry["runs"] if r["lmeval"]}
        named |= {f"{r['dir']}/run.json" for r in entry["runs"]}
        named |= {b["heldout"] for b in entry["bases"]} | {b["lmeval"] for b in entry["bases"]}
        named |= {b["native_heldout"] for b in entry["bases"] if b["native_heldout"]}
        named |= {entry["attention"]} if entry["attention"] else set()
        assert inputs == named
        study = index.studies[name]
        assert {r["variant"]: r["baseline"] for r in entry["runs"]} == study.baselines
        assert entry["bases"][0]["data"] == index.run_data(index.study_runs[name][0].run_id)
        shares = {r["bench"]: r["bench_share"] for r in entry["runs"]}
        assert all(1 <= k <= index.seeds_per_job for k in shares.values())


def test_the_paper_setup_has_its_native_reference_row():
    index = _index("paper")
    assert index.setup.get("native_reference") and index.native
    base = index.study_entry("depths")["bases"][0]
    assert base["native_heldout"] and base["native_heldout"] != base["heldout"]
    names = runsfile.base_names(index.study_entry("depths"))
    assert names == ["base (untuned)", "base (untuned, native thinking)"]


@pytest.fixture(scope="module")
def entry() -> dict:
    return _index(str(ROOT / ".test" / "smoke.yaml")).study_entry(
        next(iter(load_studies(load_setup(str(ROOT / ".test" / "smoke.yaml")), None, ROOT / ".test" / "ablations"))))


def _broken(entry, change):
    bad = copy.deepcopy(entry)
    change(bad)
    return bad


FAULTS = {  # a planted fault -> what the refusal must say
    "missing key": (lambda e: e["runs"][0].pop("axes"), "key runs.0: 'axes' is a required property"),
    "unknown axis": (lambda e: e["runs"][0]["axes"].update(colour=1), "key runs.0.axes"),
    "seed twice": (lambda e: e["runs"].append(dict(e["runs"][0])), "has seed"),
    "two baselines": (lambda e: e["runs"][-1].update(baseline=None) if e["runs"][-1]["baseline"]
                      else e["runs"][-1].update(baseline="plain"), "name different baselines"),
    "unknown baseline": (lambda e: [r.update(baseline="nope") for r in e["runs"] if r["variant"] == e["runs"][-1]
                                    ["variant"]], "names baseline 'nope', which is not a variant"),
    "unknown split": (lambda e: e["runs"][0].update(data="ffffffff"), "have no entry in bases"),
    "no bases": (lambda e: e.update(bases=[]), "key bases"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_index_is_refused_naming_the_key(entry, tmp_path, fault):
    change, message = FAULTS[fault]
    bad = _broken(entry, change)
    with pytest.raises(ValueError, match="runs.json") as err:
        runsfile.dumps(bad)
    assert message in str(err.value) or message in str(err.value).replace('"', "'")
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError) as err:
        runsfile.read_index(path)
    assert message in str(err.value)


def test_the_schema_lists_the_axes_of_the_module():
    schema = yaml.safe_load(runsfile.SCHEMA.read_text())
    enum = schema["properties"]["runs"]["items"]["properties"]["axes"]["propertyNames"]["enum"]
    assert tuple(enum) == runsfile.AXES


def test_the_analysis_reads_the_index_without_the_training_stage():
    """The tables get a run's axes from runs.json: importing the analysis loads no training, layer or
    studies-resolution module (a fresh interpreter)."""
    code = ("import sys, mawt.analysis.tables, mawt.analysis.report; "
            "print(sorted(m for m in sys.modules if m.startswith('mawt.')))")
    loaded = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=ROOT).stdout)
    stages = {m.split(".")[1] for m in loaded if m.count(".") >= 1}
    assert not stages & {"training", "layer", "bases", "data"}, loaded
    assert "mawt.studies.runsfile" in loaded and "mawt.studies.study" not in loaded
