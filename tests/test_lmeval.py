"""The local lm-eval tasks (mawt/evaluation/lmeval_tasks) run through mawt.evaluation.lmeval.run_lm_eval.

`verbal_heldout` must generate and score exactly what mawt's own evaluation does
(mawt.evaluation.evaluate: same prompts of mawt.data.prompts.prompt_text, chat template and thinking mode
included, same stopping at EOS or the budget, same mawt.evaluation.scoring scores), for a plain
checkpoint and for a MAWT checkpoint with a DeepSeek-R1-style chat template.
`verbal_choice` must be lm-eval's own log-likelihood path, agreeing with a direct
forward pass.
"""

import importlib.util
import json
import string
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from mawt import MAWTConfig, load_model, patch_model
from mawt.data import puzzles
from mawt.data.split import read_jsonl
from mawt.data.prompts import prompt_text, think_open
from mawt.evaluation.evaluate import evaluate_heldout
from mawt.evaluation.generation import generate_answers
from mawt.__main__ import main
from mawt.evaluation.lmeval import LMEVAL_DIR, gen_kwargs, run_lm_eval
from mawt.bases.micro import MicroConfig, build_model, pretrain, train_tokenizer
from mawt.training.runconfig import EvalConfig
from mawt.evaluation.scoring import SCORES, challenge_metric, challenge_strict, exact_match  # lm-eval metric names

MICRO_BASE = Path(__file__).resolve().parents[1] / "assets" / "micro_base"
# A DeepSeek-R1-style template: the generation prompt opens <think>, assistant turns drop
# everything up to "</think>".
R1_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
    "{% elif m['role'] == 'assistant' %}{% set c = m['content'] %}{% if '</think>' in c %}"
    "{% set c = c.split('</think>')[-1] %}{% endif %}{{ '<｜Assistant｜>' + c + eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)
