"""A faithful CPU stand-in for the `paper` setup (DeepSeek-R1-Distill-Qwen-1.5B on
nuprl/verbal-reasoning-challenge), to run the paper code path offline on a few cores.

Kept from the real model and data (what the code path depends on):
  * the attention geometry and numerics: hidden 1536, 12 query heads, 2 KV heads
    (GQA 6:1), head_dim 128, RoPE theta 10000, RMSNorm eps 1e-6, SiLU MLP of 8960,
    untied embeddings, no sliding window, bfloat16 weights (`GEOMETRY`);
  * the tokenizer's pipeline and files: byte-level BPE with Qwen2's NFC normaliser and
    split regex, R1-Distill's added tokens in their order with their `special` flags,
    a post-processor that prepends the bos, `tokenizer_config.json` laid out as
    R1-Distill's (so `AutoTokenizer` takes the same class-resolution path), and a
    chat template that renders our conversations exactly as R1-Distill's does,
    including the forced opening `<think>\\n` of the generation prompt;
  * the dataset's file schema: one parquet file with `ID` int64 and `url`, `date`,
    `challenge`, `answer` strings, Sunday-Puzzle-style rows.
Changed (what must change to fit a 2-core CPU with no network):
  * layers: 1-2 instead of 28; vocabulary: a 2048-entry BPE trained here instead of
    151643 entries (the embedding is padded to a multiple of 64, as the real one is
    padded from 151665 tokens to 151936 rows); weights: random (transformers' own init);
  * the puzzles: 360 generated rows (templates below) instead of the 582 real ones.

Shipped: `assets/paper_standin/` (tokenizer + puzzles, built by `build_assets`);
built on demand: the model (`build`), never stored in git.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import random
import shutil
from pathlib import Path

import torch
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from . import atomic, puzzles

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "paper_standin"

# ---------------------------------------------------------------- geometry

# DeepSeek-R1-Distill-Qwen-1.5B's config.json (679 bytes at
# huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B), as found by search: the
# identical field values appear in the config.json of every copy derived from it
# (e.g. huggingface.co/rohinm/model, bluryar/DeepSeek-R1-Distill-Qwen-1.5B-sft,
# onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX, all "_name_or_path":
# "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"). Only what a layer's shape or numerics
# depend on is kept; num_hidden_layers (28) and vocab_size (151936) are set by `build_model`.
GEOMETRY = dict(
    hidden_size=1536,  # config.json "hidden_size": 1536
    intermediate_size=8960,  # "intermediate_size": 8960
    num_attention_heads=12,  # "num_attention_heads": 12
    num_key_value_heads=2,  # "num_key_value_heads": 2
    # Not in config.json: Qwen2 derives it as hidden_size // num_attention_heads = 128;
    # written out so that a change of either number cannot silently change it.
    head_dim=128,
    hidden_act="silu",  # "hidden_act": "silu"
    max_position_embeddings=131072,  # "max_position_embeddings": 131072
    rms_norm_eps=1e-6,  # "rms_norm_eps": 1e-06
    # "rope_theta": 10000, "rope_scaling": null, in transformers 5's form.
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    tie_word_embeddings=False,  # "tie_word_embeddings": false
    use_sliding_window=False,  # "use_sliding_window": false
    sliding_window=None,  # "sliding_window": null
    max_window_layers=21,  # "max_window_layers": 21 (inert: sliding window off)
    attention_dropout=0.0,  # "attention_dropout": 0.0
    initializer_range=0.02,  # "initializer_range": 0.02
    use_cache=True,  # "use_cache": true
    dtype="bfloat16",  # "torch_dtype": "bfloat16"
)

# generation_config.json of the real model (181 bytes, "Add generation_config.json"):
# {"bos_token_id": 151646, "eos_token_id": 151643, "do_sample": true,
#  "temperature": 0.6, "top_p": 0.95}; the ids are the stand-in tokenizer's.
SAMPLING = dict(do_sample=True, temperature=0.6, top_p=0.95)

# ---------------------------------------------------------------- tokenizer

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"

# R1-Distill-Qwen's added tokens (tokenizer.json ids 151643-151664) in their order,
# with their `special` flag. Only bos and eos are special: `<｜User｜>`, `<｜Assistant｜>`,
# `<think>` and `</think>` are not, so `decode(..., skip_special_tokens=True)` keeps them.
ADDED_TOKENS = (
    (EOS, True), (USER, False), (ASSISTANT, False), (BOS, True), ("<|EOT|>", False),
    ("<think>", False), ("</think>", False), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
)

# Qwen2's pre-tokenizer split (R1-Distill's tokenizer.json, "pre_tokenizer" > "Split").
SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Written here, not copied: renders [system]? + (user | assistant)* as R1-Distill's
# template does (its tool-call branches left out: we never send tools). The system
# prompt goes right after the bos; an assistant turn keeps only what follows its last
# `</think>`; the generation prompt opens the thinking (`<｜Assistant｜><think>\n`), as
# the R1 templates have since DeepSeek's tokenizer_config.json update of February 2025.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(system='') -%}"
    "{%- for m in messages if m['role'] == 'system' -%}{%- set ns.system = m['content'] -%}{%- endfor -%}"
    "{{- bos_token + ns.system -}}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}{{- '<｜User｜>' + m['content'] -}}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{{- '<｜Assistant｜>' + m['content'].split('</think>')[-1] + '<｜end▁of▁sentence｜>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<｜Assistant｜><think>\\n' -}}{%- endif -%}"
)

MODEL_MAX_LENGTH = 16384  # tokenizer_config.json "model_max_length": 16384


def build_tokenizer(texts: list[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE with R1-Distill-Qwen's pipeline, trained on `texts`.

    `vocab_size` is the size of the learned BPE vocabulary (256 bytes + merges; the
    real one has 151643); R1-Distill's 22 added tokens follow it, as they follow the
    real vocabulary. Deterministic: same texts, same tokenizer.json.
    """
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in ADDED_TOKENS])
    # R1-Distill's post-processor: a bos before every sequence (`add_special_tokens=True`).
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, tok.token_to_id(BOS))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS, model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False, chat_template=CHAT_TEMPLATE,
    )


