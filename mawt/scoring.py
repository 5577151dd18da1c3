"""Answer scoring for verbal-reasoning puzzles (MAWT_SPEC section 4).

Two scores, reported side by side:

* `challenge_correct`: compatible with the published checker of
  nuprl/verbal-reasoning-challenge (lighteval's `verbal_reasoning_challenge`
  community task). Any `<think>...</think>` part of the response is dropped;
  text is lowercased and punctuation removed; the gold answer splits on `;` into
  alternatives and each alternative on `,` or `-->` into phrases; the response is
  correct when every phrase of some alternative occurs in it as whole words.
* `exact_match`: strict: the response (after dropping `<think>`) equals one of
  the gold alternatives, ignoring case, surrounding punctuation and whitespace.

Both are pure functions of (response, gold).
"""

from __future__ import annotations

import re
import string

_PUNCT = str.maketrans("", "", string.punctuation)
_THINK = re.compile(r"<think>.*?</think>", flags=re.S | re.I)


def drop_think(text: str) -> str:
    """Remove reasoning: closed <think> blocks, and everything before a lone </think>."""
    text = _THINK.sub(" ", text)
    if "</think>" in text.lower():
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    return text


def _normalise(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).split())


def _phrases(alternative: str) -> list[str]:
    return [p for p in (_normalise(x) for x in re.split(r",|-->", alternative)) if p]


def challenge_correct(response: str, gold: str) -> bool:
    """Lenient challenge metric: every phrase of some gold alternative, as whole words."""
    text = f" {_normalise(drop_think(response))} "
    for alternative in gold.split(";"):
        phrases = _phrases(alternative)
        if phrases and all(f" {p} " in text for p in phrases):
            return True
    return False


def _strict(text: str) -> str:
    return " ".join(text.split()).lower().strip(string.punctuation + string.whitespace)


def exact_match(response: str, gold: str) -> bool:
    """Strict normalised exact match against any `;`-separated gold alternative."""
    answer = _strict(drop_think(response))
    return any(answer == _strict(alt) for alt in gold.split(";") if _strict(alt))
