"""How far the depths moved apart (mawt/evaluation/divergence.py), against independent definitions:
scipy's Jensen-Shannon distance, numpy's Frobenius norm, and the 5D tensor of a whole-model forward."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from mawt.evaluation.divergence import DIVERGENCE_ITEMS, depth_divergence, pairwise_jsd_bits, transform_distance


def _scipy_jsd_bits(rows: np.ndarray) -> np.ndarray:
    """scipy returns the JS *distance* (the square root of the divergence)."""
    D = rows.shape[-1]
    return np.array([np.mean([jensenshannon(r[:, d], r[:, e], base=2) ** 2
                              for d, e in itertools.combinations(range(D), 2)]) for r in rows])


def test_jsd_equals_scipys_on_adversarial_rows():
    """Random rows with zeros (masked keys), identical depths (0 bits), disjoint supports (1 bit),
    one-hot rows, D = 2 and D = 5."""
    g = torch.Generator().manual_seed(0)
    for D in (2, 5):
        x = torch.rand(6, 9, D, generator=g, dtype=torch.float64)
        x[0, :4] = 0  # causal / padded keys
        x[1] = x[1, :, :1]  # every depth the same row
        x[2] = 0
        x[2, 0, 0], x[2, 1:, 1:] = 1.0, 1.0  # depth 0 on key 0, the others elsewhere
        x[3] = 0
        x[3, torch.arange(D) % 9, torch.arange(D)] = 1.0  # one-hot on distinct keys
        x = x / x.sum(1, keepdim=True)
        ours = pairwise_jsd_bits(x).numpy()
        np.testing.assert_allclose(ours, _scipy_jsd_bits(x.double().numpy()), rtol=1e-9, atol=1e-12)
        assert ours[1] == pytest.approx(0.0, abs=1e-12) and ours[3] == pytest.approx(1.0)


def test_transform_distance_equals_the_norms_by_hand():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, 4, generator=g)
    a = w.double().numpy()
    by_hand = np.mean([np.linalg.norm(a[d] - a[e]) / np.linalg.norm(a[d])
                       for d in range(3) for e in range(3) if d != e])
    assert transform_distance(w) == pytest.approx(by_hand, rel=1e-12)
    assert transform_distance(w[:1].expand(3, 4, 4)) == 0.0


def test_a_silent_depth_is_no_reference_but_is_compared_against():
    """A planted silent depth (its B zero): the pairs with a zero reference are left out, not inf, and the
    others read ||W_d - 0|| / ||W_d|| = 1."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 4, 4, generator=g)
    w[2] = 0
    a = w.double().numpy()
    by_hand = np.mean([np.linalg.norm(a[d] - a[e]) / np.linalg.norm(a[d]) for d in range(2) for e in range(3) if d != e])
    assert transform_distance(w) == pytest.approx(by_hand, rel=1e-12)
    assert transform_distance(w[[0, 2]]) == pytest.approx(1.0)
    assert np.isnan(transform_distance(torch.zeros(2, 4, 4)))


def test_an_untrained_layer_sits_at_the_inits_expected_distance():
    """A_d = I + N(0, s^2) per entry: ||A_d - A_d'||_F ~ s sqrt(2) hd and ||A_d||_F ~ sqrt(hd), so the
    relative distance is ~ s sqrt(2 hd), the number the module docstring quotes."""
    g = torch.Generator().manual_seed(2)
    hd, s = 32, 0.01
    w = torch.eye(hd) + s * torch.randn(8, hd, hd, generator=g)
    assert transform_distance(w) == pytest.approx(s * (2 * hd) ** 0.5, rel=0.05)


def _model(micro_base, init_noise):
    from transformers import AutoModelForCausalLM

    from mawt import MAWTConfig, patch_model

    torch.manual_seed(0)
    return patch_model(AutoModelForCausalLM.from_pretrained(micro_base),
                       MAWTConfig(depth=3, mixer="grpo", init_noise=init_noise)).eval()


