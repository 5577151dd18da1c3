"""Answer scoring for verbal-reasoning puzzles (MAWT_SPEC section 4).

Scores a model's free-text response against a gold answer of the NPR Sunday
Puzzle dataset `nuprl/verbal-reasoning-challenge`.

`challenge_metric` reproduces the published checker, so that our numbers are
comparable with published ones. That checker is lighteval's community task
`verbal_reasoning_challenge` (huggingface/lighteval,
`community_tasks/verbal_reasoning_challenge.py`, pull request #551, written by
the dataset's authors for "PhD Knowledge Not Required: A Reasoning Challenge for
Large Language Models", Anderson, Guha et al., 2025). Our code is written from
its observable behaviour, which is:

1. Thinking. Case-sensitively, every `</think>` is erased together with the text
   before it back to the nearest `<` that precedes it (exclusive), or back to
   the start of the response when no `<` precedes it; when that `<` opens a
   `<think>` tag the tag is erased as well. So a closed `<think>...</think>`
   block vanishes only when its thinking holds no `<`: from `<think>a < b</think>`
   only ` b</think>` is erased. A `<think>` that is never closed erases nothing:
   the whole response, thinking included, is scored (and the tag itself leaves
   the word "think").
2. Response words: the rest is lowercased (`str.lower`, no Unicode
   normalisation) and every character that is neither a word character (`\\w`:
   Unicode letters, digits, `_`) nor whitespace becomes a space. The response is
   thus the sequence of its `\\w+` words: "new-york" is "new york", "U.S.A." is
   "u s a", "don't" is "don t", "\\boxed{x}" is "boxed x".
3. Gold: lowercased, then split on `;` into alternatives; each alternative is
   split into phrases at every `,` and every `>` (so `-->`, `->`, `–>`, `—>`,
   `=>` and a bare `>` all separate phrases; the dashes in front are not word
   characters and vanish). `→` and other arrow glyphs do NOT split: they are
   mere non-word characters inside a phrase. A phrase is the sequence of its
   `\\w+` words.
4. Matching: a non-empty phrase matches when its words occur as a contiguous
   run of whole response words ("paris" is not in "parisian"). A phrase with no
   words (from an empty alternative, `"a;"`, or a stray separator, `"a,"`)
   matches any response that has at least one word. The response is correct
   when, for some alternative, every phrase matches, in any order.

`think_closed` and `challenge_strict` add what the published checker ignores:
reasoning that never finished. Tags are found case-insensitively; reading them
in order, `<think>` opens a block and `</think>` closes it, and the response is
closed when no block is open at its end (so the last tag decides).
`think_open=True` says the prompt
already opened one (DeepSeek-R1 chat templates end the prompt with `<think>\\n`),
so the response must then close it. `challenge_strict` is `challenge_metric`
on a response whose thinking is closed, and wrong otherwise.

`drop_think` is cleaner than the checker's rule 1: it removes every closed
`<think>...</think>` block (tags in any case, whatever the thinking holds) and
then everything up to a remaining `</think>`; an unclosed `<think>` is kept.

`exact_match` is strict: after `drop_think`, the response equals one of the
`;`-separated gold alternatives, or the whole gold verbatim (what fine-tuning
teaches a model to write: "hand; hard" is credited for the gold "hand; hard",
as are "hand" and "hard"), once both are NFKC-normalised, case-folded and
whitespace-collapsed, with every `**` (markdown bold) removed, a surrounding
`\\boxed{...}` / `\\text{...}` / `\\textbf{...}` / `\\mathrm{...}` unwrapped,
and punctuation, symbols and whitespace stripped from both ends. Edge characters
stripped are any Unicode punctuation (category P*: `.,!?"'`, curly quotes, `–`,
`—`, `…`, `¿`, `*`, `_`, full-width `！`, ...), any separator or whitespace, and
the symbols `` ` ~ ^ $ | < > = → ⇒``.

Every function is pure.
"""

from __future__ import annotations

import re
import unicodedata

# The scores, one list: per sample 0/1, per item their mean (with n_samples > 1: pass@1); the same
# keys in heldout.json's items, its aggregates (mawt.evaluation.evaluate) and the study tables,
# which give each an interval (mawt.analysis).
SCORES = ("exact_match", "challenge_metric", "challenge_strict")

_OPEN, _CLOSE = "<think>", "</think>"
_THINK = re.compile(r"<think>.*?</think>", flags=re.S | re.I)
_TAG = re.compile(r"<(/?)think>", flags=re.I)
_WORD = re.compile(r"\w+")
_PHRASE_SEP = re.compile(r"[,>]")


def drop_think(text: str) -> str:
    """Remove reasoning: closed <think> blocks, and everything before a lone </think>."""
    text = _THINK.sub(" ", text)
    if "</think>" in text.lower():
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    return text


def _checker_visible(response: str) -> str:
    """What the published checker keeps of a response (rule 1 of the module docstring)."""
    pieces = response.split(_CLOSE)
    kept = []
    for piece in pieces[:-1]:  # each of these is followed by a </think>
        cut = piece.rfind("<")
        if cut >= 0:
            kept.append(piece[:cut] if piece.startswith(_OPEN, cut) else piece[: cut + 1])
    kept.append(pieces[-1])
    return "".join(kept)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _gold_alternatives(gold: str) -> list[list[str]]:
    """Gold -> alternatives -> phrases, each phrase its words joined by one space."""
    return [[" ".join(_words(group)) for group in _PHRASE_SEP.split(alternative)]
            for alternative in gold.lower().split(";")]


def challenge_metric(response: str, gold: str) -> bool:
    """The published checker: every phrase of some gold alternative occurs as whole words."""
    words = _words(_checker_visible(response))
    padded = f" {' '.join(words)} "
    for phrases in _gold_alternatives(gold):
        if all((f" {p} " in padded) if p else bool(words) for p in phrases):
            return True
    return False


def think_closed(response: str, think_open: bool = False) -> bool:
    """Whether no <think> block is left open at the end (the prompt's own one counts if think_open)."""
    state = think_open
    for tag in _TAG.finditer(response):
        state = not tag.group(1)
    return not state


def challenge_strict(response: str, gold: str, think_open: bool = False) -> bool:
    """`challenge_metric`, except that thinking that never closed is wrong."""
    return think_closed(response, think_open) and challenge_metric(response, gold)


_EDGE_SYMBOLS = frozenset("`~^$|<>=→⇒")
_WRAPPER = re.compile(r"(?P<pre>.*?)\\(?:boxed|text|textbf|mathrm)\s*\{(?P<body>.*)\}(?P<post>.*)", flags=re.S)


def _is_edge(c: str) -> bool:
    return c.isspace() or unicodedata.category(c)[0] in "PZ" or c in _EDGE_SYMBOLS


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _strict(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("**", "")
    while True:  # each pass shortens the text, so this ends
        wrapped = _WRAPPER.fullmatch(text)
        if wrapped and all(map(_is_edge, wrapped["pre"] + wrapped["post"])):
            text = wrapped["body"]
            continue
        stripped = _strip_edges(text)
        if stripped == text:
            return " ".join(text.casefold().split())
        text = stripped


def exact_match(response: str, gold: str) -> bool:
    """Strict normalised exact match against any `;`-separated gold alternative or the whole gold."""
    answer = _strict(drop_think(response))
    return any(answer == _strict(alt) for alt in [gold, *gold.split(";")] if _strict(alt))
