"""The GRPO step's last layer at the answer cells only (mawt.layer.depthwise.last_layer_at) against
transformers' own decoder layer run at every position: the same hidden states, losses and gradients.

The reference is the model's own `Qwen2DecoderLayer.forward` over every position, gathered at the
answer cells afterwards; the fast path runs the MLP block only at those cells. Row for row the
products are the same; the weight gradients sum over fewer (zero-gradient) rows, in another order."""

from __future__ import annotations

import pytest
import torch


def _batch(tok, n=4):
    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate

    rows = generate(n, ["shift_two", "reverse"])
    return AnswerCollator(tok.pad_token_id)([encode_example(tok, r, 64) for r in rows])


def _model(base_dir, depth=3, trainable="last", **mawt):
    from transformers import AutoModelForCausalLM

    from mawt import MAWTConfig, freeze, patch_model

    torch.manual_seed(0)
    model = patch_model(AutoModelForCausalLM.from_pretrained(base_dir),
                        MAWTConfig(depth=depth, init_noise=0.3, **mawt))
    freeze(model, trainable)
    return model.train()


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _close(g1, g2):
    assert g1.keys() == g2.keys() and g1
    # each gradient to 1e-4 of its largest entry: float32 sums in another order (a wrong row or a
    # missing residual differs by O(1))
    for n in g1:
        assert (g1[n] - g2[n]).abs().max() <= 1e-4 * g2[n].abs().max() + 1e-7, n


