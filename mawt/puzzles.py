"""Synthetic verbal puzzles with verifiable answers (the embedded default data).

Word play in the spirit of the NPR Sunday Puzzle, small enough for a micro model:
each *family* is one transformation of a word (or a few words) with a one-line
instruction. A puzzle of `steps` > 1 chains several families ("..., then ...").

    generate(n, families=("reverse", "drop_first"), steps=1, seed=0)
    -> [{"challenge": "Spell plant backwards.", "answer": "tnalp", "family": "reverse"}, ...]

Deterministic per seed (Python's `random.Random`, no global state), no network.
The `difficulty` knob is the word length range; `steps` is the composition depth.
"""

from __future__ import annotations

import random
import string
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
# Families that are not word transforms (they make their own question).
SPECIAL = ("next_letter", "initials")
ALL_FAMILIES = tuple(FAMILIES) + SPECIAL
DIFFICULTY = {  # word length range per difficulty level
    1: (3, 4),
    2: (4, 5),
    3: (5, 7),
}


def _next_letter(rng: random.Random) -> dict:
    step = rng.randint(1, 3)
    start = rng.randint(0, 25 - 4 * step)
    series = [string.ascii_lowercase[start + i * step] for i in range(4)]
    return {
        "challenge": f"What comes next: {', '.join(series[:3])}?",
        "answer": series[3],
    }


def _initials(rng: random.Random, words: Sequence[str]) -> dict:
    picked = rng.sample(list(words), rng.randint(3, 4))
    return {
        "challenge": f"Join the first letters of {' '.join(picked)}.",
        "answer": "".join(w[0] for w in picked),
    }


def _check(families: Sequence[str], steps: int, difficulty: int) -> None:
    unknown = [f for f in families if f not in ALL_FAMILIES]
    if not families or unknown:
        raise ValueError(
            f"puzzle families {list(unknown) or list(families)} invalid; allowed are {', '.join(ALL_FAMILIES)}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"puzzle steps={steps!r} is invalid: must be an integer >= 1")
    if steps > 1 and any(f in SPECIAL for f in families):
        raise ValueError(f"puzzle steps={steps} chains word transforms only; {', '.join(SPECIAL)} cannot be chained")
    if difficulty not in DIFFICULTY:
        raise ValueError(f"puzzle difficulty={difficulty!r} is invalid: allowed are {sorted(DIFFICULTY)}")


def generate(
    n: int,
    families: Sequence[str] = tuple(FAMILIES),
    steps: int = 1,
    difficulty: int = 2,
    seed: int = 0,
) -> list[dict]:
    """`n` puzzles drawn uniformly from `families` (chains of `steps` of them)."""
    _check(families, steps, difficulty)
    rng = random.Random(seed)
    lo, hi = DIFFICULTY[difficulty]
    words = [w for w in WORDS if lo <= len(w) <= hi]
    rows = []
    for _ in range(n):
        chain = [rng.choice(list(families)) for _ in range(steps)]
        if chain[0] == "next_letter":
            row = _next_letter(rng)
        elif chain[0] == "initials":
            row = _initials(rng, words)
        else:
            word = rng.choice(words)
            answer = word
            for fam in chain:
                answer = FAMILIES[fam][2](answer)
            text = FAMILIES[chain[0]][0].format(w=word)
            for fam in chain[1:]:
                text = text[:-1] + f", then {FAMILIES[fam][1]}."
            row = {"challenge": text, "answer": answer}
        rows.append({**row, "family": "+".join(chain)})
    return rows
