"""The paper stand-in: R1-Distill's chat template and tokens, its geometry, the nuprl schema,
and the shipped assets matching their builder."""

import json

import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mawt.bases import standin, standin_puzzles, standin_tokenizer
from mawt.data.sources import DataConfig, load_rows
from mawt.data.split import deduplicate, split
from mawt.data.prompts import encode_example
from mawt.evaluation.scoring import challenge_metric, exact_match

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
SHIPPED = standin_tokenizer.ASSETS


@pytest.fixture(scope="module")
def tok():
    return standin_tokenizer.load_tokenizer(SHIPPED / "tokenizer")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return standin.build(tmp_path_factory.mktemp("standin") / "model", num_layers=1)


# ---------------------------------------------------------------- chat template


def render(tok, messages, generation=True):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def test_generation_prompt_is_r1_distills(tok):
    # R1-Distill's current template forces the opening think after the assistant marker.
    assert render(tok, [{"role": "user", "content": "Hi"}]) == f"{BOS}<｜User｜>Hi<｜Assistant｜><think>\n"
    assert render(tok, [{"role": "user", "content": "Hi"}], generation=False) == f"{BOS}<｜User｜>Hi"


def test_system_prompt_follows_the_bos(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render(tok, messages) == f"{BOS}Be brief.<｜User｜>Hi<｜Assistant｜><think>\n"


def test_assistant_turn_drops_its_thinking(tok):
    messages = [{"role": "user", "content": "Q1"},
                {"role": "assistant", "content": "<think>\nweigh it\n</think>\n\nA1"},
                {"role": "user", "content": "Q2"}]
    assert render(tok, messages) == (f"{BOS}<｜User｜>Q1<｜Assistant｜>\n\nA1{EOS}"
                                      "<｜User｜>Q2<｜Assistant｜><think>\n")
    # only the part after the *last* </think> survives, as in R1-Distill's template
    last = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "a</think>b</think>c"}]
    assert render(tok, last, generation=False) == f"{BOS}<｜User｜>Q<｜Assistant｜>c{EOS}"


