"""Data sources, the split protocol, puzzles and tokenisation."""

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mawt.data import puzzles
from mawt.data.puzzles import normalise_challenge
from mawt.data.sources import DataConfig, hub_load_kwargs, load_rows
from mawt.data.split import content_hash, deduplicate, split, write_split
from mawt.data.vocabulary import WORDS
from mawt.data.prompts import encode_example
from mawt.bases.micro import train_tokenizer


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


def _distinct_and_disjoint(train, heldout):
    """Every row's normalised challenge differs from every other row's, across both parts."""
    keys = [normalise_challenge(r["challenge"]) for r in train + heldout]
    return len(set(keys)) == len(keys)


def test_normalised_challenges_ignore_case_whitespace_and_punctuation():
    same = ["Puzzle number 7?", "  puzzle   NUMBER 7", "Puzzle, number 7!", "\u201cPuzzle\u201d number\t7\u2026",
            "\uff30uzzle number 7\uff1f"]  # full-width P and question mark
    assert {normalise_challenge(t) for t in same} == {"puzzle number 7"}
    assert normalise_challenge("Puzzle number 71?") != normalise_challenge("Puzzle number 7?")
    assert content_hash({"challenge": same[0], "answer": "a"}) == content_hash({"challenge": same[3], "answer": "b"})
    rows, removed = deduplicate([{"challenge": t, "answer": str(i)} for i, t in enumerate(same)] + _rows(3))
    assert removed == 4 and [r["answer"] for r in rows] == ["0", "answer0", "answer1", "answer2"]  # first kept


def test_file_source_with_duplicates_warns_once_and_splits_exactly(tmp_path, capsys):
    base = _rows(60)
    variants = [{"challenge": f"  PUZZLE number {i}!! ", "answer": f"other{i}"} for i in range(12)]
    variants += [{"challenge": f"puzzle\tnumber {i}", "answer": f"answer{i}"} for i in range(3)]
    path = tmp_path / "dups.csv"
    pd.DataFrame(base[:30] + variants + base[30:]).to_csv(path, index=False)
    cfg = DataConfig(source=str(path), n_train=40, n_heldout=20)
    parts = split(load_rows(cfg), cfg)
    train, heldout = parts
    assert (len(train), len(heldout)) == (40, 20) and parts.duplicates_removed == 15
    assert _distinct_and_disjoint(train, heldout)
    assert all(r["answer"].startswith("answer") for r in train + heldout)  # the first occurrence was kept
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: data.source={str(path)!r} has 15 duplicate challenges (case, whitespace and "
                        "punctuation ignored); kept the first of each"]
    write_split(train, heldout, cfg, tmp_path / "split", duplicates_removed=parts.duplicates_removed)
    manifest = json.loads((tmp_path / "split" / "manifest.json").read_text())
    assert manifest["duplicates_removed"] == 15 and (manifest["n_train"], manifest["n_heldout"]) == (40, 20)
    assert len(set(manifest["train_hashes"])) == 40 and len(set(manifest["heldout_hashes"])) == 20
    assert not set(manifest["train_hashes"]) & set(manifest["heldout_hashes"])
    # a source without duplicates: no warning, count 0
    clean = split(_rows(60), DataConfig(source="x.jsonl", n_train=40, n_heldout=20))
    assert clean.duplicates_removed == 0 and "warning" not in capsys.readouterr().err


def test_too_few_distinct_rows_names_the_distinct_count(capsys):
    rows = _rows(40) * 10  # every row ten times: 40 distinct
    with pytest.raises(ValueError, match=r"has 40 distinct rows \(360 duplicates removed\), fewer than "
                                         r"n_train \+ n_heldout = 350"):
        split(rows, DataConfig(source="x.jsonl"))
    assert capsys.readouterr().err.count("warning:") == 1
    train, heldout = split(rows, DataConfig(source="x.jsonl", n_train=30, n_heldout=10))
    assert (len(train), len(heldout)) == (30, 10) and _distinct_and_disjoint(train, heldout)


