"""Atomic outputs: write to a temporary name next to the target, then rename.

`os.replace` within one directory is atomic on POSIX, so a reader (a later
Snakemake rule, a resumed run, a person) sees either the old complete file or
the new complete file, never a half-written one. A crash before the rename
leaves only the temporary (`.<name>.tmp-<pid>`), which nothing reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it is fsynced and renamed to `path`.

    On an exception the temporary is removed and the target is left as it was.
    Works for files and for directories (e.g. `save_pretrained`): a directory
    target is replaced as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        if tmp.is_dir() and path.is_dir():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)  # a directory can only be replaced by rename when the target is gone
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def link_files(src, dst, names) -> None:
    """`names` (files, or folders: every file under them) of folder `src` put into `dst` as hard links
    (a copy where the file system cannot link), each replacing what was there, then touched: the
    workflow links a batch job's files into each run's own outputs (mawt/studies/batches.py), and a
    link's time must be after the batch's manifest, or Snakemake would think it out of date."""
    src, dst = Path(src), Path(dst)
    for name in names:
        top = src / name
        if not top.exists():
            raise FileNotFoundError(f"{top} is missing: its batch job did not make it; rerun that job "
                                    f"(snakemake --forcerun train eval_heldout)")
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove(target)
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
            os.utime(target)
