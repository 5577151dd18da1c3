"""The stand-in's puzzles: 360 generated Sunday-Puzzle-style rows in the schema of
nuprl/verbal-reasoning-challenge (one parquet file; `ID` int64 and `url`, `date`,
`challenge`, `answer` strings), standing in for the 582 real rows (see `mawt.bases.standin`
for the whole stand-in and what it keeps from the real setup).

Its own module because it is data, not model: hand-written families (answers with the
punctuation, accents and parts the scorer must handle) and word puzzles computed from
`mawt.data.vocabulary`'s word list, interleaved into distinct rows with well-formed urls and dates.
`mawt.bases.standin.build_assets` writes them to `assets/paper_standin/puzzles.parquet` and trains
the tokenizer on them; `mawt.bases.standin` re-exports these names.
"""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

from mawt.common import atomic
from mawt.data import puzzles, vocabulary

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
    """(challenge, answer) pairs computed from mawt.data.vocabulary's word list, in rounds."""
    words = sorted(set(vocabulary.WORDS))
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