@pytest.mark.parametrize("family", ["shift_two", "later_letter", "later_ends"])
def test_synthetic_split_is_exact_distinct_and_disjoint(tmp_path, family, capsys):
    cfg = DataConfig(families=[family], n_heldout=400, vocabulary="letters")
    rows = load_rows(cfg)
    assert len(rows) == 700  # synthetic_rows unset: exactly n_train + n_heldout
    train, heldout = split(rows, cfg)
    assert (len(train), len(heldout)) == (300, 400)
    assert _distinct_and_disjoint(train, heldout)
    assert not {content_hash(r) for r in train} & {content_hash(r) for r in heldout}
    assert {r["family"] for r in train + heldout} == {family}
    assert "warning" not in capsys.readouterr().err
    write_split(train, heldout, cfg, tmp_path, duplicates_removed=0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["data"]["vocabulary"] == "letters" and manifest["duplicates_removed"] == 0
    assert len(set(manifest["train_hashes"])) == 300 and len(set(manifest["heldout_hashes"])) == 400


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
    with pytest.raises(ValueError, match=r"source row 0 \(counting from 0, in file order\) has an empty or missing challenge or answer"):
        load_rows(DataConfig(source=str(blank)))
    with pytest.raises(ValueError, match="no such file"):
        load_rows(DataConfig(source=str(tmp_path / "missing.parquet")))
    with pytest.raises(ValueError, match="has 10 distinct rows, fewer than n_train \\+ n_heldout = 350"):
        split(_rows(10), DataConfig())


PAPER_REVISION = "d2c354d207a571e4b4f02d7d6f57dc24c35d0565"  # mawt/setups/paper.yaml's pin


def test_hub_id_offline_points_to_a_local_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match="nuprl/verbal-reasoning-challenge.*point data.source at a local"):
        load_rows(DataConfig(source="nuprl/verbal-reasoning-challenge", revision=PAPER_REVISION))


def _nuprl_rows(n, start=0):
    """Rows in the schema of nuprl/verbal-reasoning-challenge (ID, url, date, challenge, answer)."""
    return [{"ID": i, "url": f"https://www.npr.org/2020/01/{i:02d}/puzzle", "date": "2020-01-05 04:01:00",
             "challenge": f"Think of a word with {i} letters. What is it?", "answer": f"word{i}"}
            for i in range(start, start + n)]


def test_null_n_heldout_holds_out_every_distinct_row_not_trained_on(tmp_path, capsys):
    rows = _nuprl_rows(90)
    dups = [{**r, "ID": 1000 + r["ID"], "challenge": r["challenge"].upper() + "!!"} for r in rows[:7]]
    path = tmp_path / "vrc.parquet"
    pd.DataFrame(rows[:40] + dups + rows[40:]).to_parquet(path)
    cfg = DataConfig(source=str(path), n_train=60, n_heldout=None)
    parts = split(load_rows(cfg), cfg)
    train, heldout = parts
    assert parts.duplicates_removed == 7 and "7 duplicate challenges" in capsys.readouterr().err
    assert (len(train), len(heldout)) == (60, 90 - 60)  # distinct rows - n_train
    assert _distinct_and_disjoint(train, heldout)
    assert {r["ID"] for r in train + heldout} == set(range(90))  # every distinct row, the first occurrence kept
    assert split(load_rows(cfg), cfg) == parts  # deterministic
    # the integer protocol is unchanged: the same first n_train rows, then exactly n_heldout of the rest
    fixed_train, fixed_heldout = split(load_rows(cfg), DataConfig(source=str(path), n_train=60, n_heldout=10))
    assert fixed_train == train and fixed_heldout == heldout[:10]
    write_split(train, heldout, cfg, tmp_path / "split", duplicates_removed=parts.duplicates_removed)
    manifest = json.loads((tmp_path / "split" / "manifest.json").read_text())
    assert (manifest["n_train"], manifest["n_heldout"], manifest["data"]["n_heldout"]) == (60, 30, None)
    assert len(set(manifest["heldout_hashes"])) == 30 and not set(manifest["train_hashes"]) & set(
        manifest["heldout_hashes"])
    assert manifest["revision"] is None and manifest["commit"] is None  # a local file has no hub revision
    assert len((tmp_path / "split" / "heldout.jsonl").read_text().splitlines()) == 30
    # nothing left to hold out: refused, naming the count and the key
    with pytest.raises(ValueError, match=r"has 60 distinct rows \(7 duplicates removed\), not more than "
                                         r"data.n_train = 60: nothing is left to hold out \(data.n_heldout: null\)"):
        split(rows[:60] + dups, DataConfig(source=str(path), n_train=60, n_heldout=None))
    assert len(split(rows[:61], cfg).heldout) == 1


