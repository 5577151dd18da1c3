"""The `verbal_heldout` lm-eval task (workflow/lmeval) run through mawt.lmeval.run_lm_eval.

It must score exactly what mawt's own evaluation scores: same prompt, same greedy
answers (mawt.evaluate.generate_answers), same mawt.scoring metrics.
"""

import json

import pytest
import torch
from transformers import AutoTokenizer

from mawt import MAWTConfig, load_model, patch_model, puzzles
from mawt.data import prompt_text, read_jsonl
from mawt.evaluate import generate_answers
from mawt.lmeval import LMEVAL_DIR, run_lm_eval
from mawt.micro import MicroConfig, build_model, pretrain, train_tokenizer
from mawt.scoring import challenge_correct, exact_match


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """A shrunken, briefly pre-trained micro base and a 6-row held-out file."""
    root = tmp_path_factory.mktemp("lmeval")
    cfg = MicroConfig(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, rows=500, steps=30,
                      batch_size=32, difficulty=1)
    model_dir = pretrain(cfg, root / "model", log_steps=30)
    heldout = _write_jsonl(root / "heldout.jsonl", puzzles.generate(6, ["reverse"], seed=1))
    return model_dir, heldout


@pytest.fixture(scope="module")
def noisy_mawt(tmp_path_factory):
    """A MAWT checkpoint with large random weights: long, varied greedy outputs (with
    leading spaces, control and invalid-UTF-8 bytes), a real test of answer equality."""
    root = tmp_path_factory.mktemp("noisy")
    tokenizer = train_tokenizer()
    model = build_model(MicroConfig(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128), tokenizer)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    patch_model(model, MAWTConfig(depth=2, mixer="softmax"))
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    rows = puzzles.generate(12, ["reverse", "sort_letters", "shift"], seed=2)  # prompts of several lengths
    return root / "model", _write_jsonl(root / "heldout.jsonl", rows)


def _own_answers(model_dir, heldout):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = read_jsonl(heldout)
    answers = generate_answers(load_model(model_dir), tokenizer, [r["challenge"] for r in rows], max_new_tokens=24)
    return rows, answers


def test_verbal_heldout_scores_what_mawt_evaluation_scores(micro, tmp_path):
    model_dir, heldout = micro
    out = tmp_path / "lmeval.json"
    result = run_lm_eval(model_dir, ["verbal_heldout"], out, heldout=heldout)

    saved = json.loads(out.read_text())
    assert not (tmp_path / "lmeval.json.tmp").exists()
    assert saved["model"] == str(model_dir) and saved["lm_eval_version"]
    assert saved["n"] == {"verbal_heldout": 6}
    scores = saved["tasks"]["verbal_heldout"]
    for metric in ("exact_match", "challenge_metric"):
        assert 0.0 <= scores[metric] <= 1.0
        assert scores[f"{metric}_stderr"] >= 0.0
    assert "responses" not in saved and "samples" not in saved

    rows, own = _own_answers(model_dir, heldout)
    assert result["responses"]["verbal_heldout"] == own
    n = len(rows)
    assert scores["exact_match"] == pytest.approx(sum(exact_match(a, r["answer"]) for a, r in zip(own, rows)) / n)
    assert scores["challenge_metric"] == pytest.approx(
        sum(challenge_correct(a, r["answer"]) for a, r in zip(own, rows)) / n)


def test_same_answers_on_a_mawt_checkpoint_with_varied_outputs(noisy_mawt, tmp_path):
    model_dir, heldout = noisy_mawt
    result = run_lm_eval(model_dir, ["verbal_heldout"], tmp_path / "out.json", heldout=heldout, batch_size=5)
    rows, own = _own_answers(model_dir, heldout)
    assert result["n"] == {"verbal_heldout": len(rows)}
    assert len({len(r["challenge"]) for r in rows}) > 1 and any(own)  # padding in play; non-trivial outputs
    assert result["responses"]["verbal_heldout"] == own


def test_task_prompt_is_the_training_prompt(micro):
    from lm_eval.tasks import TaskManager

    model_dir, heldout = micro
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert not getattr(tokenizer, "chat_template", None)
    manager = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=False, metadata={"heldout": str(heldout)})
    task = manager.load(["verbal_heldout"])["tasks"]["verbal_heldout"]
    task.set_config(key="num_fewshot", value=0)
    task.build_all_requests()
    contexts = [inst.args[0] for inst in sorted(task.instances, key=lambda i: i.doc_id)]
    assert contexts == [prompt_text(tokenizer, r["challenge"]) for r in read_jsonl(heldout)]


def test_limit(micro, tmp_path):
    model_dir, heldout = micro
    assert run_lm_eval(model_dir, ["verbal_heldout"], tmp_path / "o.json", heldout=heldout, limit=2)["n"] == {
        "verbal_heldout": 2}


def test_unknown_task_is_a_clear_error(micro, tmp_path):
    model_dir, _ = micro
    with pytest.raises(ValueError, match=r"'no_such_task_xyz' could not be loaded.*[Oo]ffline only local tasks"):
        run_lm_eval(model_dir, ["no_such_task_xyz"], tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()
