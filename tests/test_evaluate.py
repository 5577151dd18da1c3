"""Held-out evaluation: the teacher-forced greedy decision against real greedy generation."""

import pytest
import torch

from mawt import MAWTConfig, patch_model
from mawt.data import puzzles
from mawt.evaluation.evaluate import evaluate_heldout, teacher_forced
from mawt.evaluation.generation import generate, generate_answers
from mawt.training.runconfig import EvalConfig
from mawt.evaluation.scoring import challenge_metric, challenge_strict, exact_match, think_closed

GREEDY = EvalConfig(batch_size=16, max_new_tokens=12)


@pytest.fixture(scope="module")
def model_and_tokenizer(micro_base):
    """The shipped micro base with a GRPO MAWT layer (noisy depths): varied greedy outputs."""
    from transformers import AutoTokenizer

    from mawt import load_model

    path = micro_base
    model = patch_model(load_model(path), MAWTConfig(depth=2, mixer="grpo", init_noise=0.2)).eval()
    return model, AutoTokenizer.from_pretrained(path)


def test_teacher_forced_exact_match_equals_greedy_generation_on_every_item(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = puzzles.generate(48, ["reverse", "drop_first", "shift"], difficulty=1, seed=5, distinct=False)
    own = generate_answers(model, tokenizer, [r["challenge"] for r in rows], GREEDY)
    # Adversarial golds: a third are the model's own greedy answer (greedy must reproduce them), a third
    # its answer in upper case (exact match after normalisation, but not token for token), a third the
    # real gold (mostly wrong for this barely trained model).
    for i, r in enumerate(rows):
        if i % 3 == 0 and own[i]:
            r["answer"] = own[i]
        elif i % 3 == 1 and own[i]:
            r["answer"] = own[i].upper() if own[i].upper() != own[i] else own[i] + "x"
    result = evaluate_heldout(model, tokenizer, rows, GREEDY)
    regenerated = generate_answers(model, tokenizer, [r["challenge"] for r in rows], GREEDY)
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
    # what the choice is worth (mawt/evaluation/worth.py): its learned policy is the model's own greedy forward
    worth = result["worth"]
    assert worth["loss_learned"] == pytest.approx(result["heldout_answer_loss"], abs=1e-5)
    assert worth["em_learned"] == pytest.approx(sum(decisions) / len(rows), abs=1e-9)  # no ties in float32
    assert worth["loss_oracle"] <= min(worth["loss_learned"], worth["loss_uniform"], worth["loss_best"])
    assert worth["em_oracle"] >= max(worth["em_learned"], worth["em_uniform"], worth["em_best"])
    assert worth["loss_best"] == min(worth["loss_depth"]) and len(worth["loss_depth"]) == 2


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


def test_a_prompt_longer_than_max_length_is_refused_with_its_row_not_a_zero_loss(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = [{"challenge": "Spell cat backwards.", "answer": "tac"},
            {"challenge": "Spell " + "abc" * 30 + " backwards.", "answer": "cba", "ID": 77}]
    with pytest.raises(ValueError, match=r"row 1 \(ID 77\): prompt \+ answer \+ eos is \d+ tokens, more than "
                                         r"eval.max_length=40; raise eval.max_length"):
        evaluate_heldout(model, tokenizer, rows, EvalConfig(max_length=40))


def test_a_budget_below_the_longest_answer_is_refused_before_any_work(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rows = [{"challenge": "Spell cat backwards.", "answer": "abcdefgh"}]
    with pytest.raises(ValueError, match=r"eval.max_new_tokens=4 is below the longest held-out answer \(9 tokens"):
        evaluate_heldout(model, tokenizer, rows, EvalConfig(max_new_tokens=4))


@pytest.mark.parametrize("field, value, message", [
    ("n_samples", 0, "eval.n_samples=0 is invalid: must be an integer >= 1"),
    ("temperature", -0.1, "eval.temperature=-0.1 is invalid: must be a finite number >= 0"),
    ("thinking", "maybe", "eval.thinking='maybe' is invalid: allowed are empty, native"),
    ("n_samples", 4, "eval.n_samples=4 needs eval.temperature > 0"),
])
def test_bad_eval_settings_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, field, value, message):
    import yaml

    from mawt.__main__ import main

    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({field: value}))
    out = tmp_path / "heldout.json"
    code = main(["eval-heldout", "--model", str(tmp_path / "nowhere"), "--heldout", str(tmp_path / "h.jsonl"),
                 "--eval-config", str(tmp_path / "eval.yaml"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.fixture(scope="module")
def thinking_model():
    """A tiny random Qwen2 with the stand-in's R1-Distill tokenizer (chat template opening <think>)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mawt.bases.standin import padded_vocab
    from mawt.bases.standin_tokenizer import load_tokenizer

    tok = load_tokenizer()
    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=padded_vocab(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # make EOS and </think> likely, so outputs end in every way
        model.lm_head.weight[tok.eos_token_id] += 0.4 * model.model.embed_tokens.weight.std() * 10
        model.lm_head.weight[tok.convert_tokens_to_ids("</think>")] += 0.5
    return model, tok


def test_reasoning_quantities_per_item_follow_the_samples(thinking_model):
    model, tok = thinking_model
    rows = puzzles.generate(12, ["reverse"], difficulty=1, seed=2)
    for mode in ("empty", "native"):
        cfg = EvalConfig(batch_size=5, max_new_tokens=16, thinking=mode, temperature=1.0, n_samples=3, seed=4)
        result = evaluate_heldout(model, tok, rows, cfg)
        assert result["think_open"] is (mode == "native")
        assert result["generated"] == 12 * 3  # sampling: every item generated, no shortcut
        for item in result["items"]:
            samples = item["samples"]
            assert len(samples) == 3
            assert all(1 <= s["tokens"] <= 16 and (s["eos"] or s["tokens"] == 16) for s in samples)
            for s in samples:
                assert s["think_closed"] == think_closed(s["prediction"], mode == "native")
                assert s["challenge_metric"] == challenge_metric(s["prediction"], item["answer"])
                assert s["challenge_strict"] == challenge_strict(s["prediction"], item["answer"], mode == "native")
            assert item["truncated"] == pytest.approx(sum(not s["eos"] for s in samples) / 3)
            assert item["think_closed"] == pytest.approx(sum(s["think_closed"] for s in samples) / 3)
            assert item["output_tokens"] == pytest.approx(sum(s["tokens"] for s in samples) / 3)
            assert item["challenge_metric"] == pytest.approx(sum(s["challenge_metric"] for s in samples) / 3)
        rates = [i["truncated"] for i in result["items"]]
        assert result["truncation_rate"] == pytest.approx(sum(rates) / 12)
        assert 0 < result["truncation_rate"] < 1, "the check needs finished and truncated samples"
        if mode == "native":
            assert 0 < result["closed_think_rate"] < 1
        again = evaluate_heldout(model, tok, rows, cfg)
        assert [i["samples"] for i in again["items"]] == [i["samples"] for i in result["items"]]  # seeded


def test_generation_stops_only_at_eos_or_the_budget(thinking_model):
    model, tok = thinking_model
    prompts = ["x\n" * 3] * 4
    out = generate(model, tok, prompts, EvalConfig(batch_size=4, max_new_tokens=20, temperature=1.0, seed=0))
    by_ids = []
    for group in out:
        s = group[0]
        assert s["eos"] or s["tokens"] == 20
        by_ids.append(s["tokens"])
    assert len(set(by_ids)) > 1 or all(s == 20 for s in by_ids)


# ------------------------------------------------- selection statistics (training log and held-out)
def _adversarial_selections(seed: int = 7, B: int = 4, L: int = 9, D: int = 3):
    """Three layers over one padded batch: a sharp learned selector (hard weights), a flat one
    (soft weights), a constant mixer (no selector). Left padding, right padding and a row of
    padding only; the padded positions hold extreme weights and logits, which must not count."""
    from mawt.layer.mixers import Selection

    g = torch.Generator().manual_seed(seed)
    valid = torch.ones(B, L, dtype=torch.bool)
    valid[0, :5] = False
    valid[1, -2:] = False
    valid[3] = False
    pad = ~valid[..., None]
    sels = []
    for scale, hard in ((6.0, True), (0.2, False)):
        logits = (torch.randn(B, L, D, generator=g) * scale).masked_fill(pad & (torch.arange(D) == 0), 60.0)
        log_probs = torch.log_softmax(logits, -1)
        weights = torch.nn.functional.one_hot(logits.argmax(-1), D).float() if hard else log_probs.exp()
        sels.append(Selection(weights=weights.masked_fill(pad, 1e4), valid=valid, logits=logits,
                              log_probs=log_probs))
    sels.append(Selection(weights=torch.full((B, L, D), 1 / D).masked_fill(pad, -1e4), valid=valid))
    return sels


def _stats_by_definition(sels, positions=None, policy=False, pooled=False) -> dict:
    """The definition (mawt/layer/selection.py) from the raw Selection tensors, in float64 loops."""
    usages, entropies, count = [], [], 0
    for s in sels:
        B, L, D = s.weights.shape
        mask = (s.valid if positions is None else positions).tolist()
        w = s.log_probs.double().exp() if policy else s.weights.double()
        h = None if s.log_probs is None else -(s.log_probs.double().exp() * s.log_probs.double()).sum(-1)
        rows = [[t for t in range(L) if mask[b][t]] for b in range(B)]
        count = sum(len(r) for r in rows)
        if pooled:  # every position weighs the same
            usages.append([sum(float(w[b, t, d]) for b in range(B) for t in rows[b]) for d in range(D)])
            if h is not None:
                entropies.append(sum(float(h[b, t]) for b in range(B) for t in rows[b]))
        else:  # every row weighs the same (a row without positions: 0)
            usages.append([sum(sum(float(w[b, t, d]) for t in rows[b]) / max(len(rows[b]), 1) for b in range(B)) / B
                           for d in range(D)])
            if h is not None:
                entropies.append(sum(sum(float(h[b, t]) for t in rows[b]) / max(len(rows[b]), 1)
                                     for b in range(B)) / B)
    n = count if pooled else 1
    out = {f"depth_usage_{d}": sum(u[d] for u in usages) / len(usages) / n for d in range(len(usages[0]))}
    if entropies:
        out["selector_entropy"] = sum(entropies) / len(entropies) / n
    return out


@pytest.mark.unit
def test_selection_statistics_follow_their_definition_on_padded_batches():
    """One function for the training log (per row), exact credit (the policy) and the held-out
    statistics (pooled over batches), against a re-implementation from the raw tensors."""
    from mawt.layer.selection import selection_stats

    sels = _adversarial_selections()

    def check(got, expected):
        assert got.keys() == expected.keys()
        for k in expected:
            assert got[k] == pytest.approx(expected[k], rel=1e-6, abs=1e-7), k

    check(selection_stats(sels).as_dict(), _stats_by_definition(sels))
    check(selection_stats(sels[:2], policy=True).as_dict(), _stats_by_definition(sels[:2], policy=True))
    assert set(selection_stats(sels[2:]).as_dict()) == {"depth_usage_0", "depth_usage_1", "depth_usage_2"}
    # pooled: answer-predicting positions (a subset of the valid ones), summed over two batches
    positions = sels[0].valid & (torch.rand(sels[0].valid.shape, generator=torch.Generator().manual_seed(1)) < 0.6)
    halves = [[type(s)(**{k: v[rows] if torch.is_tensor(v) else v for k, v in vars(s).items()}) for s in sels]
              for rows in (slice(0, 2), slice(2, 4))]
    first, second = (selection_stats(h, positions[rows], pooled=True)
                     for h, rows in zip(halves, (slice(0, 2), slice(2, 4))))
    assert first.positions + second.positions == int(positions.sum())
    check((first + second).as_dict(), _stats_by_definition(sels, positions, pooled=True))
    assert selection_stats(sels, torch.zeros_like(positions), pooled=True).as_dict() == {}
    assert selection_stats([]) is None
