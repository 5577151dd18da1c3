"""Honest greedy scores (issue 19, items 4 and 5).

* Greedy decoding is the plain argmax whatever the checkpoint's generation_config.json
  asks for: every evaluation path (eval-heldout, `evaluate_heldout` on any model, lm-eval's
  `verbal_heldout`) must give exactly the answers of a hand-written argmax loop on a base
  whose file sets a repetition penalty, an n-gram ban and R1-style sampling settings.
* A top-1 tie at an answer position is no greedy decision: the item is generated.
* `exact_match` credits the verbatim gold of a `;`-separated answer (what fine-tuning
  teaches), as well as each alternative.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from mawt import load_model
from mawt.data import puzzles
from mawt.evaluation.evaluate import eval_heldout, evaluate_heldout, teacher_forced
from mawt.evaluation.generation import generate
from mawt.training.models import load_checkpoint, with_pad_token
from mawt.data.prompts import AnswerCollator, encode_example, prompt_text
from mawt.training.runconfig import EvalConfig
from mawt.evaluation.scoring import exact_match
from mawt.bases.standin_puzzles import puzzle_rows

MICRO_BASE = Path(__file__).resolve().parents[1] / "assets" / "micro_base"
BUDGET = 16
GREEDY = EvalConfig(batch_size=8, max_new_tokens=BUDGET)
# What a checkpoint's generation_config.json may hold: the penalties of the issue, and
# DeepSeek-R1's sampling defaults plus a top-k and min-p cut.
OWN_SETTINGS = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "do_sample": True, "temperature": 0.6,
                "top_p": 0.95, "top_k": 5, "min_p": 0.2}


def argmax_decode(model, tokenizer, challenge: str, budget: int = BUDGET) -> str:
    """Real greedy decoding, by hand: one full forward pass per step, the argmax appended,
    stopped at EOS or the budget; the answer text as mawt.evaluation.generation.generate decodes it."""
    ids = tokenizer(prompt_text(tokenizer, challenge), add_special_tokens=False)["input_ids"]
    out: list[int] = []
    with torch.no_grad():
        while len(out) < budget and (not out or out[-1] != tokenizer.eos_token_id):
            logits = model(input_ids=torch.tensor([ids + out])).logits  # (1, L, V)
            out.append(int(logits[0, -1].argmax()))
    return tokenizer.decode(out, skip_special_tokens=True).strip()


def own_config_answer(model, tokenizer, challenge: str) -> str:
    """What the old evaluation generated: `do_sample=False` and the budget passed, everything
    else filled by transformers from the model's own (the checkpoint's) generation config."""
    enc = tokenizer(prompt_text(tokenizer, challenge), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=BUDGET, do_sample=False, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    ids = out[0, enc["input_ids"].shape[1] :].tolist()
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def penalised(tmp_path_factory):
    """The shipped micro base with OWN_SETTINGS in its generation_config.json, 24 held-out rows
    with adversarial golds and each row's hand-decoded greedy answer. Golds: a third the
    model's own greedy answer (the shortcut accepts them), a third that answer in upper case
    (an exact match after normalisation but not token for token: generated), a third the
    real gold."""
    root = tmp_path_factory.mktemp("penalised")
    model_dir = root / "model"
    shutil.copytree(MICRO_BASE, model_dir)
    path = model_dir / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **OWN_SETTINGS}, indent=2))
    model = load_model(model_dir).eval()  # a plain load keeps the checkpoint's generation config
    assert {k: getattr(model.generation_config, k) for k in OWN_SETTINGS} == OWN_SETTINGS
    tokenizer = with_pad_token(AutoTokenizer.from_pretrained(model_dir))
    rows = puzzles.generate(24, ["reverse", "shift", "drop_first"], seed=3)
    greedy = [argmax_decode(model, tokenizer, r["challenge"]) for r in rows]
    for i, (r, text) in enumerate(zip(rows, greedy, strict=True)):
        if not 0 < len(tokenizer(text, add_special_tokens=False)["input_ids"]) < BUDGET:
            continue  # the budget must fit a gold and its EOS
        if i % 3 == 0:
            r["answer"] = text
        elif i % 3 == 1 and text.upper() != text:
            r["answer"] = text.upper()
    own = [own_config_answer(model, tokenizer, r["challenge"]) for r in rows]
    heldout = root / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return model_dir, model, tokenizer, rows, greedy, own, heldout


def _check_scores_are_argmax_decoding(result: dict, rows: list[dict], greedy: list[str]) -> None:
    assert [item["prediction"] for item in result["items"]] == greedy
    truth = [exact_match(text, r["answer"]) for text, r in zip(greedy, rows, strict=True)]
    assert [item["exact_match"] for item in result["items"]] == [float(t) for t in truth]
    assert result["exact_match"] == pytest.approx(sum(truth) / len(rows))


def test_eval_heldout_scores_argmax_decoding_whatever_the_checkpoint_config_says(penalised, tmp_path):
    model_dir, _, _, rows, greedy, own, heldout = penalised
    result = eval_heldout(model_dir, heldout, tmp_path / "heldout.json", GREEDY, device="cpu")
    _check_scores_are_argmax_decoding(result, rows, greedy)
    accepted = [item["greedy_gold"] for item in result["items"]]
    assert 0 < sum(accepted) < len(rows), "the check needs the shortcut and generation"
    assert result["generated"] == len(rows) - sum(accepted)
    # The fixture is adversarial: the old evaluation (the shortcut, then generation with the
    # checkpoint's own settings for the rest) scores these rows differently.
    old = [1.0 if ok else float(exact_match(text, r["answer"])) for ok, text, r in zip(accepted, own, rows)]
    assert sum(old) / len(rows) != pytest.approx(result["exact_match"]), (sum(old) / len(rows), result["exact_match"])
    assert any(text != g for ok, text, g in zip(accepted, own, greedy) if not ok)


def test_evaluate_heldout_ignores_the_generation_config_of_the_model_it_is_given(penalised):
    _, model, tokenizer, rows, greedy, _, _ = penalised  # loaded plainly: the penalties are in its config
    result = evaluate_heldout(model, tokenizer, rows, GREEDY)
    _check_scores_are_argmax_decoding(result, rows, greedy)
    # the model's own config is back after the call
    assert {k: getattr(model.generation_config, k) for k in OWN_SETTINGS} == OWN_SETTINGS


def test_sampling_uses_only_the_eval_config(penalised):
    """Samples from the penalised checkpoint equal those from the same weights with a bare
    generation config (the shipped base): nothing of the checkpoint's file reaches them."""
    _, model, tokenizer, rows, _, _, _ = penalised
    bare = load_model(MICRO_BASE).eval()
    cfg = EvalConfig(batch_size=4, max_new_tokens=BUDGET, temperature=1.0, top_p=0.9, n_samples=3, seed=7)
    prompts = [prompt_text(tokenizer, r["challenge"]) for r in rows[:8]]
    samples = generate(model, tokenizer, prompts, cfg)
    assert samples == generate(bare, tokenizer, prompts, cfg)
    assert len({s["text"] for group in samples for s in group}) > 8, "varied samples"