LAYERS = {  # the MAWT layer's paths the answer window runs through
    "fused-stats": dict(mixer="grpo"),
    "routed-hidden": dict(mixer="grpo", selector_input="hidden"),
    "materialized-gate": dict(mixer="softmax", path="materialized", gate="head"),
    "fused-gumbel-both": dict(mixer="gumbel", selector_input="both"),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_last_layer_at_the_answer_cells_is_the_whole_layer_gathered(micro_base, layer):
    """Hidden states at the answer cells (padding and several answer lengths in the batch) and the
    gradients they send to every trainable parameter equal the whole layer's, gathered, on every
    path of the MAWT layer: the queries of the answer window only (`queries_from`), the same
    sampled choices there (the window draws what the whole sequence draws)."""
    from transformers import AutoTokenizer

    from mawt.layer.depthwise import answer_logits, run_layers

    tok = AutoTokenizer.from_pretrained(micro_base)
    batch = _batch(tok)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert (mask == 0).any(), "the batch must hold padding"
    cells = labels[:, 1:] != -100
    pos = torch.arange(ids.shape[1])[None].expand_as(ids)
    n = None
    out = {}
    for fast in (True, False):
        model = _model(micro_base, **LAYERS[layer])
        n = len(model.model.layers)
        attn = model.model.layers[-1].self_attn
        assert attn.routes == (layer == "routed-hidden")
        torch.manual_seed(1)  # the selector's sampled choices: the same draws in both
        hidden = run_layers(model, model.model.embed_tokens(ids), mask, pos, 0, n, cells=cells if fast else None)
        logits, _, gold = answer_logits(model, hidden, labels)
        torch.nn.functional.cross_entropy(logits, gold).backward()
        rows = hidden if fast else hidden[:, :-1][cells]
        out[fast] = (rows.detach(), logits.detach(), _grads(model))
    assert out[True][0].shape == (int(cells.sum()), model.config.hidden_size)
    assert attn.queries_from == 0  # reset after the forward
    # the answer window runs attention as a rectangular masked block (other kernels than the square causal
    # one): with ATEN_CPU_CAPABILITY=default the rows (values ~50) differ by up to 1.8e-4, measured; a wrong
    # window (its RoPE positions, its draws) differs by O(1)
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(out[True][1], out[False][1], rtol=1e-5, atol=1e-3)
    _close(out[True][2], out[False][2])
    with pytest.raises(ValueError, match="last layer"):
        run_layers(model, model.model.embed_tokens(ids), mask, pos, 0, n - 1, cells=cells)


@pytest.mark.parametrize("credit,trainable", [("token", "last"), ("sequence", "last:2"), ("exact", "last")])
def test_grpo_loss_at_the_answer_cells_equals_the_whole_layer(tmp_path, micro_base, credit, trainable):
    """The GRPO loss, its logged parts and its gradients with the last layer's MLP block at the
    answer cells only equal those of the whole layer, for every credit form."""
    from transformers import AutoTokenizer, TrainingArguments

    from mawt.training.runconfig import TrainConfig
    from mawt.training.trainer import MAWTTrainer

    tok = AutoTokenizer.from_pretrained(micro_base)
    batch = _batch(tok)
    results = {}
    for fast in (True, False):
        model = _model(micro_base, trainable=trainable)
        args = TrainingArguments(output_dir=str(tmp_path / str(fast)), report_to=[], use_cpu=True)
        trainer = MAWTTrainer(model=model, args=args, run=TrainConfig(group_size=4, credit=credit), use_grpo=True)
        trainer.grpo_loss.cells_only = fast
        torch.manual_seed(2)
        loss, parts = trainer.grpo_loss(model, batch)
        loss.backward()
        results[fast] = (loss.item(), parts, _grads(model))
    (l1, p1, g1), (l2, p2, g2) = results[True], results[False]
    assert l1 == pytest.approx(l2, rel=1e-5, abs=1e-7)
    assert p1.keys() == p2.keys()
    for k in p1:
        assert p1[k] == pytest.approx(p2[k], rel=1e-4, abs=1e-6), k
    _close(g1, g2)


def test_depth_worth_outcomes_at_the_answer_cells_equal_the_whole_layer(micro_base):
    """What each depth's choice gives at every answer cell (mawt.evaluation.worth.outcomes: CE and
    strict top-1) is the same with the last layer at the answer cells as with every position."""
    from transformers import AutoTokenizer

    from mawt.layer import depthwise
    from mawt.evaluation import worth

    tok = AutoTokenizer.from_pretrained(micro_base)
    batch = _batch(tok, n=6)
    from mawt import MAWTConfig, patch_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = MAWTConfig(depth=3, init_noise=0.3, mixer="grpo", selector_input="hidden")
    model = patch_model(AutoModelForCausalLM.from_pretrained(micro_base), cfg).eval()
    fast = worth.outcomes(model, batch)
    every = depthwise.every_depth

    def whole_layer(*args, cells=None, **kwargs):
        return every(*args, **kwargs)  # the reference: every position

    depthwise_every, worth.every_depth = worth.every_depth, whole_layer
    try:
        ref = worth.outcomes(model, batch)
    finally:
        worth.every_depth = depthwise_every
    for a, b in zip(fast, ref, strict=True):
        if a.dtype == torch.bool or a.dtype == torch.long:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("trainable,mawt", [("last", dict(depth=1, mixer="fixed")), ("all", dict(depth=1, mixer="fixed")),
                                            ("mawt", dict(depth=3, mixer="softmax")),
                                            ("last:2", dict(depth=3, mixer="gumbel", gate="head"))])
def test_cross_entropy_loss_at_the_answer_cells_equals_the_models_own_forward(tmp_path, micro_base, trainable, mawt):
    """The trainer's cross-entropy loss (every mixer but grpo) computed only where it reads
    (`cell_answer_ce`: the frozen layers without grad, the last layer at the answer window, the head
    at the answer cells) against transformers' own forward of the whole model at every position:
    the same loss, logged parts and gradients."""
    from transformers import AutoTokenizer, TrainingArguments

    from mawt.training.runconfig import TrainConfig
    from mawt.training.trainer import MAWTTrainer

    tok = AutoTokenizer.from_pretrained(micro_base)
    batch = _batch(tok)
    results = {}
    for fast in (True, False):
        model = _model(micro_base, trainable=trainable, **mawt)
        args = TrainingArguments(output_dir=str(tmp_path / str(fast)), report_to=[], use_cpu=True)
        trainer = MAWTTrainer(model=model, args=args, run=TrainConfig(), use_grpo=False)
        trainer.cells_only = fast
        torch.manual_seed(2)  # gumbel's draws: the same in both
        trainer.compute_loss(model, batch).backward()
        results[fast] = ({k: v[-1] for k, v in trainer._parts.items()}, _grads(model))
    (p1, g1), (p2, g2) = results[True], results[False]
    assert p1.keys() == p2.keys() and "loss_ce" in p1
    for k in p1:
        assert p1[k] == pytest.approx(p2[k], rel=1e-5, abs=1e-6), k
    _close(g1, g2)


def test_teacher_forced_pass_equals_the_models_own_logits(micro_base):
    """The held-out teacher-forced pass (the last layer and the head at the answer cells only)
    gives each item's answer CE and greedy decision as the model's own forward over every position."""
    from transformers import AutoTokenizer

    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate
    from mawt.evaluation.evaluate import teacher_forced

    tok = AutoTokenizer.from_pretrained(micro_base)
    model = _model(micro_base, mixer="grpo").eval()
    rows = generate(12, ["shift_two", "reverse"])
    losses, greedy, _ = teacher_forced(model, tok, rows, 64, batch_size=5)
    batch = AnswerCollator(tok.pad_token_id)([encode_example(tok, r, 64) for r in rows])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    answer = labels != -100
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
    torch.testing.assert_close(torch.tensor(losses), (ce * answer).sum(1) / answer.sum(1), rtol=1e-5, atol=1e-6)
    top = logits.topk(2, -1)
    sure = ((top.indices[..., 0] == labels) & (top.values[..., 0] > top.values[..., 1])) | ~answer
    assert greedy == sure.all(1).tolist()


def test_frozen_prefix_is_each_example_alone_and_kept(micro_base):
    """The frozen layers' output of a training batch (mawt/training/prefix.py) is, row for row, the
    hidden state transformers' own forward gives for that example alone; a later batch with the same
    examples in another order and padding reads the kept values, bit for bit, computing nothing; zeros
    at the padding; in eval mode it is computed on the batch."""
    from transformers import AutoTokenizer

    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate
    from mawt.training.prefix import FrozenPrefix, first_trainable_layer

    tok = AutoTokenizer.from_pretrained(micro_base)
    model = _model(micro_base, mixer="grpo")
    split = first_trainable_layer(model)
    assert split == len(model.model.layers) - 1
    examples = [encode_example(tok, r, 64) for r in generate(5, ["shift_two", "reverse"])]
    prefix = FrozenPrefix()

    def call(rows):
        batch = AnswerCollator(tok.pad_token_id)(rows)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        return prefix(model, ids, mask, torch.arange(ids.shape[1])[None].expand_as(ids), split), mask

    first, mask = call(examples)
    assert (mask == 0).any() and prefix.computed == 5
    for b, example in enumerate(examples):
        n = len(example["input_ids"])
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([example["input_ids"]]), output_hidden_states=True).hidden_states[split]
        torch.testing.assert_close(first[b, :n], alone[0], rtol=1e-5, atol=1e-5)
        assert not first[b, n:].any()
    again, _ = call(examples[3:][::-1] + examples[1:2])  # other rows, order and width
    assert prefix.computed == 5
    for b, src in enumerate([4, 3, 1]):
        n = len(examples[src]["input_ids"])
        assert torch.equal(again[b, :n], first[src, :n])
    model.eval()
    call(examples[:2])
    assert prefix.computed == 5 and len(prefix.kept) == 5


