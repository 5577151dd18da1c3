"""Synthetic verbal puzzles with verifiable answers (the embedded default data).

Word play in the spirit of the NPR Sunday Puzzle, small enough for a micro model:
each *family* is one transformation of a word (or a few words) with a one-line
instruction. A puzzle of `chain` > 1 chains several families ("..., then ...").

    generate(n, families=("reverse", "drop_first"), chain=1, seed=0)
    -> [{"challenge": "Spell plant backwards.", "answer": "tnalp", "family": "reverse"}, ...]

Deterministic per seed (Python's `random.Random`, no global state), no network.
The `difficulty` knob is the word length range; `chain` is how many families one puzzle chains;
`vocabulary` is what the puzzles are made of: `words` (the WORDS list below, a few
hundred per difficulty) or `letters` (random letter strings: "Spell qzvk backwards.").
The n puzzles are pairwise distinct (`normalise_challenge`) unless distinct=False;
`capacity(...)` is how many distinct puzzles a setting can make.
"""

from __future__ import annotations

import math
import random
import string
import unicodedata
from collections.abc import Callable, Sequence

# Short common English words (3-7 letters), lowercase a-z only.
WORDS = tuple(
    """
    able acid aged also area army away baby back ball band bank base bath bear beat
    bell belt best bird blow blue boat body bone book boot born boss both bowl burn
    bush busy cake call calm camp card care cart case cash cast cell chat chip city
    club coal coat code cold cook cool cope copy core corn cost crew crop dark data
    date dawn dead deal dear debt deep deny desk diet dirt dish dock door dose down
    draw drop drug drum dust duty earn ease east easy edge else even ever face fact
    fail fair fall farm fast fate fear feed feel file fill film find fine fire firm
    fish flag flat flow folk food foot form fort four free frog fuel full fund gain
    game gate gear gift girl give glad goal gold golf good grab gray grow hair half
    hall hand hang hard harm hate head hear heat help herb hero hide high hill hint
    hold hole home hope horn host hour huge hunt idea iron item join joke jump jury
    keen keep kick kind king kite knee knot lady lake lamp land lane last late lead
    leaf lean left lend lens life lift lime line lion list live load loan lock long
    apple bread chair cloud dance earth flame grape heart house juice knife lemon
    light money mouse music night ocean paper party piano plant queen radio river
    salad sheep shirt snake space sport stone storm sugar table tiger toast tower
    train truck water whale world zebra garden planet silver window winter basket
    candle castle circle dinner doctor finger flower forest friend guitar island
    jacket letter market mirror monkey number orange pencil pepper pocket rabbit
    rocket school summer ticket turtle valley violin wonder yellow
    """.split()
)


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
# What the puzzles are made of: `words` (the WORDS list: readable, a few hundred per
# difficulty) or `letters` (random lowercase strings: practically unlimited).
VOCABULARIES = ("words", "letters")
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
    generator's distinctness, the split's de-duplication and `data.content_hash`
    all use this one function.
    """
    if text.isascii():
        text = text.lower().translate(_ASCII_PUNCTUATION)
    else:
        text = unicodedata.normalize("NFKC", text).lower()
        text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(text.split())


class _Vocabulary:
    """The strings puzzles are made of at one difficulty: WORDS or random letter strings."""

    def __init__(self, kind: str, lo: int, hi: int) -> None:
        self.kind, self.lo, self.hi = kind, lo, hi
        lengths = range(lo, hi + 1)
        if kind == "words":
            self.words = [w for w in WORDS if lo <= len(w) <= hi]
            self.by_length = {n: [w for w in self.words if len(w) == n] for n in lengths}
        else:
            self.by_length_count = {n: 26**n for n in lengths}
        # words that have a different word of the same length (for `later_letter`)
        self.pairable = [w for w in getattr(self, "words", ()) if len(self.by_length[len(w)]) > 1]

    def count(self, length: int | None = None) -> int:
        """How many distinct strings (of one length, or of all)."""
        if self.kind == "words":
            return len(self.words) if length is None else len(self.by_length[length])
        return sum(self.by_length_count.values()) if length is None else self.by_length_count[length]

    def _letters(self, rng: random.Random, length: int | None = None) -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=length or rng.randint(self.lo, self.hi)))

    def draw(self, rng: random.Random) -> str:
        return rng.choice(self.words) if self.kind == "words" else self._letters(rng)

    def draw_distinct(self, rng: random.Random, k: int) -> list[str]:
        if self.kind == "words":
            return rng.sample(self.words, k)
        picked: list[str] = []
        while len(picked) < k:
            s = self._letters(rng)
            if s not in picked:
                picked.append(s)
        return picked

    def draw_pair(self, rng: random.Random) -> tuple[str, str]:
        """Two different strings of equal length."""
        if self.kind == "words":
            first = rng.choice(self.pairable)
            return first, rng.choice([w for w in self.by_length[len(first)] if w != first])
        first = self._letters(rng)
        while (second := self._letters(rng, len(first))) == first:
            pass
        return first, second


def _next_letter(rng: random.Random) -> dict:
    step = rng.choice(_NEXT_LETTER_STEPS)
    start = rng.randint(0, 25 - 4 * step)
    series = [string.ascii_lowercase[start + i * step] for i in range(4)]
    return {
        "challenge": f"What comes next: {', '.join(series[:3])}?",
        "answer": series[3],
    }


def _initials(rng: random.Random, vocab: _Vocabulary) -> dict:
    picked = vocab.draw_distinct(rng, rng.randint(3, 4))
    return {
        "challenge": f"Join the first letters of {' '.join(picked)}.",
        "answer": "".join(w[0] for w in picked),
    }


def later_letters(first: str, second: str) -> str:
    """The later letter (in the alphabet) at each position of two equal-length strings."""
    return "".join(max(a, b) for a, b in zip(first, second, strict=True))


def _later_letter(rng: random.Random, vocab: _Vocabulary) -> dict:
    first, second = vocab.draw_pair(rng)
    return {
        "challenge": f"Write the later letter at each position of {first} and {second}.",
        "answer": later_letters(first, second),
    }


def _later_ends(rng: random.Random, vocab: _Vocabulary) -> dict:
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


def _family_capacity(family: str, vocab: _Vocabulary) -> int:
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
    vocab = _Vocabulary(vocabulary, *DIFFICULTY[difficulty])
    distinct = list(dict.fromkeys(families))
    transforms = [f for f in distinct if f in FAMILIES]
    # every chain of transforms has its own wording; each applies to every string
    total = len(transforms) ** chain * vocab.count() if transforms else 0
    return total + sum(_family_capacity(f, vocab) for f in distinct if f in SPECIAL)


def _one(rng: random.Random, families: list[str], chain: int, vocab: _Vocabulary) -> dict:
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
    vocab = _Vocabulary(vocabulary, *DIFFICULTY[difficulty])
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
