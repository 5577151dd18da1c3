"""Synthetic verbal puzzles with verifiable answers (the embedded default data).

Word play in the spirit of the NPR Sunday Puzzle, small enough for a micro model:
each *family* is one transformation of a word (or a few words) with a one-line
instruction. A puzzle of `chain` > 1 chains several families ("..., then ...").

    generate(n, families=("reverse", "drop_first"), chain=1, seed=0)
    -> [{"challenge": "Spell plant backwards.", "answer": "tnalp", "family": "reverse"}, ...]

Deterministic per seed (Python's `random.Random`, no global state), no network.
The `difficulty` knob is the word length range; `chain` is how many families one puzzle chains;
`vocabulary` is what the puzzles are made of (mawt/data/vocabulary.py): `words` (its word
list, a few hundred per difficulty) or `letters` (random letter strings: "Spell qzvk backwards.").
The n puzzles are pairwise distinct (`normalise_challenge`) unless distinct=False;
`capacity(...)` is how many distinct puzzles a setting can make.
"""

from __future__ import annotations

import math
import random
import string
import unicodedata
from collections.abc import Callable, Sequence

from mawt.data.vocabulary import VOCABULARIES, Vocabulary


def _reverse(w: str) -> str:
    return w[::-1]


def _shift(w: str, k: int = 1) -> str:
    return "".join(chr((ord(c) - 97 + k) % 26 + 97) for c in w)


def _swap_ends(w: str) -> str:
    return w[-1] + w[1:-1] + w[0] if len(w) > 1 else w


# family -> (instruction for the first step, phrase for a later step, transform)
FAMILIES: dict[str, tuple[str, str, Callable[[str], str]]] = {
    "reverse": ("Spell {w} backwards.", "spell it backwards", _reverse),
    "drop_first": ("Remove the first letter of {w}.", "remove the first letter", lambda w: w[1:]),
    "drop_last": ("Remove the last letter of {w}.", "remove the last letter", lambda w: w[:-1]),
    "swap_ends": ("Swap the first and last letters of {w}.", "swap the first and last letters", _swap_ends),
    "sort_letters": ("Sort the letters of {w}.", "sort the letters", lambda w: "".join(sorted(w))),
    "shift": ("Shift each letter of {w} by one.", "shift each letter by one", _shift),
    "double_last": ("Double the last letter of {w}.", "double the last letter", lambda w: w + w[-1:]),
    "shift_two": ("Shift each letter of {w} by two.", "shift each letter by two", lambda w: _shift(w, 2)),
    "rotate": ("Move the first letter of {w} to the end.", "move the first letter to the end",
               lambda w: w[1:] + w[:1]),
}
# Families that are not word transforms (they make their own question); they cannot be chained.
SPECIAL = ("next_letter", "initials", "later_letter", "later_ends")
ALL_FAMILIES = tuple(FAMILIES) + SPECIAL
DIFFICULTY = {  # word length range per difficulty level
    1: (3, 4),
    2: (4, 5),
    3: (5, 7),
}
_NEXT_LETTER_STEPS = (1, 2, 3)

# ASCII punctuation in the unicode sense (category P*; `$+<=>^`|~` are symbols and stay).
_ASCII_PUNCTUATION = str.maketrans(
    "", "", "".join(c for c in string.punctuation if unicodedata.category(c).startswith("P"))
)


def normalise_challenge(text: str) -> str:
    """A challenge's identity: lowercase, unicode punctuation (category P*) removed,
    whitespace collapsed (NFKC first, so full-width and compatibility forms match).

    Two challenges are the same puzzle when their normalised texts are equal: the
    generator's distinctness, the split's de-duplication and `mawt.data.split.content_hash`
    all use this one function.
    """
    if text.isascii():
        text = text.lower().translate(_ASCII_PUNCTUATION)
    else:
        text = unicodedata.normalize("NFKC", text).lower()
        text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(text.split())



def _next_letter(rng: random.Random) -> dict:
    step = rng.choice(_NEXT_LETTER_STEPS)
    start = rng.randint(0, 25 - 4 * step)
    series = [string.ascii_lowercase[start + i * step] for i in range(4)]
    return {
        "challenge": f"What comes next: {', '.join(series[:3])}?",
        "answer": series[3],
    }


def _initials(rng: random.Random, vocab: Vocabulary) -> dict:
    picked = vocab.draw_distinct(rng, rng.randint(3, 4))
    return {
        "challenge": f"Join the first letters of {' '.join(picked)}.",
        "answer": "".join(w[0] for w in picked),
    }


def later_letters(first: str, second: str) -> str:
    """The later letter (in the alphabet) at each position of two equal-length strings."""
    return "".join(max(a, b) for a, b in zip(first, second, strict=True))


def _later_letter(rng: random.Random, vocab: Vocabulary) -> dict:
    first, second = vocab.draw_pair(rng)
    return {
        "challenge": f"Write the later letter at each position of {first} and {second}.",
        "answer": later_letters(first, second),
    }


def _later_ends(rng: random.Random, vocab: Vocabulary) -> dict:
    """One letter from two positions of one string: the later of its first and last letters.

    `later_letter`'s comparison without its alignment across two strings: the micro
    base already finds a string's first and last letters (swap_ends, drop_first, ...),
    so last-layer fine-tuning can learn the copy; the comparison is what is left.
    """
    word = vocab.draw(rng)
    return {
        "challenge": f"Write the later of the first and last letters of {word}.",
        "answer": max(word[0], word[-1]),
    }