def test_lm_eval_generates_argmax_decoding_whatever_the_checkpoint_config_says(penalised, tmp_path):
    from mawt.evaluation.lmeval import run_lm_eval

    model_dir, _, _, rows, greedy, _, heldout = penalised
    result = run_lm_eval(model_dir, ["verbal_heldout"], tmp_path / "lmeval.json", heldout=heldout, eval_cfg=GREEDY)
    assert result["responses"]["verbal_heldout"] == greedy
    truth = [exact_match(text, r["answer"]) for text, r in zip(greedy, rows, strict=True)]
    assert result["tasks"]["verbal_heldout"]["exact_match"] == pytest.approx(sum(truth) / len(rows))


def test_a_top1_tie_at_an_answer_position_is_generated_not_accepted(penalised):
    model_dir, _, _, rows, _, _, _ = penalised
    model, tokenizer = load_checkpoint(model_dir, "cpu")
    model.eval()
    _, before, _ = teacher_forced(model, tokenizer, rows, GREEDY.max_length, GREEDY.batch_size)
    first = next(i for i, ok in enumerate(before) if ok)
    gold = tokenizer(rows[first]["answer"], add_special_tokens=False)["input_ids"][0]  # a letter
    twin = model.config.vocab_size - 1  # a byte no prompt or answer holds, after `gold`
    assert twin > gold and all(twin not in tokenizer(prompt_text(tokenizer, r["challenge"]) + r["answer"])["input_ids"]
                               for r in rows)

    def tie(module, args, logits):  # token `twin` always scores exactly as `gold`
        logits = logits.clone()
        logits[..., twin] = logits[..., gold]
        return logits

    hook = model.lm_head.register_forward_hook(tie)
    try:
        # the old rule (argmax == gold; argmax takes the first of tied values) still accepts the item
        batch = AnswerCollator(tokenizer.pad_token_id)([encode_example(tokenizer, rows[first], GREEDY.max_length)])
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"]).logits[0, :-1]  # (L-1, V)
        labels, answer = batch["labels"][0, 1:], batch["labels"][0, 1:] != -100
        assert bool((logits.argmax(-1) == labels)[answer].all())
        assert bool((logits[answer, labels[answer]] == logits[answer].topk(2).values[:, 1]).any()), "a real tie"

        result = evaluate_heldout(model, tokenizer, rows, GREEDY)
        tied = [i for i, (ok, item) in enumerate(zip(before, result["items"])) if ok and not item["greedy_gold"]]
        assert first in tied
        assert result["generated"] > len(rows) - sum(before)  # the tied items went to generation
        for i in tied:
            text = argmax_decode(model, tokenizer, rows[i]["challenge"])
            assert gold in tokenizer(rows[i]["answer"], add_special_tokens=False)["input_ids"]
            assert result["items"][i]["prediction"] == text
            assert result["items"][i]["exact_match"] == float(exact_match(text, rows[i]["answer"]))
    finally:
        hook.remove()