def _differently_frozen(micro_base, where: str):
    """The test model with one frozen value changed: a weight of layer 0, or the rotary embedding's
    inv_freq (a non-persistent buffer, in no state_dict)."""
    model = _model(micro_base, mixer="grpo")
    with torch.no_grad():
        if where == "layer0":
            model.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
        else:
            model.model.rotary_emb.inv_freq[-1] *= 1.5
    return model


def _alone(model, example, split):
    with torch.no_grad():
        return model(input_ids=torch.tensor([example["input_ids"]]), output_hidden_states=True).hidden_states[split]


@pytest.mark.parametrize("changed", ["layer0", "rotary"])
def test_runs_of_one_process_share_the_frozen_prefix_only_where_its_bytes_agree(micro_base, changed):
    """A PrefixStore (the seeds of a workflow batch, mawt/training/batch.py): a second model whose
    trainable last layer differs but whose frozen layers are the same reads the first one's kept
    prefixes, computing nothing; a model whose frozen state differs (a frozen weight, or the rotary
    buffer) computes its own, and gets what transformers' forward of each example alone gives."""
    from transformers import AutoTokenizer

    from mawt.data.prompts import AnswerCollator, encode_example
    from mawt.data.puzzles import generate
    from mawt.training.prefix import FrozenPrefix, PrefixStore, first_trainable_layer

    tok = AutoTokenizer.from_pretrained(micro_base)
    examples = [encode_example(tok, r, 64) for r in generate(5, ["shift_two", "reverse"])]
    batch = AnswerCollator(tok.pad_token_id)(examples)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    position_ids = torch.arange(ids.shape[1])[None].expand_as(ids)
    store = PrefixStore()
    first, second, third = _model(micro_base, mixer="grpo"), _model(micro_base, mixer="grpo"), \
        _differently_frozen(micro_base, changed)
    with torch.no_grad():
        second.model.layers[-1].self_attn.depth_query.add_(0.5)  # trainable: another seed's start
    split = first_trainable_layer(first)
    outs = {}
    for name, model in (("first", first), ("second", second), ("third", third)):
        prefix = FrozenPrefix(store=store)
        outs[name] = (prefix(model, ids, mask, position_ids, split), prefix.computed)
    assert [outs[n][1] for n in ("first", "second", "third")] == [5, 0, 5]
    assert torch.equal(outs["first"][0], outs["second"][0]) and len(store.by_state) == 2
    assert not torch.equal(outs["first"][0], outs["third"][0])
    for b, example in enumerate(examples):
        n = len(example["input_ids"])
        torch.testing.assert_close(outs["third"][0][b, :n], _alone(third, example, split)[0], rtol=1e-5, atol=1e-5)