def _token_entry(content: str) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}


def tokenizer_config() -> dict:
    """tokenizer_config.json with R1-Distill's keys and values (its own chat template aside).

    `tokenizer_class` stays R1-Distill's (wrong) `LlamaTokenizerFast`: transformers 5
    resolves the class from it and from the model type, so the stand-in is loaded by the
    same code path (a `Qwen2Tokenizer` next to a qwen2 config.json) as the real model.
    """
    return {
        "add_bos_token": True, "add_eos_token": False, "bos_token": _token_entry(BOS),
        "clean_up_tokenization_spaces": False, "eos_token": _token_entry(EOS), "legacy": True,
        "model_max_length": MODEL_MAX_LENGTH, "pad_token": _token_entry(EOS), "sp_model_kwargs": {},
        "unk_token": None, "tokenizer_class": "LlamaTokenizerFast", "chat_template": CHAT_TEMPLATE,
    }


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: Path) -> Path:
    """The two files R1-Distill ships (tokenizer.json, tokenizer_config.json), written byte-stably."""
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        tmp.mkdir()
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"), pretty=True)
        text = json.dumps(tokenizer_config(), indent=2, ensure_ascii=False) + "\n"
        (tmp / "tokenizer_config.json").write_text(text, encoding="utf-8")
    return out


def load_tokenizer(path: Path = ASSETS / "tokenizer") -> PreTrainedTokenizerFast:
    """The shipped tokenizer, read as a plain fast tokenizer (no class guessing)."""
    return PreTrainedTokenizerFast.from_pretrained(str(path))


# ---------------------------------------------------------------- model