def test_templated_prompt_has_one_bos_and_single_token_markers(tok):
    ids = tok(render(tok, [{"role": "user", "content": "Hi there"}]), add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    for marker in ("<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", BOS, EOS):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1, marker
    assert tok.convert_ids_to_tokens(ids[-2:]) == ["<think>", "Ċ"]
    # R1-Distill's post-processor prepends the bos when special tokens are asked for
    assert tok("Hi there")["input_ids"] == [tok.bos_token_id] + tok("Hi there", add_special_tokens=False)["input_ids"]


def test_special_flags_and_decoding_are_r1_distills(tok):
    flags = {t.content: t.special for t in tok.added_tokens_decoder.values()}
    assert flags == dict(standin_tokenizer.ADDED_TOKENS)
    assert not flags["<think>"] and not flags["</think>"] and not flags["<｜User｜>"] and flags[BOS] and flags[EOS]
    ids = tok(f"<｜User｜>Q<｜Assistant｜><think>\nhm</think> T-shirt café{EOS}")["input_ids"]
    # skip_special_tokens drops only bos/eos: the role markers and the thinking tags stay
    assert tok.decode(ids, skip_special_tokens=True) == "<｜User｜>Q<｜Assistant｜><think>\nhm</think> T-shirt café"
    assert tok.pad_token == tok.eos_token == EOS and tok.model_max_length == 16384


def test_mawt_prompts_go_through_the_r1_template(tok):
    example = encode_example(tok, {"challenge": "Name a city.", "answer": "St. Louis"}, 256)
    prompt = [i for i, label in zip(example["input_ids"], example["labels"]) if label == -100]
    answer = tok("St. Louis", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert prompt[0] == tok.bos_token_id and prompt.count(tok.bos_token_id) == 1
    assert tok.convert_tokens_to_ids("<think>") in prompt  # the template's opening think is in the prompt
    assert example["labels"][len(prompt):] == answer


# ---------------------------------------------------------------- model


def test_built_model_has_r1_distills_geometry_in_bf16(model_dir, tok):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    config = model.config
    assert model.dtype == torch.bfloat16 and config.num_hidden_layers == 1
    for key, value in standin.GEOMETRY.items():
        if key != "dtype":
            assert getattr(config, key) == value, key
    assert (config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim) == \
        (1536, 12, 2, 128)
    attn = model.model.layers[0].self_attn
    assert attn.k_proj.weight.shape == (2 * 128, 1536) and attn.q_proj.weight.shape == (12 * 128, 1536)
    assert config.vocab_size % 64 == 0 and len(tok) <= config.vocab_size < len(tok) + 64
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == \
        (tok.bos_token_id, tok.eos_token_id, tok.eos_token_id)
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert (generation["do_sample"], generation["temperature"], generation["top_p"]) == (True, 0.6, 0.95)
    ids = tok(render(tok, [{"role": "user", "content": "Hi"}]), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], config.vocab_size) and torch.isfinite(logits).all()


def test_auto_tokenizer_reads_the_same_ids(model_dir, tok):
    auto = AutoTokenizer.from_pretrained(model_dir)  # the class R1-Distill gets: chosen by transformers
    text = render(tok, [{"role": "user", "content": "Think of a café — “T-shirt”, U.S.A.; rock 'n' roll"}])
    assert auto(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert auto("plain")["input_ids"] == tok("plain")["input_ids"]
    assert auto.decode(tok("<think>x</think>y")["input_ids"], skip_special_tokens=True) == "<think>x</think>y"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (model_dir / name).read_bytes() == (SHIPPED / "tokenizer" / name).read_bytes()


def test_build_is_byte_identical(model_dir, tmp_path):
    again = standin.build(tmp_path / "again", num_layers=1)
    for name in ("model.safetensors", "config.json", "generation_config.json"):
        assert standin.file_sha256(again / name) == standin.file_sha256(model_dir / name), name


# ---------------------------------------------------------------- puzzles


def test_puzzles_have_the_nuprl_schema(tmp_path):
    path = standin_puzzles.write_puzzles(tmp_path / "p.parquet")
    schema = pq.read_schema(path)
    assert [(f.name, str(f.type)) for f in schema] == [("ID", "int64"), ("url", "string"), ("date", "string"),
                                                       ("challenge", "string"), ("answer", "string")]
    rows = load_rows(DataConfig(source=str(path), n_train=300, n_heldout=50))
    assert len(rows) >= 350 and deduplicate(rows)[1] == 0
    assert len({r["ID"] for r in rows}) == len(rows)
    assert all(r["url"].startswith("https://www.npr.org/") and len(r["date"]) == 19 for r in rows)
    train, heldout = parts = split(rows, DataConfig(source=str(path), n_train=300, n_heldout=50))
    assert (len(train), len(heldout), parts.duplicates_removed) == (300, 50, 0)


def test_answers_exercise_the_scorer():
    answers = [r["answer"] for r in standin_puzzles.puzzle_rows()]
    for feature in (";", ",", "-->", "'", "T-shirt", "U.S.A.", "café"):
        assert any(feature in a for a in answers), feature
    assert any(not a.isascii() for a in answers) and any(a[0].isupper() and " " in a for a in answers)
    # every gold answer parses: each of its `;` alternatives, given as the response, scores correct
    assert all(challenge_metric(alt, a) and exact_match(alt, a) for a in answers for alt in a.split(";"))


# ---------------------------------------------------------------- shipped assets


def test_shipped_assets_are_what_the_builder_builds(tmp_path):
    rebuilt = standin.build_assets(tmp_path / "assets")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (rebuilt / "tokenizer" / name).read_bytes() == (SHIPPED / "tokenizer" / name).read_bytes(), name
    assert pq.read_table(rebuilt / "puzzles.parquet").equals(pq.read_table(SHIPPED / "puzzles.parquet"),
                                                             check_metadata=True)
    assert sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file()) < 300_000


