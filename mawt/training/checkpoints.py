"""Trainer checkpoints and the metrics log across interruptions: the completion marker,
the resume point, and cutting the log back to it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mawt.common import atomic
from mawt.common.layout import METRICS

COMPLETE = "COMPLETE"  # marker written into a checkpoint folder once everything in it is saved


def complete_checkpoints(folder: Path) -> list[Path]:
    """`checkpoint-N` folders that were saved to the end (marker present), oldest first."""
    if not Path(folder).is_dir():
        return []
    found = [p for p in Path(folder).iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and p.name.split("-")[-1].isdigit() and (p / COMPLETE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from (and a torn last line)."""
    if path.exists():
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError):
                break  # the line being written when the run was killed, and nothing after it
        atomic.write_text(path, "".join(line + "\n" for line in keep))


def resume_point(checkpoints: Path) -> str | None:
    """The last complete checkpoint; folders a kill left half-written are removed."""
    done = complete_checkpoints(checkpoints)
    if checkpoints.is_dir():
        for p in checkpoints.iterdir():
            if p.is_dir() and p.name.startswith("checkpoint-") and not (p / COMPLETE).is_file():
                shutil.rmtree(p)
    return str(done[-1]) if done else None


def mean_logged_loss(path: Path) -> float | None:
    """Mean training loss over every logged step of the whole run (resumed or not)."""
    losses = [line["loss"] for line in map(json.loads, path.read_text().splitlines()) if "loss" in line]
    return sum(losses) / len(losses) if losses else None


def begin_metrics(out: Path) -> Path:
    """The log the run appends to while training (`metrics.jsonl.partial`); it becomes
    metrics.jsonl only when the run ends. A finished (or nearly finished) run's log becomes
    the partial again, to be cut back to the checkpoint the run resumes from, or dropped."""
    out = Path(out)
    partial = out / f"{METRICS}.partial"
    out.mkdir(parents=True, exist_ok=True)
    if (out / METRICS).exists():
        if partial.exists():
            (out / METRICS).unlink()
        else:
            os.replace(out / METRICS, partial)
    return partial


def finish_metrics(out: Path) -> None:
    """The partial log becomes metrics.jsonl (a run of 0 logged steps still gets its file)."""
    partial = Path(out) / f"{METRICS}.partial"
    partial.touch()
    os.replace(partial, Path(out) / METRICS)