BUDGET = {"empty": 24, "native": 96}  # native: prompt + budget > the 128-token window


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _utils():
    spec = importlib.util.spec_from_file_location("verbal_task_utils", LMEVAL_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The shipped micro base (no chat template; answers end in EOS), 8 held-out rows, and one
    lm-eval run of both tasks (batch 5: other batches and padding than mawt's)."""
    root = tmp_path_factory.mktemp("plain")
    model_dir = MICRO_BASE
    if not (model_dir / "model.safetensors").is_file():  # a checkout without the asset: a brief pre-training
        cfg = MicroConfig(num_layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, rows=500, steps=30,
                          batch_size=32, difficulty=1)
        model_dir = pretrain(cfg, root / "model", log_steps=30)
    heldout = _write_jsonl(root / "heldout.jsonl", puzzles.generate(8, ["reverse", "shift", "sort_letters"], seed=1))
    out = root / "lmeval.json"
    result = run_lm_eval(model_dir, ["verbal_heldout", "verbal_choice"], out, heldout=heldout,
                         eval_cfg=EvalConfig(batch_size=5))
    return model_dir, heldout, out, result


def _r1_tokenizer():
    tok = train_tokenizer()
    tok.add_special_tokens({"bos_token": "<｜begin▁of▁sentence｜>",
                            "additional_special_tokens": ["<｜User｜>", "<｜Assistant｜>"]})
    tok.chat_template = R1_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def r1_mawt(tmp_path_factory):
    """A MAWT `grpo` checkpoint with large random weights (only lowercase letters, space, '.,<>/'
    and newline have output embeddings: readable, varied outputs, some ending in EOS, some
    running to the budget) and a DeepSeek-R1-style chat-template tokenizer. Some gold answers
    are taken from the model's own answers so that every score is non-trivial."""
    root = tmp_path_factory.mktemp("r1")
    tok = _r1_tokenizer()
    model = build_model(MicroConfig(num_layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128), tok)
    torch.manual_seed(0)
    keep = set(string.ascii_lowercase + " .,<>/\n")
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
        emb = model.get_input_embeddings().weight  # tied: also the output embeddings
        for i in range(len(tok)):
            if i not in tok.all_special_ids and tok.decode([i]) not in keep:
                emb[i] = 0
    patch_model(model, MAWTConfig(depth=2, mixer="grpo"))
    model.eval()
    rows = puzzles.generate(8, ["reverse", "sort_letters", "shift"], seed=2)  # prompts of several lengths
    own = {mode: generate_answers(model, tok, [r["challenge"] for r in rows],
                                  EvalConfig(thinking=mode, max_new_tokens=BUDGET[mode]))
           for mode in BUDGET}
    for i, r in enumerate(rows):
        mode = ("empty", "native")[i % 2]
        words = [w for w in own[mode][i].translate(str.maketrans(".,<>/\n", "      ")).split() if len(w) <= 8]
        if i % 4 == 0 and 0 < len(own[mode][i]) < BUDGET["empty"] - 1:
            r["answer"] = own[mode][i]  # the whole answer: exact match
        elif words:
            r["answer"] = words[len(words) // 2]  # one word of it: the challenge metric
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    return root / "model", _write_jsonl(root / "heldout.jsonl", rows)


@pytest.fixture(scope="module")
def r1_runs(r1_mawt, tmp_path_factory):
    """Per thinking mode: mawt.evaluation.evaluate's result and run_lm_eval's (both tasks, batch 3 vs 4)."""
    model_dir, heldout = r1_mawt
    root = tmp_path_factory.mktemp("r1_runs")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_model(model_dir)
    rows = read_jsonl(heldout)
    runs = {}
    for mode, budget in BUDGET.items():
        own = evaluate_heldout(model, tokenizer, rows, EvalConfig(thinking=mode, max_new_tokens=budget, batch_size=3))
        tasks = ["verbal_heldout", "verbal_choice"] if mode == "empty" else ["verbal_heldout"]
        lm = run_lm_eval(model_dir, tasks, root / f"{mode}.json", heldout=heldout,
                         eval_cfg=EvalConfig(thinking=mode, max_new_tokens=budget, batch_size=4))
        runs[mode] = own, lm
    return runs


# ---------------------------------------------------------------- verbal_heldout


def test_verbal_heldout_scores_what_mawt_evaluation_scores(plain):
    model_dir, heldout, out, result = plain
    saved = json.loads(out.read_text())
    assert not list(out.parent.glob(f".{out.name}.tmp*"))  # mawt.common.atomic's hidden temporary: renamed away
    assert saved["model"] == str(model_dir) and saved["lm_eval_version"]
    assert saved["eval"] == json.loads(json.dumps(EvalConfig(batch_size=5).__dict__))
    assert saved["n"] == {"verbal_heldout": 8, "verbal_choice": 8}
    scores = saved["tasks"]["verbal_heldout"]
    for metric in SCORES:
        assert 0.0 <= scores[metric] <= 1.0
        assert scores[f"{metric}_stderr"] >= 0.0
    assert "responses" not in saved and "samples" not in saved and "loglikelihoods" not in saved

    rows = read_jsonl(heldout)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_model(model_dir)
    own = generate_answers(model, tokenizer, [r["challenge"] for r in rows])
    assert result["responses"]["verbal_heldout"] == own
    mawt_eval = evaluate_heldout(model, tokenizer, rows, EvalConfig())
    assert [i["prediction"] for i in mawt_eval["items"]] == own
    for metric in SCORES:
        assert scores[metric] == pytest.approx(mawt_eval[metric])
    assert 0 < scores["challenge_metric"]  # the trained base gets some right


@pytest.mark.parametrize("mode", list(BUDGET))
def test_same_answers_and_scores_with_an_r1_chat_template(r1_mawt, r1_runs, mode):
    own, lm = r1_runs[mode]
    items = own["items"]
    assert lm["n"]["verbal_heldout"] == len(items) == 8
    assert own["think_open"] == (mode == "native")
    assert lm["responses"]["verbal_heldout"] == [i["prediction"] for i in items]
    assert lm["eval"]["thinking"] == mode and lm["eval"]["max_new_tokens"] == BUDGET[mode]
    for metric in SCORES:
        assert lm["tasks"]["verbal_heldout"][metric] == pytest.approx(own[metric]), metric
    # non-trivial: varied outputs, some finished, some cut at the budget; right and wrong answers
    assert len(set(lm["responses"]["verbal_heldout"])) == len(items)
    assert 0 < own["truncation_rate"] < 1
    assert 0 < own["challenge_metric"] < 1
    if mode == "empty":
        assert own["exact_match"] > 0 and own["challenge_strict"] == own["challenge_metric"]
    else:  # the thinking never closes: strict counts those wrong, in both evaluations
        assert own["challenge_strict"] < own["challenge_metric"]
        assert max(i["output_tokens"] for i in items) == BUDGET["native"]
        # some prompt + budget exceed the model's window: lm-eval's default max_length would cut the prompt
        tokenizer = AutoTokenizer.from_pretrained(r1_mawt[0])
        window = load_model(r1_mawt[0]).config.max_position_embeddings
        assert max(len(tokenizer(prompt_text(tokenizer, i["challenge"], mode), add_special_tokens=False)["input_ids"])
                   for i in items) + BUDGET[mode] > window


def test_native_thinking_answers_run_longer(r1_runs):
    empty, native = r1_runs["empty"][0], r1_runs["native"][0]
    assert native["mean_output_tokens"] > empty["mean_output_tokens"]


def test_task_prompt_is_the_training_prompt(r1_mawt, plain):
    from lm_eval.tasks import TaskManager

    cases = [(plain[0], plain[1], "empty"), (r1_mawt[0], r1_mawt[1], "empty"), (r1_mawt[0], r1_mawt[1], "native")]
    for model_dir, heldout, mode in cases:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        manager = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=False,
                              metadata={"heldout": str(heldout), "tokenizer": str(model_dir), "thinking": mode})
        rows = read_jsonl(heldout)
        want = [prompt_text(tokenizer, r["challenge"], mode) for r in rows]
        for name in ("verbal_heldout", "verbal_choice"):
            task = manager.load([name])["tasks"][name]
            task.set_config(key="num_fewshot", value=0)
            task.build_all_requests()
            contexts = [inst.args[0] for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx))]
            if name == "verbal_choice":
                contexts = contexts[::4]  # one request per choice
            assert contexts == want
            assert all(d["think_open"] == think_open(tokenizer, mode) for d in task.eval_docs)
        if model_dir == r1_mawt[0]:
            assert want[0].startswith("<｜begin▁of▁sentence｜><｜User｜>")
            assert want[0].endswith("</think>\n\n" if mode == "empty" else "<｜Assistant｜><think>\n")