def _family_capacity(family: str, vocab: Vocabulary) -> int:
    """Distinct challenges one (single-step) family can make."""
    if family == "next_letter":
        return sum(26 - 4 * step for step in _NEXT_LETTER_STEPS)
    if family == "initials":
        return math.perm(vocab.count(), 3) + math.perm(vocab.count(), 4)
    if family == "later_letter":
        return sum(vocab.count(n) * (vocab.count(n) - 1) for n in range(vocab.lo, vocab.hi + 1))
    return vocab.count()


def check(families: Sequence[str], chain: int, difficulty: int, vocabulary: str = "words",
          prefix: str = "puzzle ") -> None:
    """Validate the generator's knobs; messages name them as `{prefix}<knob>`."""
    if isinstance(families, str) or not isinstance(families, Sequence):
        raise ValueError(f"{prefix}families={families!r} is invalid: must be a list of family names "
                         f"({', '.join(ALL_FAMILIES)})")
    unknown = [f for f in families if f not in ALL_FAMILIES]
    if not families or unknown:
        raise ValueError(
            f"{prefix}families {list(unknown) or list(families)} invalid; allowed are {', '.join(ALL_FAMILIES)}"
        )
    if not isinstance(chain, int) or isinstance(chain, bool) or chain < 1:
        raise ValueError(f"{prefix}chain={chain!r} is invalid: must be an integer >= 1")
    special = [f for f in dict.fromkeys(families) if f in SPECIAL]
    if chain > 1 and special:
        raise ValueError(f"{prefix}chain={chain} chains word transforms only; {', '.join(special)} cannot be chained "
                         f"(the transforms are {', '.join(FAMILIES)})")
    if difficulty not in DIFFICULTY or isinstance(difficulty, bool):
        raise ValueError(f"{prefix}difficulty={difficulty!r} is invalid: allowed are {sorted(DIFFICULTY)}")
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"{prefix}vocabulary={vocabulary!r} is invalid: allowed are {', '.join(VOCABULARIES)}")


def capacity(families: Sequence[str] = tuple(FAMILIES), chain: int = 1, difficulty: int = 2,
             vocabulary: str = "words") -> int:
    """How many pairwise distinct challenges (see `normalise_challenge`) these settings can make."""
    check(families, chain, difficulty, vocabulary)
    vocab = Vocabulary(vocabulary, *DIFFICULTY[difficulty])
    distinct = list(dict.fromkeys(families))
    transforms = [f for f in distinct if f in FAMILIES]
    # every chain of transforms has its own wording; each applies to every string
    total = len(transforms) ** chain * vocab.count() if transforms else 0
    return total + sum(_family_capacity(f, vocab) for f in distinct if f in SPECIAL)


def _one(rng: random.Random, families: list[str], chain: int, vocab: Vocabulary) -> dict:
    picked = [rng.choice(families) for _ in range(chain)]
    if picked[0] == "next_letter":
        row = _next_letter(rng)
    elif picked[0] == "initials":
        row = _initials(rng, vocab)
    elif picked[0] == "later_letter":
        row = _later_letter(rng, vocab)
    elif picked[0] == "later_ends":
        row = _later_ends(rng, vocab)
    else:
        word = vocab.draw(rng)
        answer = word
        for fam in picked:
            answer = FAMILIES[fam][2](answer)
        text = FAMILIES[picked[0]][0].format(w=word)
        for fam in picked[1:]:
            text = text[:-1] + f", then {FAMILIES[fam][1]}."
        row = {"challenge": text, "answer": answer}
    return {**row, "family": "+".join(picked)}


def generate(
    n: int,
    families: Sequence[str] = tuple(FAMILIES),
    chain: int = 1,
    difficulty: int = 2,
    seed: int = 0,
    vocabulary: str = "words",
    distinct: bool = True,
) -> list[dict]:
    """`n` puzzles drawn uniformly from `families` (chains of `chain` of them).

    With `distinct` (the default) the challenges are pairwise distinct after
    `normalise_challenge`: a repeat is drawn again (rejection sampling). A request
    beyond `capacity(...)` is refused with a ValueError that says what to change.
    """
    check(families, chain, difficulty, vocabulary)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"puzzle n={n!r} is invalid: must be an integer >= 0")
    vocab = Vocabulary(vocabulary, *DIFFICULTY[difficulty])
    empty = [f for f in dict.fromkeys(families) if f in SPECIAL and _family_capacity(f, vocab) == 0]
    if empty:
        raise ValueError(f"puzzle families {empty} make no puzzles with vocabulary={vocabulary!r} at "
                         f"difficulty={difficulty}; choose another difficulty or vocabulary='letters'")
    settings = f"vocabulary={vocabulary!r}, families={list(families)}, chain={chain}, difficulty={difficulty}"
    advice = ("use vocabulary='letters' (random letter strings), more families" if vocabulary == "words"
              else "use a higher difficulty (longer strings), more families")
    advice += " or a smaller n (distinct=False allows repeats)"
    cap = capacity(families, chain, difficulty, vocabulary)
    if distinct and n > cap:
        raise ValueError(f"puzzle n={n} exceeds the capacity of {cap} distinct puzzles of {settings}; {advice}")
    rng = random.Random(seed)
    families = list(families)
    rows: list[dict] = []
    seen: set[str] = set()
    tries, max_tries = 0, 100 * n + 1000
    while len(rows) < n:
        if distinct and tries == max_tries:
            raise ValueError(f"puzzle n={n}: only {len(rows)} distinct puzzles of {settings} found in "
                             f"{max_tries} draws (capacity {cap}); {advice}")
        tries += 1
        row = _one(rng, families, chain, vocab)
        if distinct:
            key = normalise_challenge(row["challenge"])
            if key in seen:
                continue
            seen.add(key)
        rows.append(row)
    return rows
