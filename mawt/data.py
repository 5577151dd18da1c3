"""Verbal-reasoning data: loading and the train / held-out split (prompts and tokens: mawt/prompts.py).

Sources (`DataConfig.source`):
  * `synthetic`: the puzzle generator of mawt/puzzles.py (the embedded default);
  * a local file: `.parquet`, `.jsonl` / `.json`, `.csv`;
  * a Hugging Face dataset id (`nuprl/verbal-reasoning-challenge`, split `test`),
    read through `datasets` (the local cache works offline).

Split protocol of the original study: shuffle with seed 42, the first 300 rows
train, the next 50 rows held out (sizes and seed configurable). Every row is
distinct: `split` first de-duplicates the source by normalised challenge (case,
whitespace and unicode punctuation ignored; the first occurrence is kept, the count
is reported once on stderr), so the two parts have exactly n_train and n_heldout
rows and the held-out challenges never reach training. The manifest written next to
the split files records both content-hash lists and the number of duplicates removed.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic, puzzles
from .puzzles import normalise_challenge  # noqa: F401  (the one definition of "the same challenge")


@dataclass
class DataConfig:
    # `synthetic`, a local .parquet/.jsonl/.json/.csv file, or a Hugging Face dataset id.
    source: str = "synthetic"
    split: str = "test"  # hub split (the challenge data ships a single `test` split)
    challenge_column: str = "challenge"  # the question's column in a file or hub dataset
    answer_column: str = "answer"  # the gold answer's column (";" separates accepted alternatives)
    seed: int = 42  # shuffle seed of the split protocol
    n_train: int = 300  # rows trained on (the study: 300)
    n_heldout: int = 50  # rows held out; more items: a smaller minimum detectable effect, more eval time
    # Synthetic generator settings (ignored for other sources).
    families: list[str] = field(default_factory=lambda: list(puzzles.FAMILIES))  # puzzle kinds (mawt/puzzles.py)
    chain: int = 1  # families chained per puzzle ("..., then ..."): 1 = one transform
    difficulty: int = 2  # word length range: longer strings, harder puzzles
    # `words` (readable; a few hundred per family and difficulty) or `letters`
    # (random letter strings, practically unlimited distinct puzzles).
    vocabulary: str = "words"
    # Distinct puzzles generated before the split; None = exactly n_train + n_heldout.
    synthetic_rows: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_train", "n_heldout", "synthetic_rows"):
            value = getattr(self, name)
            if value is None and name == "synthetic_rows":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"data.{name}={value!r} is invalid: must be an integer >= 1"
                                 + (" or null (= data.n_train + data.n_heldout)" if name == "synthetic_rows" else ""))
        if self.vocabulary not in puzzles.VOCABULARIES:
            raise ValueError(f"data.vocabulary={self.vocabulary!r} is invalid: "
                             f"allowed are {', '.join(puzzles.VOCABULARIES)}")
        if self.source != "synthetic":
            return
        need = self.n_train + self.n_heldout
        if self.synthetic_rows is not None and self.synthetic_rows < need:
            raise ValueError(
                f"data.synthetic_rows={self.synthetic_rows} is smaller than data.n_train + data.n_heldout = {need}; "
                "leave data.synthetic_rows unset (null) to generate exactly that many"
            )
        puzzles.check(self.families, self.chain, self.difficulty, self.vocabulary, prefix="data.")
        cap = puzzles.capacity(self.families, self.chain, self.difficulty, self.vocabulary)
        if self.n_synthetic > cap:
            wanted = "data.synthetic_rows" if self.synthetic_rows is not None else "data.n_train + data.n_heldout"
            raise ValueError(
                f"data.vocabulary={self.vocabulary!r} with data.families={list(self.families)}, "
                f"data.chain={self.chain}, data.difficulty={self.difficulty} makes only {cap} distinct puzzles, "
                f"fewer than {wanted} = {self.n_synthetic}; "
                + ("set data.vocabulary: letters (random letter strings), add data.families"
                   if self.vocabulary == "words" else "raise data.difficulty, add data.families")
                + " or ask for fewer rows"
            )

    @property
    def n_synthetic(self) -> int:
        """How many puzzles the synthetic source generates."""
        return self.n_train + self.n_heldout if self.synthetic_rows is None else self.synthetic_rows


def content_hash(row: dict) -> str:
    """Hash of a row's normalised challenge (`normalise_challenge`: case, whitespace and
    punctuation ignored), the key of de-duplication. The answer does not enter: the
    same question with another answer is still the same item."""
    return hashlib.sha256(normalise_challenge(row["challenge"]).encode()).hexdigest()[:16]


def _read_file(path: Path):
    import pandas as pd

    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True),
               ".json": pd.read_json}
    if path.suffix not in readers:
        raise ValueError(f"data.source={str(path)!r}: unsupported file type {path.suffix!r}; "
                         f"use one of {', '.join(readers)}")
    try:
        frame = readers[path.suffix](path)
    except ValueError as err:  # pandas: empty or malformed file
        raise ValueError(f"data.source={str(path)!r} could not be read: {err}") from None
    return frame.to_dict("records")


def _read_hub(cfg: DataConfig):
    import datasets

    try:
        ds = datasets.load_dataset(cfg.source, split=cfg.split)
    except Exception as err:  # offline, unknown id, missing split: all the same advice
        raise ValueError(
            f"data.source={cfg.source!r}: the Hugging Face dataset could not be loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Without network access, "
            "download it elsewhere and point data.source at a local .parquet/.jsonl/.csv file "
            f"with columns {cfg.challenge_column!r} and {cfg.answer_column!r}."
        ) from None
    return list(ds)


def load_rows(cfg: DataConfig) -> list[dict]:
    """All rows of the source as {"challenge", "answer"} dicts (other columns kept)."""
    if cfg.source == "synthetic":
        return puzzles.generate(cfg.n_synthetic, cfg.families, cfg.chain, cfg.difficulty, seed=cfg.seed,
                                vocabulary=cfg.vocabulary)
    path = Path(cfg.source)
    looks_local = path.suffix != "" or path.exists() or cfg.source.startswith((".", "/"))
    if looks_local and not path.exists():
        raise ValueError(f"data.source={cfg.source!r}: no such file")
    raw = _read_file(path) if looks_local else _read_hub(cfg)
    if not raw:
        raise ValueError(f"data.source={cfg.source!r} has no rows")
    missing = [c for c in (cfg.challenge_column, cfg.answer_column) if c not in raw[0]]
    if missing:
        raise ValueError(
            f"data.source={cfg.source!r} lacks column(s) {missing}; it has {sorted(raw[0])}. "
            "Set data.challenge_column / data.answer_column to the right names."
        )
    rows = []
    for i, r in enumerate(raw):
        challenge, answer = r[cfg.challenge_column], r[cfg.answer_column]
        if not isinstance(answer, str) or not answer.strip() or not isinstance(challenge, str) or not challenge.strip():
            raise ValueError(f"data.source={cfg.source!r}: row {i} has an empty challenge or answer")
        rows.append({**r, "challenge": challenge, "answer": answer})
    return rows


def deduplicate(rows: list[dict]) -> tuple[list[dict], int]:
    """The rows with distinct normalised challenges (first occurrence kept, order kept)
    and the number of rows removed."""
    seen: set[str] = set()
    kept = []
    for r in rows:
        key = normalise_challenge(r["challenge"])
        if key not in seen:
            seen.add(key)
            kept.append(r)
    return kept, len(rows) - len(kept)


class Split(tuple):
    """`(train, heldout)`: unpacks like a pair; `.duplicates_removed` counts the source
    rows dropped as repeats before the split (pass it on to `write_split`)."""

    duplicates_removed: int

    def __new__(cls, train: list[dict], heldout: list[dict], duplicates_removed: int = 0):
        self = super().__new__(cls, (train, heldout))
        self.duplicates_removed = duplicates_removed
        return self

    @property
    def train(self) -> list[dict]:
        return self[0]

    @property
    def heldout(self) -> list[dict]:
        return self[1]


def split(rows: list[dict], cfg: DataConfig) -> Split:
    """De-duplicate, shuffle with `cfg.seed`; first n_train rows train, next n_heldout held out.

    Exactly n_train and n_heldout rows, all with distinct normalised challenges, so
    no held-out challenge reaches training. Duplicates in the source are reported
    once on stderr; the returned pair carries their count as `.duplicates_removed`.
    """
    rows, removed = deduplicate(rows)
    if removed:
        print(f"warning: data.source={cfg.source!r} has {removed} duplicate challenges "
              "(case, whitespace and punctuation ignored); kept the first of each", file=sys.stderr)
    need = cfg.n_train + cfg.n_heldout
    if len(rows) < need:
        raise ValueError(
            f"data.source={cfg.source!r} has {len(rows)} distinct rows"
            + (f" ({removed} duplicates removed)" if removed else "")
            + f", fewer than n_train + n_heldout = {need}; lower data.n_train / data.n_heldout"
        )
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    train = [rows[i] for i in order[: cfg.n_train]]
    heldout = [rows[i] for i in order[cfg.n_train : need]]
    return Split(train, heldout, removed)


def write_split(train: list[dict], heldout: list[dict], cfg: DataConfig, out_dir: Path,
                duplicates_removed: int | None = None) -> None:
    """train.jsonl, heldout.jsonl and manifest.json (content hashes of both parts and
    `duplicates_removed`, the `.duplicates_removed` of `split`'s result; null if not given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("heldout", heldout)):
        atomic.write_text(out_dir / f"{name}.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    manifest = {
        "data": cfg.__dict__,
        "n_train": len(train),
        "n_heldout": len(heldout),
        "duplicates_removed": duplicates_removed,
        "train_hashes": sorted(content_hash(r) for r in train),
        "heldout_hashes": sorted(content_hash(r) for r in heldout),
    }
    atomic.write_json(out_dir / "manifest.json", manifest)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