def test_null_n_heldout_is_refused_for_synthetic_data():
    with pytest.raises(ValueError, match=r"data.n_heldout=null .*synthetic data has none: set data.n_heldout to "
                                         r"a number"):
        DataConfig(n_heldout=None)
    with pytest.raises(ValueError, match=r"data.n_heldout=0 is invalid: must be an integer >= 1 or null"):
        DataConfig(source="x.csv", n_heldout=0)
    with pytest.raises(ValueError, match=r"data.n_heldout='all' is invalid"):
        DataConfig(source="x.csv", n_heldout="all")
    assert DataConfig(source="x.csv", n_heldout=None).n_heldout is None


def test_a_hub_source_needs_a_revision_and_it_reaches_load_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"data.revision is required for the Hugging Face dataset "
                                         r"data.source='nuprl/verbal-reasoning-challenge'"):
        DataConfig(source="nuprl/verbal-reasoning-challenge")
    with pytest.raises(ValueError, match=r"data.revision=' main' is invalid"):
        DataConfig(source="nuprl/verbal-reasoning-challenge", revision=" main")
    DataConfig(source=str(tmp_path / "local.parquet"))  # local files and synthetic data need none
    cfg = DataConfig(source="nuprl/verbal-reasoning-challenge", revision=PAPER_REVISION)
    kwargs = hub_load_kwargs(cfg)
    assert kwargs == {"path": "nuprl/verbal-reasoning-challenge", "split": "test", "revision": PAPER_REVISION}
    import datasets

    params = inspect.signature(datasets.load_dataset).parameters  # named parameters, not swallowed by **kwargs
    assert all(k in params for k in kwargs), sorted(params)
    # the paper setup pins a full commit sha and holds out the rest
    from mawt.studies.setup import load_setup

    paper = DataConfig(**load_setup("paper")["data"])
    assert (paper.revision, paper.n_train, paper.n_heldout) == (PAPER_REVISION, 300, None)
    assert re.fullmatch(r"[0-9a-f]{40}", paper.revision)