def test_an_eval_batch_shares_the_teacher_forced_prefix_only_where_its_bytes_agree(micro_base):
    """teacher_forced with `shared` (an eval batch's models): a model whose layers below the last are
    the same bytes reads the kept inputs to the last layer and scores exactly as it does alone; a model
    with another frozen layer adds its own and scores as it does alone."""
    from transformers import AutoTokenizer

    from mawt.data.puzzles import generate
    from mawt.evaluation.evaluate import teacher_forced

    tok = AutoTokenizer.from_pretrained(micro_base)
    rows = generate(12, ["shift_two", "reverse"])
    first, second, third = _model(micro_base, mixer="grpo").eval(), _model(micro_base, mixer="grpo").eval(), \
        _differently_frozen(micro_base, "layer0").eval()
    with torch.no_grad():
        second.model.layers[-1].self_attn.depth_query.add_(0.5)
    shared, sizes = {}, []
    for model in (first, second, third):
        got = teacher_forced(model, tok, rows, 64, batch_size=5, shared=shared)
        sizes.append(len(shared))
        assert got[:2] == teacher_forced(model, tok, rows, 64, batch_size=5)[:2]
    assert sizes == [3, 3, 6]  # 12 rows in batches of 5: 3 batches each state
    alone, second_alone = (teacher_forced(m, tok, rows, 64, batch_size=5)[0] for m in (first, second))
    assert alone != second_alone  # the second model's last layer differs: what it scores is its own