def test_identical_depths_give_zero_and_apart_depths_the_whole_forwards_value(micro_base):
    """init_noise 0: every depth the same map, so 0 bits and 0 distance. Depths pushed apart: the record's
    JSD equals the mean over pairs, heads and answer-predicting positions of the 5D tensor that a
    whole-model forward captures (computed here with scipy), whether or not the teacher-forced input to
    the last layer is handed over."""
    from transformers import AutoTokenizer

    from mawt import capture
    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate
    from mawt.layer.depthwise import run_layers

    tok = AutoTokenizer.from_pretrained(micro_base)
    rows = generate(DIVERGENCE_ITEMS + 4, ["shift_two", "reverse"])  # the first ones only
    same = depth_divergence(_model(micro_base, 0.0), tok, rows, 64)
    assert same["jsd_bits"] == pytest.approx(0.0, abs=1e-9)
    assert same["distance_query"] == 0.0 and same["distance_output"] == 0.0

    model = _model(micro_base, 0.3)
    batch = AnswerCollator(tok.pad_token_id)([encode_example(tok, r, 64) for r in rows])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        position_ids = torch.arange(ids.shape[1])[None].expand_as(ids)
        prefix = run_layers(model, model.model.embed_tokens(ids), mask, position_ids, 0, len(model.model.layers) - 1)
    keep = DIVERGENCE_ITEMS
    batch = {k: v[:keep] for k, v in batch.items()}
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad(), capture(model) as cap:
        model(input_ids=ids, attention_mask=mask)
    (maps,) = cap.attentions.values()  # (B, H, L, L, D)
    labels = batch["labels"]
    predicting = [(b, t) for b in range(ids.shape[0]) for t in range(ids.shape[1] - 1) if labels[b, t + 1] != -100]
    assert len(predicting) > len(rows)  # several answer tokens per item (the EOS included)
    expected = np.mean([_scipy_jsd_bits(maps[b, :, t].double().numpy()).mean() for b, t in predicting])
    got = depth_divergence(model, tok, rows, 64)
    assert got["items"] == DIVERGENCE_ITEMS
    assert got["jsd_bits"] == pytest.approx(expected, rel=1e-6) and got["jsd_bits"] > 1e-3
    handed = depth_divergence(model, tok, rows, 64, prefix)
    assert handed["jsd_bits"] == pytest.approx(expected, rel=1e-5)
    attn = model.model.layers[-1].self_attn
    assert got["distance_query"] == pytest.approx(transform_distance(attn.depth_query)) and got["distance_query"] > 0.1


def test_no_record_without_a_depth_choice(micro_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mawt import MAWTConfig, patch_model
    from mawt.data.puzzles import generate

    tok = AutoTokenizer.from_pretrained(micro_base)
    rows = generate(2, ["shift_two"])
    plain = AutoModelForCausalLM.from_pretrained(micro_base)
    assert depth_divergence(plain, tok, rows, 64) is None
    one = patch_model(AutoModelForCausalLM.from_pretrained(micro_base), MAWTConfig(depth=1, mixer="fixed"))
    assert depth_divergence(one, tok, rows, 64) is None


def test_the_heldout_record_and_its_table_columns(micro_base):
    """evaluate_heldout writes the record (the teacher-forced input handed over), and the run's table
    row carries its three numbers."""
    from transformers import AutoTokenizer

    from mawt.analysis.results import _divergence_columns
    from mawt.data.puzzles import generate
    from mawt.evaluation.evaluate import evaluate_heldout
    from mawt.training.runconfig import EvalConfig

    tok = AutoTokenizer.from_pretrained(micro_base)
    rows = generate(10, ["shift_two", "reverse"])
    model = _model(micro_base, 0.3)
    held = evaluate_heldout(model, tok, rows, EvalConfig(max_new_tokens=12, max_length=64))
    alone = depth_divergence(model, tok, rows, 64)
    assert held["divergence"]["jsd_bits"] == pytest.approx(alone["jsd_bits"], rel=1e-5)
    assert _divergence_columns(held) == {f"divergence_{k}": pytest.approx(held["divergence"][k])
                                         for k in ("jsd_bits", "distance_query", "distance_output")}
