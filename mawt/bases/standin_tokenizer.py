"""The stand-in's tokenizer: DeepSeek-R1-Distill-Qwen's pipeline, added tokens, chat
template and files, on a small byte-level BPE trained here (see `mawt.bases.standin` for the
whole stand-in and what it keeps from the real model).

Its own module because it is the stand-in's shipped half: `build_assets` trains it once
and writes `assets/paper_standin/tokenizer/`, and everything else (the model's vocabulary
and token ids, the prompts, the chat template's thinking) is read back from those files.
Everything here is what R1-Distill's tokenizer is, or what only the tokenizer needs (the
text it is trained on). The model stays in `mawt.bases.standin` (which re-exports these
names), the puzzles in `mawt.bases.standin_puzzles`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)
from transformers import PreTrainedTokenizerFast

from mawt.common import atomic

# The shipped stand-in assets (the tokenizer under `tokenizer/`, the puzzles next to it);
# defined here, where the tokenizer's default path needs it, and re-exported by `mawt.bases.standin`.
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "paper_standin"

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


# ---------------------------------------------------------------- training text

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
