"""The benchmarks' Markdown output, shared by every script under benchmarks/.

A result file (`results/bench/<name>.md`) is a title line, one line saying how,
where and at which commit it was measured,

    Measured by `python benchmarks/attention.py` on <CPU model>, 2 threads (torch 2.13.0,
    CPU capability AVX512), commit 1a2b3c4+dirty, 2025-01-31 12:00 UTC

and then the table(s) and target checks exactly as the script printed them. The
docs/ pages show the last measured copy of each; `tests/test_benchmarks.py` checks
that its copies have the columns the scripts write (each script's `COLUMNS`).
"""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mawt.common.atomic import write_text  # noqa: E402
from mawt.common.environment import environment  # noqa: E402

ALIGN = {"l": "---", "r": "---:"}


def table(columns: list[str], align: str, rows: list[list]) -> str:
    """A Markdown table: `columns` as the header, `align` one letter per column (l / r), cells as given."""
    if len(align) != len(columns) or any(len(r) != len(columns) for r in rows):
        raise ValueError(f"table of {len(columns)} columns: align {align!r}, rows of {sorted({len(r) for r in rows})}")
    def line(cells: list) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    return "\n".join([line(columns), "|" + "|".join(ALIGN[a] for a in align) + "|", *map(line, rows)])


def cells(line: str) -> list[str]:
    """The cells of one Markdown table line ("| a | b |" -> ["a", "b"])."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def command(script: str | Path, argv: list[str] | None = None) -> str:
    """The command that ran `script` with `argv` (default: this process's), as one would type it
    in the repository root: "python benchmarks/attention.py --lengths 256"."""
    script = Path(script).resolve()
    try:
        shown = script.relative_to(ROOT).as_posix()
    except ValueError:
        shown = str(script)
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", shown, *map(str, args)])


def measured_line(cmd: str, env: dict | None = None, when: _dt.datetime | None = None) -> str:
    """"Measured by `cmd` on <machine> (torch <v>, CPU capability <c>), commit <sha>[+dirty], <UTC date>".

    `env`: a `mawt.common.environment.environment()` dict (default: this process's; e.g. a run's
    run.json "environment" for the machine its jobs saw)."""
    env = environment() if env is None else env
    machine = env.get("cpu_model") or env.get("machine") or "unknown machine"
    if env.get("cpu_threads"):
        machine += f", {env['cpu_threads']} threads"
    if env.get("gpu"):
        machine += f", GPU {env['gpu']}"
    if env.get("kernel_env"):
        machine += ", " + " ".join(f"{k}={v}" for k, v in sorted(env["kernel_env"].items()))
    sha = env.get("git_commit")
    commit = (sha[:7] if sha else "unknown") + ("+dirty" if env.get("git_dirty") else "")
    when = (when or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    torch_version = (env.get("versions") or {}).get("torch") or "?"
    return (f"Measured by `{cmd}` on {machine} (torch {torch_version}, CPU capability "
            f"{env.get('cpu_capability') or '?'}), commit {commit}, {when:%Y-%m-%d %H:%M} UTC")


def document(title: str, body: str, cmd: str, env: dict | None = None, when: _dt.datetime | None = None) -> str:
    """The file's text: "# title", the measured-by line, then `body` (tables, target checks) as printed."""
    return f"# {title}\n\n{measured_line(cmd, env, when)}\n\n{body.strip()}\n"


def write(path: str | Path, title: str, body: str, cmd: str, env: dict | None = None) -> Path:
    """Write `document(...)` to `path` atomically (`mawt.common.atomic.write_text`)."""
    return write_text(Path(path), document(title, body, cmd, env))


def shown(path: str | Path) -> str:
    """A path as printed: relative to the checkout when it is inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def md_path(json_path: str | Path) -> Path:
    """The Markdown file next to a benchmark's JSON: same stem, `.md`."""
    return Path(json_path).with_suffix(".md")


def publish(json_out: str | Path, title: str, text: str, script: str | Path) -> Path:
    """Print `text`, write it as the Markdown file next to the JSON `json_out`, say both paths."""
    md = write(md_path(json_out), title, text, command(script))
    print("\n" + text)
    print(f"\nwrote {json_out} and {md}")
    return md
