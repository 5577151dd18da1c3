"""Where the fine-tuning rows come from: `DataConfig` and the sources it names.

Sources (`DataConfig.source`):
  * `synthetic`: the puzzle generator of mawt/data/puzzles.py (the embedded default);
  * a local file: `.parquet`, `.jsonl` / `.json`, `.csv`;
  * a Hugging Face dataset id (`nuprl/verbal-reasoning-challenge`, split `test`),
    read through `datasets` at the commit `DataConfig.revision` pins (required for a
    hub id: the rows change between revisions). The local cache works offline; there
    `datasets` reads the newest cached copy whatever its revision, so `load_rows`
    refuses a cached copy of another commit than the pinned one.

The train / held-out split of the rows: mawt/data/split.py; prompts and tokens: mawt/data/prompts.py.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

from mawt.common.ranges import check_ranges
from mawt.common.yamlfile import short
from mawt.data import puzzles
from mawt.data.vocabulary import VOCABULARIES


@dataclass
class DataConfig:
    # `synthetic`, a local .parquet/.jsonl/.json/.csv file, or a Hugging Face dataset id.
    source: str = "synthetic"
    split: str = "test"  # hub split (the challenge data ships a single `test` split)
    challenge_column: str = "challenge"  # the question's column in a file or hub dataset
    answer_column: str = "answer"  # the gold answer's column (";" separates accepted alternatives)
    seed: int = 42  # shuffle seed of the split protocol
    # Hub commit sha (or tag) of a hub dataset, required: its rows change between revisions (null: files, synthetic)
    revision: str | None = None
    n_train: int = 300  # rows trained on (the study: 300)
    # Rows held out; more items: a smaller minimum detectable effect, more eval time.
    # null: every distinct row not trained on (a file or hub source only).
    n_heldout: int | None = 50
    # Synthetic generator settings (ignored for other sources).
    families: list[str] = field(default_factory=lambda: list(puzzles.FAMILIES))  # puzzle kinds (mawt/data/puzzles.py)
    chain: int = 1  # families chained per puzzle ("..., then ..."): 1 = one transform
    difficulty: int = 2  # word length range: longer strings, harder puzzles
    # `words` (readable; a few hundred per family and difficulty) or `letters`
    # (random letter strings, practically unlimited distinct puzzles).
    vocabulary: str = "words"
    # Distinct puzzles generated before the split; None = exactly n_train + n_heldout.
    synthetic_rows: int | None = None

    # The allowed range of every number above, checked by mawt/common/ranges.py (a class constant, not a field).
    RANGES = {"seed": ">= 0", "n_train": ">= 1", "n_heldout": ">= 1; = every distinct row not in training",
              "chain": ">= 1", "difficulty": f"{min(puzzles.DIFFICULTY)}..{max(puzzles.DIFFICULTY)}",
              "synthetic_rows": ">= 1; = data.n_train + data.n_heldout"}

    def __post_init__(self) -> None:
        check_ranges(self, "data.")
        if self.revision is not None and (not isinstance(self.revision, str) or not self.revision.strip()
                                          or self.revision != self.revision.strip()):
            raise ValueError(f"data.revision={self.revision!r} is invalid: must be a Hub commit sha or tag")
        if self.vocabulary not in VOCABULARIES:
            raise ValueError(f"data.vocabulary={self.vocabulary!r} is invalid: "
                             f"allowed are {', '.join(VOCABULARIES)}")
        if self.source != "synthetic":
            if self.revision is None and is_hub_source(self.source):
                raise ValueError(
                    f"data.revision is required for the Hugging Face dataset data.source={self.source!r}: its rows "
                    "change between revisions. Set it to a commit sha (`python -m mawt fetch --setup NAME` prints "
                    "the commit it downloads)"
                )
            return
        if self.n_heldout is None:
            raise ValueError(
                "data.n_heldout=null (every row not trained on) needs a source of fixed size; synthetic data "
                "has none: set data.n_heldout to a number"
            )
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


COMMIT_SHA = re.compile(r"[0-9a-f]{40}")  # a full Hub (git) commit id


def is_hub_source(source: str) -> bool:
    """Whether `data.source` names a Hugging Face dataset id (not `synthetic`, not a local file or folder)."""
    if source == "synthetic":
        return False
    path = Path(source)
    return not (path.suffix != "" or path.exists() or source.startswith((".", "/")))


def hub_load_kwargs(cfg: DataConfig) -> dict:
    """The keyword arguments of `datasets.load_dataset` for a hub source: id, split, pinned revision."""
    return {"path": cfg.source, "split": cfg.split, "revision": cfg.revision}


def pinned_commit(source: str, revision: str | None) -> str | None:
    """The commit `revision` names, as far as known here without network: a full sha names
    itself; a branch or tag is resolved through the local Hugging Face hub cache (its refs,
    written when the dataset was downloaded); None if unknown."""
    if revision is None:
        return None
    if COMMIT_SHA.fullmatch(revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, "README.md", revision=revision, repo_type="dataset")
    return Path(found).parent.name if isinstance(found, str) else None


def loaded_commit(ds) -> str | None:
    """The hub commit a loaded `datasets.Dataset` was built from: `datasets` caches a hub
    dataset under <cache>/<owner>___<name>/<config>/<version>/<commit sha>/; None if unknown."""
    for f in getattr(ds, "cache_files", None) or []:
        name = Path(f["filename"]).parent.name
        if COMMIT_SHA.fullmatch(name):
            return name
    return None


def cached_builds(source: str, commit: str) -> list[Path]:
    """The `datasets` cache folders holding hub dataset `source` at `commit` (empty: not cached)."""
    import datasets
    from datasets.naming import camelcase_to_snakecase

    *owner, name = source.split("/")
    folder = "___".join([*owner, camelcase_to_snakecase(name)])
    return sorted(p for p in Path(datasets.config.HF_DATASETS_CACHE, folder).glob(f"*/*/{commit}") if p.is_dir())


def _read_file(path: Path):
    import pandas as pd

    # text stays text: no NA parsing ("NA", "null", "nan", "None" are answers) and no dtype inference
    # (an all-numeric answer column stays its digits); JSON and Parquet keep the types the file states
    readers = {".parquet": pd.read_parquet, ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
               ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
               ".json": lambda p: pd.read_json(p, dtype=False)}
    if path.suffix not in readers:
        raise ValueError(f"data.source={str(path)!r}: unsupported file type {path.suffix!r}; "
                         f"use one of {', '.join(readers)}")
    try:
        frame = readers[path.suffix](path)
    except ValueError as err:  # pandas: empty or malformed file
        raise ValueError(f"data.source={str(path)!r} could not be read: {err}") from None
    return frame.to_dict("records")


def load_hub(cfg: DataConfig) -> tuple[list[dict], str | None]:
    """The rows of hub dataset `cfg.source` (split `cfg.split`) at `cfg.revision`, and the
    commit they were read from (None if `datasets` does not say). A cached copy of another
    commit than the pinned one (offline, `datasets` reads the newest cached copy whatever its
    revision) is refused."""
    import datasets

    try:
        ds = datasets.load_dataset(**hub_load_kwargs(cfg))
    except Exception as err:  # offline, unknown id or revision, missing split: all the same advice
        raise ValueError(
            f"data.source={cfg.source!r} at data.revision={cfg.revision!r}: the Hugging Face dataset could not be "
            f"loaded ({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}). Without network access, "
            "run `python -m mawt fetch` where there is network (same HF_HOME), or download it elsewhere and point "
            f"data.source at a local .parquet/.jsonl/.csv file with columns {cfg.challenge_column!r} and "
            f"{cfg.answer_column!r}."
        ) from err  # the cause: what `python -m mawt fetch` reports
    got, want = loaded_commit(ds), pinned_commit(cfg.source, cfg.revision)
    if got and want and got != want:
        raise ValueError(
            f"data.source={cfg.source!r}: data.revision={cfg.revision!r}"
            + ("" if want == cfg.revision else f" (commit {want})")
            + f" is pinned, but the Hugging Face cache gave commit {got} (offline, `datasets` reads the newest "
            "cached copy whatever its revision). Run `python -m mawt fetch` where there is network (same "
            "HF_HOME) to cache the pinned commit"
        )
    return list(ds), got or want


def load_rows(cfg: DataConfig) -> list[dict]:
    """All rows of the source as {"challenge", "answer"} dicts (other columns kept)."""
    if cfg.source == "synthetic":
        return puzzles.generate(cfg.n_synthetic, cfg.families, cfg.chain, cfg.difficulty, seed=cfg.seed,
                                vocabulary=cfg.vocabulary)
    path = Path(cfg.source)
    looks_local = not is_hub_source(cfg.source)
    if looks_local and not path.exists():
        raise ValueError(f"data.source={cfg.source!r}: no such file")
    raw = _read_file(path) if looks_local else load_hub(cfg)[0]
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
        challenge, answer = _text(r[cfg.challenge_column]), _text(r[cfg.answer_column])
        if not isinstance(answer, str) or not answer.strip() or not isinstance(challenge, str) or not challenge.strip():
            raise ValueError(f"data.source={cfg.source!r}: source row {i} (counting from 0, in file order) has an "
                             f"empty or missing challenge or answer ({cfg.challenge_column}={short(r[cfg.challenge_column])}, "
                             f"{cfg.answer_column}={short(r[cfg.answer_column])})")
        rows.append({**r, "challenge": challenge, "answer": answer})
    return rows


def _text(value):
    """A cell as text: strings as they are, integers (a typed JSON or Parquet column) as their digits;
    anything else (a real null, a float) unchanged, so that it is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return value