def padded_vocab(tokenizer) -> int:
    """Embedding rows: the tokenizer's size rounded up to a multiple of 64 (GPU-friendly
    shapes; the real model pads 151665 tokens to 151936 rows the same way)."""
    return -(-len(tokenizer) // 64) * 64


def build_model(tokenizer, layers: int = 2, seed: int = 0) -> Qwen2ForCausalLM:
    """R1-Distill's geometry with `layers` layers and random weights, in bfloat16.

    transformers' own init (normal, std initializer_range = 0.02) under
    `torch.manual_seed(seed)`, in float32, then cast: the same numbers on every machine
    with the same torch, whatever the default dtype.
    """
    config = Qwen2Config(
        **GEOMETRY, num_hidden_layers=layers, vocab_size=padded_vocab(tokenizer),
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with _default_dtype(torch.float32):
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **SAMPLING)
    return model.to(torch.bfloat16).eval()


@contextlib.contextmanager
def _default_dtype(dtype):
    """Parameters are created (and initialised) in the torch default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build(out: Path, layers: int = 2, seed: int = 0, assets: Path = ASSETS) -> Path:
    """A `save_pretrained` stand-in model in `out`: bf16 safetensors, config, generation
    config, and the shipped tokenizer files copied verbatim. Byte-identical for the same
    arguments (same torch and transformers)."""
    tokenizer_dir = Path(assets) / "tokenizer"
    model = build_model(load_tokenizer(tokenizer_dir), layers=layers, seed=seed)
    with atomic.atomic_path(Path(out)) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for f in sorted(tokenizer_dir.iterdir()):
            shutil.copyfile(f, tmp / f.name)
    return Path(out)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- puzzles

# The real dataset's columns and Arrow types (its dataset card: ID int64; url, date,
# challenge, answer string). Dates read "YYYY-MM-DD HH:MM:SS" (19 characters).
SCHEMA = (("ID", "int64"), ("url", "string"), ("date", "string"), ("challenge", "string"), ("answer", "string"))

# Hand-written families (answers with the punctuation, accents and parts the scorer
# must handle); `_curated` turns each item into one challenge.
_CITIES = [  # (city, state in AP style)
    ("St. Louis", "Mo."), ("St. Paul", "Minn."), ("Fort Worth", "Texas"), ("El Paso", "Texas"),
    ("Des Moines", "Iowa"), ("Baton Rouge", "La."), ("Santa Fe", "N.M."), ("New Haven", "Conn."),
    ("Salt Lake City", "Utah"), ("Las Vegas", "Nev."), ("San Diego", "Calif."), ("Boise", "Idaho"),
    ("Winston-Salem", "N.C."), ("Coeur d'Alene", "Idaho"), ("Wilkes-Barre", "Pa."), ("Ann Arbor", "Mich."),
    ("Little Rock", "Ark."), ("Sioux Falls", "S.D."), ("Cape Girardeau", "Mo."), ("Walla Walla", "Wash."),
]
_HYPHENATED = [  # (answer, clue)
    ("T-shirt", "something you wear"), ("X-ray", "something a doctor might order"),
    ("yo-yo", "a toy"), ("rock 'n' roll", "a kind of music"), ("jack-o'-lantern", "a Halloween decoration"),
    ("mother-in-law", "a relative"), ("know-it-all", "an annoying person"), ("forget-me-not", "a flower"),
    ("merry-go-round", "an amusement park ride"), ("happy-go-lucky", "a personality trait"),
    ("ne'er-do-well", "a kind of person"), ("will-o'-the-wisp", "something seen over a marsh"),
    ("o'clock", "a word used in telling time"), ("ma'am", "a polite form of address"),
    ("hors d'oeuvre", "something served at a party"), ("jack-in-the-box", "a toy that pops up"),
    ("bric-a-brac", "a collection of small things"), ("tic-tac-toe", "a game for two"),
]
_ABBREVIATIONS = [  # (answer, expansion)
    ("U.S.A.", "the country of the Stars and Stripes"), ("U.K.", "a kingdom across the Atlantic"),
    ("Washington, D.C.", "the nation's capital, written with its district"), ("Ph.D.", "a doctoral degree"),
    ("R.S.V.P.", "a request on an invitation"), ("a.m.", "the morning hours"), ("P.S.", "an afterthought in a letter"),
    ("Dr. Seuss", "the author of “Green Eggs and Ham,” with his title"), ("Mr. T", "an actor on “The A-Team”"),
    ("Martin Luther King Jr.", "a civil rights leader, with his suffix"), ("e.g.", "a phrase meaning “for example”"),
    ("i.e.", "a phrase meaning “that is”"), ("N.Y.C.", "the Big Apple"), ("D.J.", "someone who plays records"),
]
_ACCENTED = [  # (answer, language, clue)
    ("café", "French", "a place to get coffee"), ("jalapeño", "Spanish", "a hot pepper"),
    ("piñata", "Spanish", "something broken at a party"), ("résumé", "French", "something you send an employer"),
    ("naïve", "French", "innocent"), ("fiancé", "French", "someone you will marry"),
    ("crème brûlée", "French", "a dessert"), ("São Paulo", "Portuguese", "a big city in Brazil"),
    ("Zürich", "German", "a Swiss city"), ("Québec", "French", "a Canadian province"),
    ("Bogotá", "Spanish", "a South American capital"), ("entrée", "French", "a main course"),
    ("soufflé", "French", "a puffy baked dish"), ("El Niño", "Spanish", "a weather pattern"),
    ("façade", "French", "the front of a building"), ("déjà vu", "French", "a feeling of repetition"),
    ("señorita", "Spanish", "a young woman"), ("über", "German", "a prefix meaning “super”"),
]
_PEOPLE = [  # (answer, description)
    ("Mark Twain", "an American author"), ("Jane Austen", "an English novelist"),
    ("Harper Lee", "an American novelist"),
    ("Toni Morrison", "a Nobel Prize-winning author"), ("Walt Whitman", "an American poet"),
    ("Emily Dickinson", "a poet from Massachusetts"), ("Maya Angelou", "an American poet"),
    ("Tom Hanks", "a well-known actor"), ("Meryl Streep", "a well-known actress"), ("Bette Davis", "a film star"),
    ("Babe Ruth", "a baseball player"), ("Serena Williams", "a tennis champion"), ("Elvis Presley", "a singer"),
    ("Aretha Franklin", "a singer"), ("Georgia O'Keeffe", "an American painter"), ("Frida Kahlo", "a Mexican painter"),
]
_PAIRS = [  # (answer with two parts, challenge)
    ("Maine, anime", "Name a U.S. state whose letters can be rearranged to spell a style of cartoon."),
    ("Elvis, lives", "Name a famous singer, five letters, whose name is an anagram of a common verb."),
    ("listen, silent", "Think of a six-letter verb whose letters can be rearranged to mean “quiet.”"),
    ("night, thing", "Think of a five-letter word for the time after sunset. Rearrange its letters to get a "
                     "common word for an object. Give both words."),
    ("Austin, Boston", "Name two state capitals that rhyme, six letters each."),
    ("Venus, Mars", "Name two planets whose names together have nine letters."),
    ("salt, pepper", "Name two things usually found together on a dining table, four and six letters."),
    ("Ben Stiller, Tinkerbell", "Think of a well-known actor, three letters in the first name, seven in the "
                                "last. Change one letter and rearrange to name a fairy. Who are they?"),
    ("Hoover Dam, Vermont, Idaho", "Name a national landmark of two words. Add a number and rearrange all "
                                   "the letters to name two states. What are they?"),
    ("Lima, mail", "Name a world capital, four letters, whose letters rearrange to something delivered daily."),
    ("heart, earth", "Think of a five-letter body part. Move its first letter to the end to name a planet."),
    ("stressed, desserts", "Take an eight-letter word meaning “anxious.” Spell it backward. What sweet "
                           "things result? Give both words."),
]


def _curated(rng: random.Random) -> list[tuple[str, str]]:
    """(challenge, answer) pairs of the hand-written families."""
    out = []
    for city, state in _CITIES:
        words = city.replace("-", " ").split()
        counts = " and ".join(str(sum(c.isalpha() for c in w)) for w in words)
        out.append((f"Name a U.S. city in {state} — {len(words)} part{'s' if len(words) > 1 else ''}, "
                    f"{counts} letters — that ends in the letter “{city[-1].upper()}.” What city is it?", city))
    for answer, clue in _HYPHENATED:
        n = sum(c.isalpha() for c in answer)
        out.append((f"Think of a familiar word or phrase for {clue}. It has {n} letters and is written with "
                    f"punctuation between its parts. It starts with “{answer[0].upper()}.” What is it?", answer))
    for answer, expansion in _ABBREVIATIONS:
        out.append((f"What familiar abbreviation, written with periods, stands for {expansion}?", answer))
    for answer, language, clue in _ACCENTED:
        n = sum(c.isalpha() for c in answer)
        out.append((f"Think of a word or name English took from {language}, {n} letters, written with an accent "
                    f"mark, for {clue}. What is it?", answer))
    for answer, description in _PEOPLE:
        first, last = answer.split()[0], answer.split()[-1]
        n_first, n_last = (sum(c.isalpha() for c in w) for w in (first, last))
        out.append((f"Name {description} — {n_first} letters in the first name, {n_last} in the last. "
                    f"The initials are {first[0]}. and {last[0]}. Who is it?", answer))
    out += [(c, a) for a, c in _PAIRS]
    rng.shuffle(out)
    return out


def _ladders(words: list[str]) -> list[tuple[str, str, str]]:
    """Word ladders a -> b -> c of one-letter changes within `words` (a != c)."""
    by_len: dict[int, list[str]] = {}
    for w in words:
        by_len.setdefault(len(w), []).append(w)
    step = {w: [v for v in by_len[len(w)] if sum(x != y for x, y in zip(w, v)) == 1] for w in words}
    return [(a, b, c) for a in words for b in step[a] for c in step[b] if c != a]


def _word_families(rng: random.Random) -> list[tuple[str, str]]:
    """(challenge, answer) pairs computed from mawt.puzzles' word list, in rounds."""
    words = sorted(set(puzzles.WORDS))
    out = []
    for w in rng.sample(words, len(words)):
        n = len(w)
        out.append((f"Take the {n}-letter word “{w}.” Move its first letter to the end, then read the result "
                    f"backward. What string of letters do you get?", (w[1:] + w[0])[::-1]))
        if n >= 5:
            out.append((f"Think of the word {w.upper()}. Remove its first and last letters. What "
                        f"{n - 2}-letter string remains?", w[1:-1]))
        same = sorted(v for v in words if len(v) == n and v[:2] == w[:2] and v[-1] == w[-1])
        out.append((f"Name a common {n}-letter word that starts with “{w[:2].upper()}” and ends with "
                    f"“{w[-1].upper()}.” If there is more than one, name them all.", "; ".join(same)))
    ladders = _ladders(words)
    for a, b, c in rng.sample(ladders, min(120, len(ladders))):
        out.append((f"Change one letter at a time to turn {a.upper()} into {c.upper()} in two steps, making a "
                    f"common word at each step. What are the steps?", f"{a} --> {b} --> {c}"))
    rng.shuffle(out)
    return out


def _interleave(curated: list, computed: list, n: int) -> list[tuple[str, str]]:
    """About one curated row in three until they run out, then computed ones; no repeats
    of a normalised challenge."""
    rows, seen, queue = [], set(), []
    for i in range(max(len(curated), len(computed))):
        queue += curated[i : i + 1] + computed[2 * i : 2 * i + 2]
    for challenge, answer in queue:
        key = puzzles.normalise_challenge(challenge)
        if key not in seen and answer.strip():
            seen.add(key)
            rows.append((challenge, answer))
        if len(rows) == n:
            return rows
    raise ValueError(f"the templates make only {len(rows)} distinct puzzles, fewer than {n}")


_SLUG_WORDS = ("puzzle", "word", "play", "name", "game", "letters", "change", "switch", "find", "hidden",
               "backward", "city", "state", "famous", "sound", "spell", "think", "two", "three", "mix")


def _row_meta(rng: random.Random, day: datetime.date) -> dict:
    """A fake but well-formed NPR url and a 19-character date, as in the real rows."""
    story = rng.randint(10**8, 10**9 - 1) if day.year >= 2008 else rng.randint(10**6, 10**7 - 1)
    slug = "-".join(rng.sample(_SLUG_WORDS, rng.randint(2, 6)))
    time = "04:01:00" if day.year >= 2011 else "05:00:00"
    return {"url": f"https://www.npr.org/{day:%Y/%m/%d}/{story}/{slug}", "date": f"{day:%Y-%m-%d} {time}"}


def puzzle_rows(n: int = 360, seed: int = 0) -> list[dict]:
    """`n` Sunday-Puzzle-style rows in the nuprl schema, distinct after normalisation."""
    rng = random.Random(seed)
    pairs = _interleave(_curated(rng), _word_families(rng), n)
    day, next_id, rows = datetime.date(2024, 12, 29), 0, []  # a Sunday; then back in time
    for challenge, answer in pairs:
        rows.append({"ID": next_id, **_row_meta(rng, day), "challenge": challenge, "answer": answer})
        next_id += rng.choice((1, 1, 1, 2))  # the real IDs have gaps (582 rows, IDs 0..594)
        day -= datetime.timedelta(weeks=rng.choice((1, 1, 2)))
    return rows


def write_puzzles(path: Path, n: int = 360, seed: int = 0) -> Path:
    """The rows as one parquet file with the real dataset's Arrow schema (and its
    `huggingface` features metadata, as `datasets` writes it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = puzzle_rows(n, seed)
    features = {name: {"dtype": dtype, "_type": "Value"} for name, dtype in SCHEMA}
    schema = pa.schema([(name, getattr(pa, dtype)()) for name, dtype in SCHEMA],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic.atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


# ---------------------------------------------------------------- shipped assets

# Generic English for the tokenizer (R1-style reasoning prose and plain sentences), so
# that the vocabulary also covers what a model writes, not only what the puzzles ask.
GENERIC_TEXT = """\
Okay, so I need to figure out this puzzle. Let me read it again carefully. The question asks for a
common word, and then it says to remove the first letter. Hmm, that means the answer is a shorter
word hidden inside a longer one. Let me think about five-letter words first. Wait, maybe I should
start with the hint instead. The hint says it is something you might find in a kitchen. Kitchen
things: plate, spoon, knife, fork, bowl, stove, sink, table, chair, oven, towel. If I take "plate"
and remove the first letter, I get "late", which is a word! But does it fit the rest of the clue?
The clue also says the result is the opposite of "early". Yes, late is the opposite of early. So
the answer should be plate. Let me double-check: five letters, p-l-a-t-e, something in a kitchen,
remove the p and you get late. That works. Therefore, the answer is plate.

Alternatively, I could consider other possibilities, but I think this is right. Another approach is
to list cities in each state and count their letters. For example, Boston has six letters, Denver
has six, and Phoenix has seven. If the puzzle wants two words that rhyme, I should compare their
endings. Sometimes there is more than one answer, and the puzzle accepts any answer that works.
I am not completely sure, so let me verify each step before I write the final answer.

The Sunday Puzzle is a weekly word game heard on public radio. Listeners send in their answers
during the week, and one winner is chosen at random to play the puzzle on the air. The puzzles
use everyday knowledge: famous people, places, foods, sports, and the letters of the alphabet.
Most people can understand the question in a few seconds, even if finding the answer takes a long
time. Good solvers write things down, try many candidates quickly, and check each one against
every condition. They also know when to stop searching and when to start over with a new idea.
Weather, music, history, science, and geography appear often. So do anagrams, rhymes, homophones,
hidden words, and words spelled backward. The answer is usually a single word or a short phrase.
"""


def training_texts(rows: list[dict]) -> list[str]:
    """What the shipped tokenizer is trained on: every challenge and answer, and GENERIC_TEXT."""
    return [r["challenge"] for r in rows] + [r["answer"] for r in rows] + [GENERIC_TEXT]


def build_assets(dest: Path = ASSETS) -> Path:
    """The shipped stand-in assets: `dest/puzzles.parquet` (360 rows) and `dest/tokenizer/`
    (trained on those rows and GENERIC_TEXT). Deterministic."""
    dest = Path(dest)
    write_puzzles(dest / "puzzles.parquet")
    save_tokenizer(build_tokenizer(training_texts(puzzle_rows())), dest / "tokenizer")
    return dest
