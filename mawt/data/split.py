"""The train / held-out split of the source rows, written with a manifest, and read back.

Split protocol of the original study: shuffle with seed 42, the first 300 rows
train, the next 50 rows held out (sizes and seed configurable; `n_heldout: null`
holds out every row not trained on). Every row is distinct: `split` first
de-duplicates the source by normalised challenge (case, whitespace and unicode
punctuation ignored; the first occurrence is kept, the count is reported once on
stderr), so the two parts have exactly n_train and n_heldout rows (null: all the
remaining distinct rows) and the held-out challenges never reach training. The
manifest written next to the split files records both content-hash lists, the
part sizes, the number of duplicates removed and, for a hub source, the revision
and the commit read. The rows themselves: mawt/data/sources.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from mawt.common import atomic
from mawt.data.puzzles import normalise_challenge
from mawt.data.sources import DataConfig, is_hub_source, load_rows, pinned_commit


def content_hash(row: dict) -> str:
    """Hash of a row's normalised challenge (`normalise_challenge`: case, whitespace and
    punctuation ignored), the key of de-duplication. The answer does not enter: the
    same question with another answer is still the same item."""
    return hashlib.sha256(normalise_challenge(row["challenge"]).encode()).hexdigest()[:16]


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
    """De-duplicate, shuffle with `cfg.seed`; first n_train rows train, next n_heldout held out
    (n_heldout None: all the remaining rows, at least one).

    Exactly n_train and n_heldout rows, all with distinct normalised challenges, so
    no held-out challenge reaches training. Duplicates in the source are reported
    once on stderr; the returned pair carries their count as `.duplicates_removed`.
    """
    rows, removed = deduplicate(rows)
    if removed:
        print(f"warning: data.source={cfg.source!r} has {removed} duplicate challenges "
              "(case, whitespace and punctuation ignored); kept the first of each", file=sys.stderr)
    rest = cfg.n_heldout is None  # hold out every row not trained on
    need = cfg.n_train + (1 if rest else cfg.n_heldout)
    if len(rows) < need:
        raise ValueError(
            f"data.source={cfg.source!r} has {len(rows)} distinct rows"
            + (f" ({removed} duplicates removed)" if removed else "")
            + (f", not more than data.n_train = {cfg.n_train}: nothing is left to hold out (data.n_heldout: null); "
               "lower data.n_train" if rest else
               f", fewer than n_train + n_heldout = {need}; lower data.n_train / data.n_heldout")
        )
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    train = [rows[i] for i in order[: cfg.n_train]]
    heldout = [rows[i] for i in order[cfg.n_train : None if rest else need]]
    return Split(train, heldout, removed)


def write_split(train: list[dict], heldout: list[dict], cfg: DataConfig, out_dir: Path,
                duplicates_removed: int | None = None) -> None:
    """train.jsonl, heldout.jsonl and manifest.json (content hashes of both parts, the part
    sizes actually written, `duplicates_removed`, the `.duplicates_removed` of `split`'s
    result, null if not given; for a hub source `revision`, the pinned data.revision, and
    `commit`, the commit it names in the local cache, null if unknown; both null otherwise)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("heldout", heldout)):
        atomic.write_text(out_dir / f"{name}.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    hub = is_hub_source(cfg.source)
    manifest = {
        "data": cfg.__dict__,
        "n_train": len(train),
        "n_heldout": len(heldout),  # the count held out, also when data.n_heldout is null
        "duplicates_removed": duplicates_removed,
        "revision": cfg.revision if hub else None,
        "commit": pinned_commit(cfg.source, cfg.revision) if hub else None,
        "train_hashes": sorted(content_hash(r) for r in train),
        "heldout_hashes": sorted(content_hash(r) for r in heldout),
    }
    atomic.write_json(out_dir / "manifest.json", manifest)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def prepare_data(cfg: DataConfig, out_dir: Path) -> tuple[list[dict], list[dict]]:
    """Load and split the data (study protocol); write train/heldout JSONL + manifest. (The data stage
    alone: `prepare-data` jobs import neither torch nor transformers.)"""
    parts = split(load_rows(cfg), cfg)
    write_split(*parts, cfg, Path(out_dir), duplicates_removed=parts.duplicates_removed)
    return parts.train, parts.heldout
