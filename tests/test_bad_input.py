"""Bad input, one row per case: each is refused with one short line that names the file (and the
key or line), before any work, and nothing is written; or, where the input is legitimate, it works.

An index of the cases (issue 20); "here" = this file, else the file that holds the test because it
needs a trained run, a Snakemake run or the Hugging Face cache:
  * run folders (train --out into another config's): test_training.py, test_a_run_folder_belongs_to_one_config
  * YAML (duplicate keys, alias bombs, size, encoding): here
  * numbers (nan, inf, negative, out of range; a layer named twice): here
  * the base model's shape before any job, a failed job's line in Snakemake's output: here
  * data read as text; a missing answer and a too-long row named by source row; --split missing: here
  * names (setup, study, variant, grid-built): here and test_faults.py, test_names_cannot_escape_results
  * localrules on SLURM: test_workflow.py, test_slurm_profile_dry_run_of_the_paper_setup
  * fetch --check (model, dataset, lm-eval tasks; nothing downloaded), whole reasons: test_fetch.py
  * a job killed at its time limit resumes when resubmitted: test_faults.py
  * Snakemake's --report before a run: test_workflow.py; paper_cost.py without a stand-in run: here
  * the job counts the docs state: test_benchmarks.py, test_docs_job_counts_are_what_snakemakes_dry_run...
"""

import json
import time
from pathlib import Path

import pytest
import yaml

from mawt.common import yamlfile
from mawt.training.runconfig import EvalConfig, RunConfig, load
from mawt.studies.setup import StudyError, load_setup
from mawt.studies.study import load_study_spec

ROOT = Path(__file__).resolve().parents[1]