def test_samples_are_averaged_pass_at_1(plain, tmp_path):
    """n_samples > 1: `repeats` samples per doc, the score of a doc the mean over them (as mawt)."""
    model_dir, heldout, _, _ = plain
    cfg = EvalConfig(temperature=1.0, top_p=0.95, n_samples=3, seed=1, batch_size=8)
    result = run_lm_eval(model_dir, ["verbal_heldout"], tmp_path / "o.json", heldout=heldout, limit=4, eval_cfg=cfg)
    assert result["n"] == {"verbal_heldout": 4}
    rows = read_jsonl(heldout)[:4]
    samples = result["responses"]["verbal_heldout"]
    assert [len(s) for s in samples] == [3] * 4 and all(isinstance(x, str) for s in samples for x in s)
    scores = result["tasks"]["verbal_heldout"]
    per_doc = {"exact_match": exact_match, "challenge_metric": challenge_metric,
               "challenge_strict": lambda r, g: challenge_strict(r, g, False)}
    for metric, fn in per_doc.items():
        want = sum(sum(fn(x, r["answer"]) for x in s) / 3 for s, r in zip(samples, rows)) / 4
        assert scores[metric] == pytest.approx(want)
    assert json.loads((tmp_path / "o.json").read_text())["eval"]["n_samples"] == 3