# ---------------------------------------------------------------- exact_match and `;` golds
# Golds in the format of nuprl/verbal-reasoning-challenge: `;` separates alternatives,
# commas and `-->` arrows are parts of one answer.


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("Chicago; Chicago, Illinois", "Chicago; Chicago, Illinois", True),  # the gold verbatim
        ("Chicago", "Chicago; Chicago, Illinois", True),  # each alternative
        ("chicago, illinois", "Chicago; Chicago, Illinois", True),
        ("Illinois", "Chicago; Chicago, Illinois", False),
        ("Chicago, Illinois; Chicago", "Chicago; Chicago, Illinois", False),  # verbatim, not reordered
        ("pasta; pastas", "pasta; pastas", True),
        ("**Pasta; Pastas.**", "pasta; pastas", True),  # normalised as any answer
        (r"\boxed{pasta; pastas}", "pasta; pastas", True),
        ("  pasta;   pastas ", "pasta; pastas", True),
        ("pastas", "pasta; pastas", True),
        ("pasta pastas", "pasta; pastas", False),
        ("pasta, pastas", "pasta; pastas", False),
        ("pasta;pastas", "pasta; pastas", False),  # the gold's own spacing after `;`
        ("hand; hard", "hand; hard; harm", False),  # some alternatives are not the gold
        ("<think>hand? hard?</think>hand; hard", "hand; hard", True),
        ("Hawaii, Alaska; Alaska, Hawaii", "Hawaii, Alaska; Alaska, Hawaii", True),
        ("alaska, hawaii", "Hawaii, Alaska; Alaska, Hawaii", True),
        ("live --> life --> lime", "live --> life --> lime", True),
        ("live → life → lime", "live --> life --> lime", False),
        ("wolf --> flow; lows --> slow", "wolf --> flow; lows --> slow", True),
        ("lows --> slow", "wolf --> flow; lows --> slow", True),
        ("St. Louis, Mo.; St. Louis", "St. Louis, Mo.; St. Louis", True),
        ("paris", "paris;", True),
        ("...", "...; ...", False),  # nothing left of any alternative: never a match
        ("", "a; b", False),
    ],
)
def test_exact_match_credits_the_verbatim_gold_and_each_alternative(response, gold, expected):
    assert exact_match(response, gold) is expected


def test_every_standin_gold_matches_itself_and_each_of_its_alternatives():
    rows = puzzle_rows()
    assert len(rows) == 360
    assert sum(";" in r["answer"] for r in rows) >= 10, "the property needs golds with alternatives"
    assert [r["answer"] for r in rows if not exact_match(r["answer"], r["answer"])] == []
    assert [(r["answer"], alt) for r in rows for alt in r["answer"].split(";")
            if alt.strip() and not exact_match(alt, r["answer"])] == []