def _bomb(levels: int) -> str:
    """A "billion laughs": 10 ** levels scalars once every alias is expanded, in a few hundred bytes."""
    names = [f"l{i}" for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{names[i]}: &{names[i]} [{', '.join(['*' + names[i - 1]] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


STUDY = "name: s\ndescription: d\nvariants:\n  v: {mawt: {depth: 2}}\n"

CASES = [
    # (case, file contents (str: UTF-8 text, bytes: as is), message pattern)
    ("duplicate variant", STUDY + "  v: {mawt: {depth: 4}}\n",
     r"study\.yaml: not valid YAML: duplicate key 'v' \(first at line 4\) at line 5, column 3"),
    ("duplicate top-level key", STUDY + "name: t\n", r"duplicate key 'name' \(first at line 1\) at line 5"),
    ("alias bomb of 10^9 in the description", STUDY + "description2: x\n" + _bomb(9),
     r"study\.yaml: expands to [\d,]+ nodes through its aliases \(& and \*\), more than the 100,000 allowed"),
    ("alias bomb of 10^5", STUDY + _bomb(5), r"expands to [\d,]+ nodes through its aliases"),
    ("Latin-1 file", "name: café\n".encode("latin-1") + STUDY.split("\n", 1)[1].encode(),
     r"study\.yaml: not UTF-8 \(byte 0xe9 at offset 9, line 1\); save it as UTF-8"),
    ("over the size limit", STUDY + "# " + "x" * yamlfile.MAX_BYTES + "\n",
     r"study\.yaml: [\d,]+ bytes, more than the 1,000,000 a YAML file here may have"),
]


@pytest.mark.parametrize("case, content, message", CASES, ids=[c[0] for c in CASES])
def test_a_bad_study_file_is_refused_in_one_short_line(tmp_path, case, content, message):
    path = tmp_path / "study.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    setup = load_setup("micro")
    started = time.perf_counter()
    with pytest.raises(StudyError, match=message) as err:
        load_study_spec(path, setup)
    assert time.perf_counter() - started < 1.0, case  # refused before any expansion
    assert "\n" not in str(err.value) and len(str(err.value)) < 400, str(err.value)[:1000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # nothing written


@pytest.mark.parametrize("loader, what", [(load, "run config"), (lambda p: load(p, EvalConfig), "eval config")])
def test_a_bad_run_or_eval_yaml_names_its_file(tmp_path, loader, what):
    path = tmp_path / "cfg.yaml"
    path.write_bytes("train: {steps: 2}\n# é\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{what} '.*cfg\.yaml': not UTF-8 \(byte 0xe9 at offset 20, line 2\)"):
        loader(path)
    path.write_text("train: {steps: 2}\ntrain: {steps: 3}\n")
    with pytest.raises(ValueError, match=rf"{what} '.*cfg\.yaml': not valid YAML: duplicate key 'train' "
                                         r"\(first at line 1\) at line 2"):
        loader(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=rf"{what} '.*cfg\.yaml': expected a mapping of settings, got list"):
        loader(path)


def test_a_long_offending_value_is_cut_in_the_message(tmp_path):
    path = tmp_path / "run.yaml"
    key = "k" * 5000
    path.write_text(f"? {key}\n: 1\n? {key}\n: 2\n")  # explicit keys: YAML's simple keys stop at 1024
    with pytest.raises(ValueError) as err:
        load(path)
    assert "duplicate key" in str(err.value) and len(str(err.value)) < 600


def test_aliases_within_the_limit_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {depth: 4, mixer: grpo}\nmawt: *b\n")
    assert yamlfile.load(path) == yaml.safe_load(path.read_text()) == {"base": {"depth": 4, "mixer": "grpo"},
                                                                      "mawt": {"depth": 4, "mixer": "grpo"}}


def test_every_shipped_yaml_goes_through_the_one_loader():
    for path in [*ROOT.glob("ablations/*.yaml"), *ROOT.glob("mawt/setups/*.yaml"), *ROOT.glob("examples/*.yaml")]:
        assert yamlfile.load(path) == yaml.safe_load(path.read_text()), path


@pytest.mark.integration
def test_paper_cost_without_a_stand_in_run_says_what_to_run(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper_cost.py"), "--results",
                           str(tmp_path / "none"), "--out", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "has no finished stand-in run" in proc.stderr and "setup=paper_standin" in proc.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("name, text, answers", [
    ("na.csv", "challenge,answer\nWhat is a?,NA\nWhat is b?,null\nWhat is c?,nan\nWhat is d?,None\n",
     ["NA", "null", "nan", "None"]),
    ("numbers.csv", "challenge,answer\nq1,12\nq2,007\n", ["12", "007"]),
    ("typed.jsonl", '{"challenge": "q1", "answer": 12}\n{"challenge": "q2", "answer": "NA"}\n', ["12", "NA"]),
])
def test_answers_are_read_as_text(tmp_path, name, text, answers):
    """No NA parsing and no dtype inference: "NA" is an answer, "007" keeps its zeros."""
    from mawt.data.sources import DataConfig, load_rows

    (tmp_path / name).write_text(text)
    assert [r["answer"] for r in load_rows(DataConfig(source=str(tmp_path / name)))] == answers


def test_a_missing_answer_names_the_file_and_its_source_row(tmp_path):
    from mawt.data.sources import DataConfig, load_rows

    path = tmp_path / "rows.jsonl"
    path.write_text('{"challenge": "q1", "answer": "a"}\n{"challenge": "q2", "answer": null}\n')
    with pytest.raises(ValueError, match=r"data.source='.*rows\.jsonl': source row 1 \(counting from 0, in file "
                                         r"order\) has an empty or missing challenge or answer"):
        load_rows(DataConfig(source=str(path)))


def test_train_with_a_missing_split_folder_is_one_line_and_writes_nothing(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(ROOT)  # the run YAML names no base: the shipped micro base, relative to the repository
    cfg = tmp_path / "run.yaml"
    cfg.write_text("mawt: {depth: 2, mixer: softmax}\ntrain: {steps: 1}\n")
    proc = cli("train", "--config", cfg, "--split", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert "train --split" in proc.stderr and "no train.jsonl there" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_grid_built_names_are_checked_like_written_ones(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("name: g\ngrid: {mawt.layers: [[-1], [-2, -1]]}\n")  # names from list values: brackets, spaces
    with pytest.raises(StudyError, match=r"g.yaml: key grid: the variant names \['layers-\[-1\]', 'layers-\[-2, -1\]'\] "
                                         r"built from its values do not match"):
        load_study_spec(path, load_setup("micro"))
    path.write_text("name: g\ngrid: {mawt.depth: [2, 8]}\n")
    assert {"depth-2", "depth-8"} <= set(load_study_spec(path, load_setup("micro")).variants)



def test_a_setup_with_resources_is_refused_naming_the_profile(tmp_path):
    """Resources moved to the profiles (workflow/profiles/): a setup that still sets them is told where."""
    path = tmp_path / "old.yaml"
    path.write_text("extends: micro\nname: old\nresources: {threads: 1, mem_mb: 3000, runtime: 30, gpus: 0}\n")
    with pytest.raises(StudyError, match=r"old.yaml: key resources: .* in a profile \(workflow/profiles/default, "
                                         r"workflow/profiles/slurm\) or with --set-threads / --set-resources"):
        load_setup(str(path))
    path.write_text("extends: micro\nname: old\n")
    assert "resources" not in load_setup(str(path))

# ---------------------------------------------------------------------------------------------------------
# Numbers in a run config (issue 20, item 3): every number of TrainConfig, EvalConfig, MAWTConfig and
# DataConfig has its range in the class's RANGES table (mawt/common/ranges.py checks it); floats must be finite.
# Each case is refused when the YAML is read, with the section.key, the value and the allowed range.
# ---------------------------------------------------------------------------------------------------------

NUMBER_CASES = [
    # (case, run YAML, message pattern: the rest of the line after the file and section)
    ("nan temperature", "eval: {temperature: .nan}",
     r"eval\.temperature=nan is invalid: must be a finite number >= 0 \(0 = greedy\)"),
    ("-inf temperature", "eval: {temperature: -.inf}",
     r"eval\.temperature=-inf is invalid: must be a finite number >= 0 \(0 = greedy\)"),
    ("top_p 0", "eval: {top_p: 0}", r"eval\.top_p=0\.0 is invalid: must be a finite number in \(0, 1\]"),
    ("top_p above 1", "eval: {top_p: 1.5}", r"eval\.top_p=1\.5 is invalid: must be a finite number in \(0, 1\]"),
    ("negative eval seed", "eval: {seed: -1}", r"eval\.seed=-1 is invalid: must be an integer >= 0"),
    ("negative beta", "train: {beta: -0.1}", r"train\.beta=-0\.1 is invalid: must be a finite number >= 0"),
    ("negative eta", "train: {eta: -0.001}", r"train\.eta=-0\.001 is invalid: must be a finite number >= 0"),
    ("negative weight_decay", "train: {weight_decay: -0.01}",
     r"train\.weight_decay=-0\.01 is invalid: must be a finite number >= 0"),
    ("negative warmup_steps", "train: {warmup_steps: -1}",
     r"train\.warmup_steps=-1 is invalid: must be an integer >= 0"),
    ("negative save_steps", "train: {save_steps: -5}",
     r"train\.save_steps=-5 is invalid: must be an integer >= 0 \(0 = none\)"),
    ("negative train seed", "train: {seed: -3}", r"train\.seed=-3 is invalid: must be an integer >= 0"),
    ("inf learning_rate", "train: {learning_rate: .inf}",
     r"train\.learning_rate=inf is invalid: must be a finite number > 0"),
    ("nan lambda_pg", "train: {lambda_pg: .nan}", r"train\.lambda_pg=nan is invalid: must be a finite number >= 0"),
    ("fractional steps", "train: {steps: 2.5}", r"train\.steps=2\.5 is invalid: must be an integer >= 1"),
    ("inf tau", "mawt: {tau: .inf}", r"mawt\.tau=inf is invalid: must be a finite number > 0"),
    ("nan tau", "mawt: {tau: .nan}", r"mawt\.tau=nan is invalid: must be a finite number > 0"),
    ("inf init_noise", "mawt: {init_noise: .inf}",
     r"mawt\.init_noise=inf is invalid: must be a finite number >= 0"),
    ("nan init_noise", "mawt: {init_noise: .nan}",
     r"mawt\.init_noise=nan is invalid: must be a finite number >= 0"),
    ("fixed_index past depth", "mawt: {mixer: fixed, depth: 2, fixed_index: 2}",
     r"mawt\.fixed_index=2 is invalid: must be an integer in 0\.\.1 \(depth=2\)"),
    ("selector_width 0", "mawt: {selector_width: 0}",
     r"mawt\.selector_width=0 is invalid: must be an integer >= 1"),
    ("layers [-1, -1]", "mawt: {layers: [-1, -1]}",
     r"mawt\.layers=\[-1, -1\] is invalid: names layer -1 twice: list each layer once"),
    ("layers [3, 3]", "mawt: {layers: [0, 3, 3]}",
     r"mawt\.layers=\[0, 3, 3\] is invalid: names layer 3 twice: list each layer once"),
    ("negative data seed", "data: {seed: -1}", r"data\.seed=-1 is invalid: must be an integer >= 0"),
    ("difficulty 9", "data: {difficulty: 9}", r"data\.difficulty=9 is invalid: must be an integer in 1\.\.3"),
    ("n_heldout 0", "data: {n_heldout: 0}",
     r"data\.n_heldout=0 is invalid: must be an integer >= 1 or null \(= every distinct row not in training\)"),
    ("last:0", "trainable: 'last:0'", r"trainable='last:0' is invalid: N in 'last:N' must be an integer >= 1"),
]


@pytest.mark.parametrize("case, text, message", NUMBER_CASES, ids=[c[0] for c in NUMBER_CASES])
def test_a_number_out_of_its_range_is_refused_naming_key_and_range(tmp_path, case, text, message):
    import re

    path = tmp_path / "run.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}(\.\w+)?: {message}$") as err:
        load(path)
    assert "\n" not in str(err.value) and "decoder layers" not in str(err.value), str(err.value)


def test_numbers_in_their_ranges_still_load(tmp_path):
    path = tmp_path / "run.yaml"  # PyYAML reads 1e-3 (no dot) as a string: load makes it the float
    path.write_text("train: {learning_rate: 1e-3, weight_decay: 0, save_steps: 0, beta: 0}\n"
                    "eval: {temperature: 0, top_p: 1}\nmawt: {init_noise: 0, layers: [-2, -1]}\n")
    cfg = load(path)
    assert cfg.train.learning_rate == 0.001 and isinstance(cfg.train.weight_decay, float)
    assert (cfg.train.save_steps, cfg.eval.top_p, cfg.mawt.layers) == (0, 1.0, [-2, -1])


def test_every_number_of_a_run_config_has_a_range():
    import dataclasses

    from mawt.layer.config import MAWTConfig
    from mawt.data.sources import DataConfig
    from mawt.training.runconfig import EvalConfig, TrainConfig

    for cls in (TrainConfig, EvalConfig, MAWTConfig, DataConfig):
        numbers = {f.name for f in dataclasses.fields(cls) if f.type.split(" |")[0] in ("int", "float")}
        assert numbers == set(cls.RANGES), (cls.__name__, numbers ^ set(cls.RANGES))


def test_train_with_a_number_out_of_range_is_one_line_and_writes_nothing(tmp_path, cli):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("train: {steps: 1, beta: -0.1}\n")
    proc = cli("train", "--config", cfg, "--out", tmp_path / "out")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert "train.beta=-0.1 is invalid: must be a finite number >= 0" in proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the base model's shape, before any job
# (issue 20, item 4: these runs passed `snakemake -n` and failed in the train job, the message only in its log)


def _workflow(tmp_path, *args, setup="micro", study=None):
    """`snakemake` (tests/test_workflow.py) on one study file, tmp_path/ablations/x.yaml."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_workflow import snakemake

    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "x.yaml").write_text(yaml.safe_dump(study))
    return snakemake(tmp_path, *args, setup=setup, ablations=tmp_path / "ablations", config=("studies=[x]",))


SHAPE_CASES = [  # (case, the variant on the 4-layer micro base, what the one line says after its key)
    ("layer out of range", {"mawt": {"layers": [10]}},
     r"mawt\.layers contains 10, out of range for a model with 4 decoder layers: allowed are 0\.\.3 or -4\.\.-1"),
    ("last:N over the layers", {"trainable": "last:99"},
     r"trainable='last:99' is invalid: N in 'last:N' must be an integer in 1\.\.4 \(the model has 4 decoder layers\)"),
    ("exact credit below the last layer", {"mawt": {"layers": [2]}, "train": {"credit": "exact"}},
     r"train\.credit='exact' needs MAWT only in the last layer \(3\), but it is also in layer\(s\) \[2\]: "
     r"use train\.credit 'token' .* or 'sequence'"),
    ("depth over the memory bound", {"mawt": {"depth": 1000000000}},
     r"mawt\.depth=1000000000 needs an estimated [\d,]+\.\d GiB for the MAWT layer\(s\) \[-1\] in training .*"
     r"more than the 80 GiB bound: allowed are depths 1\.\.\d+ with these settings"),
]


@pytest.mark.workflow
@pytest.mark.parametrize("case, variant, message", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_a_run_the_base_model_cannot_take_stops_the_workflow_before_any_job(tmp_path, case, variant, message):
    import re

    proc = _workflow(tmp_path, "-n", study={"name": "x", "seeds": [0], "variants": {"v": variant}})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "Invalid ablation configuration" in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert re.search(r"ablations/x\.yaml: key variants\.v: " + message + r" \(base model: assets/micro_base\)$",
                     lines[0]), lines[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_a_job_failing_at_run_time_shows_its_message_in_snakemakes_output(tmp_path):
    import re

    # train.max_length below every row's length: only the train job's tokenizer can see it
    setup = yaml.safe_load((ROOT / "mawt" / "setups" / "micro.yaml").read_text())
    setup.update(name="late", base_model=str(ROOT / "assets" / "micro_base"), seeds=[0])
    setup["data"].update(n_train=8, n_heldout=4)
    setup["run"]["train"].update(steps=1, max_length=8)
    (tmp_path / "late.yaml").write_text(yaml.safe_dump(setup))
    study = {"name": "x", "variants": {"v": {"mawt": {"depth": 2, "mixer": "softmax"}}}}
    proc = _workflow(tmp_path, "--cores", "1", "--until", "train", setup=tmp_path / "late.yaml", study=study)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert "job failed (exit 2); the end of its log" in proc.stderr, proc.stderr[-3000:]
    assert re.search(r"^error: .*row \d+.*: prompt \+ answer \+ eos is \d+ tokens, more than train\.max_length=8; "
                     r"raise train\.max_length$", proc.stderr, flags=re.M), proc.stderr[-3000:]


def test_the_shape_of_a_built_base_is_its_recipes_and_the_paper_runs_pass():
    from mawt.bases.micro import MicroConfig
    from mawt.training.preflight import GIB, MEMORY_BOUND_GIB, Shape, base_shape, check_against, memory_estimate
    from mawt.bases.standin import GEOMETRY
    from mawt.studies.study import load_studies, resolve_run

    def numbers(shape):
        return shape.num_hidden_layers, shape.num_attention_heads, shape.num_key_value_heads, shape.head_dim

    micro = MicroConfig()
    shape, _ = base_shape({"base_model": "pretrain", "pretrain": {"num_layers": 2}})
    assert numbers(shape) == (2, micro.heads, micro.kv_heads, micro.hidden // micro.heads)
    shape, _ = base_shape({"base_model": "standin", "standin": {"num_layers": 3}})
    assert numbers(shape) == (3, GEOMETRY["num_attention_heads"], GEOMETRY["num_key_value_heads"],
                              GEOMETRY["head_dim"])
    assert base_shape({"base_model": "nobody/no-such-model"})[0] is None  # not cached: left to the train job
    # every run of every shipped study on the paper setup fits the paper's 1.5B (28 layers), D=8 included
    paper = load_setup("paper")
    r1_distill = Shape(28, 12, 2, 128, "DeepSeek-R1-Distill-Qwen-1.5B")
    for study in load_studies(paper, folder=ROOT / "ablations").values():
        for variant in study.variants:
            check_against(resolve_run(paper, study, variant, 0), r1_distill)
    d8 = resolve_run(paper, load_studies(paper, ["depths"], ROOT / "ablations")["depths"], "depth-8", 0)
    assert d8.mawt.depth == 8 and memory_estimate(d8, r1_distill) < MEMORY_BOUND_GIB * GIB / 10
    # a transformers config or its config.json mapping work as well as a Shape: the 1.5B's geometry, 3 layers
    conf = {**GEOMETRY, "num_hidden_layers": 3}
    over = load({"mawt": {"layers": [0, -1]}, "trainable": "last:4"}, RunConfig, "probe")
    with pytest.raises(ValueError, match=r"last:4.* 3 "):
        check_against(over, conf)
    from transformers import Qwen2Config
    with pytest.raises(ValueError, match=r"last:4.* 3 "):
        check_against(over, Qwen2Config(**conf))


def test_a_too_long_train_row_is_named_by_its_source_row_and_file(tmp_path, monkeypatch):
    """The split is shuffled: its index means nothing to a user; the source file's row does."""
    from mawt.training.train import train_run

    monkeypatch.chdir(ROOT)  # the shipped micro base
    rows = [f"q{i},a{i}" for i in range(6)]
    rows[3] = "q3," + "x" * 400  # far over train.max_length=128 tokens (a character-level vocabulary)
    (tmp_path / "data.csv").write_text("challenge,answer\n" + "\n".join(rows) + "\n")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": str(tmp_path / "data.csv"), "n_train": 5, "n_heldout": 1},
                                   "mawt": {"depth": 2, "mixer": "softmax"}, "train": {"steps": 1}}))
    with pytest.raises(ValueError, match=r"data.source='.*data.csv': source row 3 \(counting from 0, in file order\): "
                                         r"prompt \+ answer \+ eos is \d+ tokens, more than train.max_length=128"):
        train_run(load(cfg), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_workflows_shape_check_imports_no_torch():
    """At every workflow start (and every `snakemake -n`): the recipes' shapes, and every module the
    workflow's rules import, without the seconds of torch, transformers or scipy (workflow/rules/common.smk)."""
    import subprocess
    import sys

    common = (Path(__file__).resolve().parents[1] / "workflow" / "rules" / "common.smk").read_text()
    imports = "; ".join(line for line in common.splitlines() if line.startswith("from mawt"))
    assert imports.count("from mawt") >= 5, imports
    probe = (f"import sys; {imports}; from mawt.training.preflight import base_shape; "
             "assert base_shape({'base_model': 'pretrain'})[0].num_hidden_layers == 4; "
             "assert base_shape({'base_model': 'standin'})[0].head_dim == 128; "
             "print(sorted(m for m in ('torch', 'transformers', 'tokenizers', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-2000:] + proc.stdout


def test_pretrain_micro_reads_its_config_file_and_refuses_an_unknown_key_in_it(tmp_path, cli):
    cfg = tmp_path / "micro.yaml"
    cfg.write_text("num_layerz: 2\n")
    proc = cli("pretrain-micro", "--config", cfg, "--out", tmp_path / "bad")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert str(cfg) in proc.stderr and "num_layerz" in proc.stderr and "num_layers" in proc.stderr
    assert not (tmp_path / "bad").exists()
    # a good file, with --overrides on top of it: both reach the pre-trained model
    cfg.write_text("num_layers: 1\nhidden: 16\nheads: 2\nkv_heads: 1\nintermediate: 32\nrows: 40\nsteps: 1\n")
    proc = cli("pretrain-micro", "--config", cfg, "--overrides", '{"hidden": 8}', "--out", tmp_path / "good")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = json.loads((tmp_path / "good" / "config.json").read_text())
    assert (model["num_hidden_layers"], model["hidden_size"]) == (1, 8)


def test_the_examples_and_the_docstring_example_load_and_teach_todays_grpo_defaults():
    """examples/*.yaml and runconfig.py's docstring are what a newcomer copies: each loads as a RunConfig, and
    where an example spells out a GRPO setting it is today's default (a withdrawn form must not be taught)."""
    import dataclasses
    import textwrap

    from mawt.training import runconfig
    from mawt.training.runconfig import RunConfig, TrainConfig, load

    doc = runconfig.__doc__.split("\n\n")[1]  # the indented example after the title line
    assert load(yaml.safe_load(textwrap.dedent(doc)), RunConfig).mawt.depth == 4
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    grpo = ("group_size", "lambda_pg", "beta", "eta", "credit", "advantage", "reward_control")
    for path in ROOT.glob("examples/*.yaml"):
        cfg = load(str(path), RunConfig)
        spelled = yaml.safe_load(path.read_text()).get("train", {})
        assert {k: spelled[k] for k in grpo if k in spelled} == {k: defaults[k] for k in grpo if k in spelled}, path
        assert cfg.train.steps >= 1