def test_gen_kwargs_of_an_eval_config():
    assert gen_kwargs(EvalConfig(max_new_tokens=7)) == {"max_gen_toks": 7, "do_sample": False}
    assert gen_kwargs(EvalConfig(temperature=0.6, top_p=0.95, n_samples=4)) == {
        "max_gen_toks": 24, "do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 0}


def test_cli_refuses_a_bad_eval_config_before_any_work(tmp_path, capsys):
    bad = tmp_path / "eval.yaml"
    bad.write_text("max_new_token: 64\n")
    assert main(["lm-eval", "--model", str(tmp_path / "missing"), "--tasks", "verbal_heldout", "--out",
                 str(tmp_path / "o.json"), "--eval-config", str(bad)]) == 2
    assert "max_new_token" in capsys.readouterr().err and not (tmp_path / "o.json").exists()


def test_unknown_task_is_a_clear_error(plain, tmp_path):
    model_dir = plain[0]
    with pytest.raises(ValueError, match=r"'no_such_task_xyz' could not be loaded.*[Oo]ffline only local tasks"):
        run_lm_eval(model_dir, ["no_such_task_xyz"], tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


# ---------------------------------------------------------------- verbal_choice


def test_choices_are_deterministic_distinct_and_of_the_same_family():
    utils = _utils()
    rows = puzzles.generate(12, ["reverse", "shift", "sort_letters"], seed=3)
    rows.append({"challenge": "x", "answer": rows[0]["answer"].upper() + ".", "family": "reverse"})  # gold's twin
    sets = [utils.choice_set(rows, i) for i in range(len(rows))]
    assert sets == [utils.choice_set(rows, i) for i in range(len(rows))]
    assert len({gold for _, gold in sets}) > 1  # the gold's position varies
    by_family = {}
    for r in rows:
        by_family.setdefault(r["family"], set()).add(r["answer"])
    for i, (choices, gold) in enumerate(sets):
        assert len(choices) == 4 and choices[gold] == rows[i]["answer"]
        keys = [c.lower().strip(".") for c in choices]
        assert len(set(keys)) == 4  # distinct after normalisation (the twin never joins its gold)
        same = by_family[rows[i]["family"]] - {rows[i]["answer"]}
        if len(same) >= 3 + 1:  # enough answers in the family (one may be the gold's twin)
            assert all(c in same for j, c in enumerate(choices) if j != gold)
    no_family = [{k: v for k, v in r.items() if k != "family"} for r in rows[:6]]
    choices, gold = utils.choice_set(no_family, 0)
    assert set(choices) <= {r["answer"] for r in no_family} and choices[gold] == no_family[0]["answer"]
    with pytest.raises(ValueError, match="distractor"):
        utils.choice_set(rows[:3], 0)


@torch.no_grad()
def _direct(model_dir, tokenizer, prompt, choices):
    """Per choice, from one unpadded forward pass of prompt + choice (mawt's format: prompt tokens,
    then the choice's): the log-likelihood of the choice's tokens after the prompt, and that of the
    prompt's trailing whitespace after the rest of it (lm-eval scores both, see verbal_choice.yaml)."""
    if str(model_dir) not in _direct.models:
        _direct.models[str(model_dir)] = load_model(model_dir).eval()
    model = _direct.models[str(model_dir)]
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    ctx, head = enc(prompt), len(enc(prompt.rstrip()))
    assert enc(prompt)[:head] == enc(prompt.rstrip())
    choice_lls, ws = [], []
    for choice in choices:
        ids = ctx + enc(choice)
        assert ids == enc(prompt + choice)
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        token_lp = logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]  # position t predicts token t + 1
        choice_lls.append(float(token_lp[len(ctx) - 1 :].sum()))
        ws.append(float(token_lp[head - 1 : len(ctx) - 1].sum()))
    return choice_lls, ws


_direct.models = {}


@pytest.mark.parametrize("which", ["plain", "r1_mawt"])
def test_choice_loglikelihoods_are_a_forward_pass(which, plain, r1_mawt, r1_runs):
    from lm_eval.tasks import TaskManager

    if which == "plain":
        model_dir, heldout, _, result = plain
    else:
        (model_dir, heldout), result = r1_mawt, r1_runs["empty"][1]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    manager = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=False,
                          metadata={"heldout": str(heldout), "tokenizer": str(model_dir), "thinking": "empty"})
    docs = list(manager.load(["verbal_choice"])["tasks"]["verbal_choice"].eval_docs)
    lls = result["loglikelihoods"]["verbal_choice"]
    assert len(lls) == len(docs) == 8
    right = right_norm = 0
    for doc, doc_lls in zip(docs, lls):
        choice_lls, ws = _direct(model_dir, tokenizer, doc["prompt"], doc["choices"])
        assert max(ws) - min(ws) < 1e-5 and ws[0] < 0  # the whitespace term: one value per item
        assert doc_lls == pytest.approx([ws[0] + c for c in choice_lls], abs=1e-4)
        right += max(range(4), key=lambda j: choice_lls[j]) == doc["gold"]
        right_norm += max(range(4), key=lambda j: doc_lls[j] / len(doc["choices"][j])) == doc["gold"]
    scores = result["tasks"]["verbal_choice"]
    assert scores["acc"] == pytest.approx(right / len(docs))
    assert scores["acc_norm"] == pytest.approx(right_norm / len(docs))
    if which == "plain":
        assert scores["acc"] > 0.5  # the trained base prefers its gold answers

