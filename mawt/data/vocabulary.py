"""What the synthetic puzzles are made of: the word list, or random letter strings.

`words` (WORDS: readable, a few hundred per difficulty) or `letters` (random lowercase
strings: practically unlimited); a `Vocabulary` is one of them at one length range and
draws its strings (mawt/data/puzzles.py makes the puzzles).
"""

from __future__ import annotations

import random
import string

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

# What the puzzles are made of: `words` (the WORDS list: readable, a few hundred per
# difficulty) or `letters` (random lowercase strings: practically unlimited).
VOCABULARIES = ("words", "letters")


class Vocabulary:
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
