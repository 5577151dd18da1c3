"""Held-out evaluation: the teacher-forced greedy decision against real greedy generation."""

import pytest
import torch

from mawt import MAWTConfig, patch_model, puzzles
from mawt.evaluate import evaluate_heldout, generate_answers, teacher_forced
from mawt.micro import MicroConfig, pretrain
from mawt.scoring import exact_match


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    """A briefly pre-trained micro base with a GRPO MAWT layer (noisy slices): varied greedy outputs."""
    from transformers import AutoTokenizer

    from mawt import load_model

    cfg = MicroConfig(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, rows=800, steps=120,
                      batch_size=32, difficulty=1, vocabulary="words")  # words: learns to answer (and stop) fast
    path = pretrain(cfg, tmp_path_factory.mktemp("eval") / "model", log_steps=60)
    model = patch_model(load_model(path), MAWTConfig(depth=2, mixer="grpo", init_noise=0.2)).eval()
    return model, AutoTokenizer.from_pretrained(path)


def test_teacher_forced_exact_match_equals_greedy_generation_on_every_item(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = puzzles.generate(48, ["reverse", "drop_first", "shift"], difficulty=1, seed=5, distinct=False)
    own = generate_answers(model, tokenizer, [r["challenge"] for r in rows], batch_size=16, max_new_tokens=12)
    # Adversarial golds: a third are the model's own greedy answer (greedy must reproduce them), a third
    # its answer in upper case (exact match after normalisation, but not token for token), a third the
    # real gold (mostly wrong for this barely trained model).
    for i, r in enumerate(rows):
        if i % 3 == 0 and own[i]:
            r["answer"] = own[i]
        elif i % 3 == 1 and own[i]:
            r["answer"] = own[i].upper() if own[i].upper() != own[i] else own[i] + "x"
    result = evaluate_heldout(model, tokenizer, rows, max_length=128, batch_size=16, max_new_tokens=12)
    regenerated = generate_answers(model, tokenizer, [r["challenge"] for r in rows], batch_size=16, max_new_tokens=12)
    decisions = [item["greedy_gold"] for item in result["items"]]
    assert 0 < sum(decisions) < len(rows), "the check needs both outcomes"
    for i, (item, text) in enumerate(zip(result["items"], regenerated, strict=True)):
        assert item["exact_match"] == exact_match(text, rows[i]["answer"]), (i, item, text)
        if item["greedy_gold"]:  # the forced decision never claims a match that generation does not give
            assert text == rows[i]["answer"], (i, text, rows[i]["answer"])
        else:
            assert item["prediction"] == text
    # generation ran only where the forced pass said no
    assert result["generated"] == len(rows) - sum(decisions)


def test_selector_statistics_cover_every_item_at_answer_positions(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = puzzles.generate(40, ["reverse"], difficulty=1, seed=6, distinct=False)
    losses, greedy, selection = teacher_forced(model, tokenizer, rows, max_length=128, batch_size=16)
    usage = [selection[f"depth_usage_{d}"] for d in range(2)]
    assert sum(usage) == pytest.approx(1.0, abs=1e-6)
    # by hand: one item at a time, the argmax choice at the positions that predict answer tokens
    chosen, count = torch.zeros(2), 0
    for r in rows:
        _, _, one = teacher_forced(model, tokenizer, [r], max_length=128, batch_size=1)
        n = len(tokenizer(r["answer"], add_special_tokens=False)["input_ids"]) + 1  # + eos
        chosen += torch.tensor([one[f"depth_usage_{d}"] for d in range(2)]) * n
        count += n
    assert usage == pytest.approx((chosen / count).tolist(), abs=1e-5)
    assert 0.0 <= selection["selector_entropy"] <= torch.log(torch.tensor(2.0)).item() + 1e-6
    assert len(losses) == len(greedy) == 40 and all(x > 0 for x in losses)


def test_a_prompt_longer_than_max_length_is_an_error_not_a_zero_loss(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = [{"challenge": "Spell " + "abc" * 30 + " backwards.", "answer": "cba"}]
    with pytest.raises(ValueError, match="held-out row 0: the prompt alone is longer than max_length=32"):
        teacher_forced(model, tokenizer, rows, max_length=32)