def cached_hub_copy(tmp_path: Path, commit: str, n: int = 12) -> dict:
    """A Hugging Face cache under tmp_path/hf holding hub dataset `mawt_pinned` (split test, n rows) at
    `commit`, laid out as a download leaves it (datasets/<name>/<config>/<version>/<commit>/): built by
    `datasets` from a local parquet, its build folder named after the commit. Returns the environment of
    an offline process that reads this cache."""
    import datasets

    data = tmp_path / "src" / "mawt_pinned" / "data"
    data.mkdir(parents=True)
    pd.DataFrame(_nuprl_rows(n)).to_parquet(data / "test-00000-of-00001.parquet")
    ds = datasets.load_dataset(str(data.parent), split="test", cache_dir=str(tmp_path / "hf" / "datasets"))
    built = Path(ds.cache_files[0]["filename"]).parent
    assert built.parts[-4:-1] == ("mawt_pinned", "default", "0.0.0")
    built.rename(built.parent / commit)
    return {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


LOAD_PINNED = """
import json, sys
from pathlib import Path
from mawt.data.sources import DataConfig, load_hub
from mawt.data.split import split, write_split
cfg = DataConfig(source="mawt_pinned", revision=sys.argv[1], n_train=8, n_heldout=None)
try:
    rows, commit = load_hub(cfg)
except ValueError as err:
    sys.exit(str(err))
write_split(*split(rows, cfg), cfg, Path(sys.argv[2]))
print(json.dumps({"rows": len(rows), "commit": commit}))
"""


@pytest.mark.integration
def test_offline_the_pinned_commit_is_read_and_another_cached_commit_refused(tmp_path):
    pinned, other = "1" * 40, "2" * 40
    env = cached_hub_copy(tmp_path, pinned)
    run = lambda rev: subprocess.run([sys.executable, "-c", LOAD_PINNED, rev, str(tmp_path / "split")],  # noqa: E731
                                     capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    ok = run(pinned)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout.splitlines()[-1]) == {"rows": 12, "commit": pinned}
    manifest = json.loads((tmp_path / "split" / "manifest.json").read_text())
    assert (manifest["revision"], manifest["commit"], manifest["data"]["revision"]) == (pinned, pinned, pinned)
    assert (manifest["n_train"], manifest["n_heldout"]) == (8, 4)
    # offline, `datasets` would read the cached copy whatever the revision asked for: refused
    bad = run(other)
    assert bad.returncode == 1
    assert (f"data.revision='{other}' is pinned, but the Hugging Face cache gave commit {pinned}" in bad.stderr
            and "python -m mawt fetch" in bad.stderr), bad.stderr[-2000:]


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
    chained = puzzles.generate(20, ["reverse", "drop_first"], chain=2, seed=1)
    for r in chained:
        assert ", then " in r["challenge"] and r["family"].count("+") == 1
    special = puzzles.generate(10, ["next_letter", "initials", "later_letter"], seed=2)
    assert all(r["answer"].isalpha() for r in special)


@pytest.mark.parametrize("vocabulary", ["words", "letters"])
def test_generated_puzzles_are_distinct_and_deterministic(vocabulary):
    families = ["reverse", "shift_two", "initials", "later_letter", "next_letter"]
    rows = puzzles.generate(600, families, difficulty=1, seed=5, vocabulary=vocabulary)
    keys = {normalise_challenge(r["challenge"]) for r in rows}
    assert len(rows) == len(keys) == 600 and {r["family"] for r in rows} == set(families)
    assert rows == puzzles.generate(600, families, difficulty=1, seed=5, vocabulary=vocabulary)
    assert rows != puzzles.generate(600, families, difficulty=1, seed=6, vocabulary=vocabulary)
    lo, hi = puzzles.DIFFICULTY[1]
    word = re.compile(r"Spell ([a-z]+) backwards\.")
    for r in rows:
        if m := word.fullmatch(r["challenge"]):
            assert lo <= len(m[1]) <= hi and r["answer"] == m[1][::-1]
            assert vocabulary == "letters" or m[1] in WORDS
    if vocabulary == "letters":  # letter strings: enough for the micro pre-training, quickly
        micro = puzzles.generate(20000, ["reverse", "drop_first", "drop_last", "swap_ends", "sort_letters",
                                         "double_last", "shift"], difficulty=2, seed=0, vocabulary="letters")
        assert len({normalise_challenge(r["challenge"]) for r in micro}) == 20000


@pytest.mark.parametrize("vocabulary", ["words", "letters"])
def test_later_letter_answers_match_an_independent_check(vocabulary):
    rows = puzzles.generate(300, ["later_letter"], difficulty=3, seed=11, vocabulary=vocabulary)
    pattern = re.compile(r"Write the later letter at each position of ([a-z]+) and ([a-z]+)\.")
    for r in rows:
        w1, w2 = pattern.fullmatch(r["challenge"]).groups()
        assert len(w1) == len(w2) and w1 != w2 and 5 <= len(w1) <= 7
        assert r["answer"] == "".join(max(a, b) for a, b in zip(w1, w2))
        assert vocabulary == "letters" or {w1, w2} <= set(WORDS)
    assert puzzles.later_letters("abcd", "bcaa") == "bccd"
    with pytest.raises(ValueError, match="later_letter cannot be chained"):
        puzzles.generate(5, ["reverse", "later_letter"], chain=2)


def test_later_ends_as_the_tasks_study_uses_it():
    """The micro setup's data with `families: [later_ends]` (ablations/tasks.yaml): 4-5 letter
    strings, one answer letter, the later of the first and last; it depends on both ends
    (either one is the answer in about half the items), so copying one end is not enough."""
    cfg = DataConfig(families=["later_ends"], n_train=300, n_heldout=400, vocabulary="letters")
    rows = load_rows(cfg)
    pattern = re.compile(r"Write the later of the first and last letters of ([a-z]+)\.")
    words = [pattern.fullmatch(r["challenge"])[1] for r in rows]
    assert len(rows) == 700 and {r["family"] for r in rows} == {"later_ends"}
    assert {len(w) for w in words} == set(range(puzzles.DIFFICULTY[2][0], puzzles.DIFFICULTY[2][1] + 1)) == {4, 5}
    assert all(r["answer"] == max(w[0], w[-1]) and len(r["answer"]) == 1 for r, w in zip(rows, words))
    first = sum(w[0] > w[-1] for w in words) / len(words)
    last = sum(w[-1] > w[0] for w in words) / len(words)
    assert 0.4 < first < 0.6 and 0.4 < last < 0.6  # ties (first == last) are the rest, ~1/26
    assert puzzles.capacity(["later_ends"], vocabulary="letters") == 26**4 + 26**5
    assert puzzles.capacity(["later_ends"], vocabulary="words") == sum(4 <= len(w) <= 5 for w in WORDS)
    with pytest.raises(ValueError, match="later_ends cannot be chained"):
        puzzles.generate(5, ["reverse", "later_ends"], chain=2)


def test_too_many_distinct_puzzles_is_a_clear_error():
    cap = puzzles.capacity(["shift_two"], difficulty=2, vocabulary="words")
    assert cap == sum(4 <= len(w) <= 5 for w in WORDS)
    assert len(puzzles.generate(cap, ["shift_two"], seed=0)) == cap  # exactly the capacity still works
    with pytest.raises(ValueError, match=rf"n={cap + 1} exceeds the capacity of {cap} distinct.*vocabulary='letters'"):
        puzzles.generate(cap + 1, ["shift_two"], seed=0)
    assert len(puzzles.generate(cap + 1, ["shift_two"], seed=0, distinct=False)) == cap + 1
    with pytest.raises(ValueError, match=rf"data.vocabulary='words'.*makes only {cap} distinct puzzles, fewer than "
                                         r"data.n_train \+ data.n_heldout = 350.*data.vocabulary: letters"):
        DataConfig(families=["shift_two"])
    with pytest.raises(ValueError, match="makes only 54 distinct puzzles, fewer than data.synthetic_rows = 60"):
        DataConfig(families=["next_letter"], vocabulary="letters", n_train=40, n_heldout=10, synthetic_rows=60)


def test_puzzle_knobs_are_validated():
    with pytest.raises(ValueError, match="allowed are reverse"):
        puzzles.generate(1, ["anagram"])
    with pytest.raises(ValueError, match="chain=0 is invalid"):
        puzzles.generate(1, chain=0)
    with pytest.raises(ValueError, match="difficulty=9 is invalid"):
        puzzles.generate(1, difficulty=9)
    with pytest.raises(ValueError, match="vocabulary='digits' is invalid: allowed are words, letters"):
        puzzles.generate(1, vocabulary="digits")


def test_data_config_knobs_are_validated():
    assert DataConfig().synthetic_rows is None and DataConfig().n_synthetic == 350
    assert DataConfig(synthetic_rows=400).n_synthetic == 400
    with pytest.raises(ValueError, match="data.vocabulary='digits' is invalid: allowed are words, letters"):
        DataConfig(vocabulary="digits")
    with pytest.raises(ValueError, match=r"data.synthetic_rows=349 is smaller than data.n_train \+ data.n_heldout "
                                         r"= 350; leave data.synthetic_rows unset"):
        DataConfig(synthetic_rows=349)
    with pytest.raises(ValueError, match="data.synthetic_rows=0 is invalid"):
        DataConfig(synthetic_rows=0)
    with pytest.raises(ValueError, match="data.families \\['anagram'\\] invalid; allowed are reverse"):
        DataConfig(families=["anagram"])
    with pytest.raises(ValueError, match="data.families='reverse' is invalid: must be a list"):
        DataConfig(families="reverse")
    with pytest.raises(ValueError, match="data.chain=2 chains word transforms only"):
        DataConfig(families=["initials"], chain=2)
    DataConfig(source="x.csv", synthetic_rows=10, families=["anagram"])  # synthetic knobs ignored for files


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


def test_a_training_row_longer_than_max_length_is_refused_not_cut():
    tok = train_tokenizer()
    row = {"challenge": "Spell cat backwards.", "answer": "tac", "ID": 9}
    n = len(encode_example(tok, row, 64)["input_ids"])  # prompt + answer + eos
    assert len(encode_example(tok, row, n)["input_ids"]) == n  # exactly fits
    with pytest.raises(ValueError, match=rf"row 3 \(ID 9\): prompt \+ answer \+ eos is {n} tokens, more than "
                                         rf"train.max_length={n - 1}; raise train.max_length"):
        encode_example(tok, row, n - 1, "train.max_length", 3)


def test_the_r1_template_gets_an_empty_think_block_for_training_and_evaluation():
    from mawt.data.prompts import opens_think, prompt_text, think_open
    from mawt.bases.standin_tokenizer import load_tokenizer

    tok = load_tokenizer()  # the stand-in's R1-Distill-style template
    assert opens_think(tok) and not opens_think(train_tokenizer())
    empty = prompt_text(tok, "Name a city.")
    assert empty.endswith("Name a city.<｜Assistant｜><think>\n\n</think>\n\n")
    assert prompt_text(tok, "Name a city.", "native").endswith("<｜Assistant｜><think>\n")
    assert think_open(tok, "native") and not think_open(tok, "empty") and not think_open(train_tokenizer(), "native")
    ex = encode_example(tok, {"challenge": "Name a city.", "answer": "Paris"}, 64)
    answer = [i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
    assert tok.decode(answer) == "Paris" + tok.eos_token
    assert tok.decode(ex["input_ids"][: len(ex["input_ids"]) - len(answer)]) == empty
