"""Data sources, the split protocol, puzzles and tokenisation."""

import json

import pandas as pd
import pytest

from mawt import puzzles
from mawt.data import DataConfig, content_hash, encode_example, load_rows, split, write_split
from mawt.micro import train_tokenizer


def _rows(n):
    return [{"challenge": f"Puzzle number {i}?", "answer": f"answer{i}"} for i in range(n)]


def test_split_protocol_gives_300_50_without_overlap(tmp_path):
    path = tmp_path / "data.jsonl"
    pd.DataFrame(_rows(400)).to_json(path, orient="records", lines=True)
    cfg = DataConfig(source=str(path))
    train, heldout = split(load_rows(cfg), cfg)
    assert (len(train), len(heldout)) == (300, 50)
    assert not {content_hash(r) for r in train} & {content_hash(r) for r in heldout}
    again_train, again_heldout = split(load_rows(cfg), cfg)
    assert again_train == train and again_heldout == heldout  # seed 42, deterministic
    other, _ = split(load_rows(cfg), DataConfig(source=str(path), seed=7))
    assert other != train
    write_split(train, heldout, cfg, tmp_path / "split")
    manifest = json.loads((tmp_path / "split" / "manifest.json").read_text())
    assert manifest["heldout_hashes"] == sorted(content_hash(r) for r in heldout)
    assert not set(manifest["train_hashes"]) & set(manifest["heldout_hashes"])


def test_duplicates_of_heldout_rows_never_reach_training(tmp_path):
    rows = _rows(40) * 10  # every row ten times
    cfg = DataConfig(source="x.jsonl", n_train=300, n_heldout=50)
    train, heldout = split(rows, cfg)
    held = {content_hash(r) for r in heldout}
    assert heldout and not [r for r in train if content_hash(r) in held]


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_local_files_with_custom_columns(tmp_path, suffix):
    frame = pd.DataFrame({"q": ["a?", "b?"], "a": ["x", "y"]})
    path = tmp_path / f"d.{suffix}"
    {"parquet": frame.to_parquet, "csv": lambda p: frame.to_csv(p, index=False),
     "jsonl": lambda p: frame.to_json(p, orient="records", lines=True)}[suffix](path)
    rows = load_rows(DataConfig(source=str(path), challenge_column="q", answer_column="a"))
    assert [(r["challenge"], r["answer"]) for r in rows] == [("a?", "x"), ("b?", "y")]


def test_bad_sources_say_what_is_wrong(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"question": ["a"], "answer": ["x"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['challenge'\].*data.challenge_column"):
        load_rows(DataConfig(source=str(path)))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="could not be read|has no rows"):
        load_rows(DataConfig(source=str(empty)))
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"challenge": "a?", "answer": "  "}\n')
    with pytest.raises(ValueError, match="row 0 has an empty challenge or answer"):
        load_rows(DataConfig(source=str(blank)))
    with pytest.raises(ValueError, match="no such file"):
        load_rows(DataConfig(source=str(tmp_path / "missing.parquet")))
    with pytest.raises(ValueError, match="fewer than n_train \\+ n_heldout = 350"):
        split(_rows(10), DataConfig())


def test_hub_id_offline_points_to_a_local_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match="nuprl/verbal-reasoning-challenge.*point data.source at a local"):
        load_rows(DataConfig(source="nuprl/verbal-reasoning-challenge"))


def test_puzzles_are_deterministic_and_verifiable():
    a = puzzles.generate(50, seed=3)
    assert a == puzzles.generate(50, seed=3) and a != puzzles.generate(50, seed=4)
    assert {r["family"] for r in a} <= set(puzzles.FAMILIES)
    by_family = {r["family"]: r for r in puzzles.generate(400, seed=0)}
    assert len(by_family) == len(puzzles.FAMILIES)
    word = "stone"
    expected = {"reverse": "enots", "drop_first": "tone", "drop_last": "ston", "swap_ends": "etons",
                "sort_letters": "enost", "shift": "tupof", "shift_two": "uvqpg", "double_last": "stonee",
                "rotate": "tones"}
    for fam, answer in expected.items():
        assert puzzles.FAMILIES[fam][2](word) == answer
    chained = puzzles.generate(20, ["reverse", "drop_first"], steps=2, seed=1)
    for r in chained:
        assert ", then " in r["challenge"] and r["family"].count("+") == 1
    special = puzzles.generate(10, ["next_letter", "initials"], seed=2)
    assert all(r["answer"].isalpha() for r in special)


def test_puzzle_knobs_are_validated():
    with pytest.raises(ValueError, match="allowed are reverse"):
        puzzles.generate(1, ["anagram"])
    with pytest.raises(ValueError, match="steps=0 is invalid"):
        puzzles.generate(1, steps=0)
    with pytest.raises(ValueError, match="difficulty=9 is invalid"):
        puzzles.generate(1, difficulty=9)


def test_encoding_masks_the_prompt():
    tok = train_tokenizer()
    ex = encode_example(tok, {"challenge": "Spell cat backwards.", "answer": "tac"}, max_length=64)
    answer_ids = [i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
    assert tok.decode(answer_ids) == "tac" + tok.eos_token
    assert tok.decode(ex["input_ids"]).startswith("Spell cat backwards.\nAnswer: tac")


def test_chat_template_is_used_when_the_tokenizer_has_one():
    tok = train_tokenizer()
    tok.chat_template = "{% for m in messages %}U:{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
    ex = encode_example(tok, {"challenge": "Spell cat backwards.", "answer": "tac"}, max_length=64)
    assert tok.decode(ex["input_ids"]).startswith("U:Spell cat backwards.A:tac")
    assert ex["labels"][: len("U:Spell cat backwards.A:")] == [-100] * len("U:Spell cat backwards.A:")
