"""Check the package's shape: stages import only earlier stages, and no module is long.

    python scripts/architecture.py          # prints each violation; exit 1 if any

`mawt/` is laid out by stage, in this order (each folder's __init__ says what it holds):

    common -> layer -> data -> bases -> training -> evaluation -> statistics -> studies -> analysis

A module may import its own stage and earlier ones, never a later one: every import
counts, also one inside a function (a lazy import is still a dependency). The CLI
(`mawt/__main__.py`) and the public API (`mawt/__init__.py`) sit above all stages.
No module has more than MAX_LINES lines. tests/test_architecture.py runs this check.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

STAGES = ("common", "layer", "data", "bases", "training", "evaluation", "statistics", "studies", "analysis")
MAX_LINES = 300
TOP = ("__init__.py", "__main__.py")  # above all stages: the public API and the CLI
STAGES_AS_MODULES = {f"mawt.{s}" for s in STAGES}
PACKAGE = Path(__file__).resolve().parents[1] / "mawt"


def stage_of(module: str) -> str | None:
    """'mawt.training.grpo' -> 'training'; the package root and modules outside mawt -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "mawt" and len(parts) > 1 and parts[1] in STAGES else None


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, package_dir: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every mawt module `path` imports, with the line: absolute and relative, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path, package_dir)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mawt"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mawt":
                continue
            if target == "mawt" or target in STAGES_AS_MODULES:  # from mawt.stage import module
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            out.append(f"{rel}: {lines} lines (at most {MAX_LINES})")
        here = stage_of(module_name(path, package))
        if here is None:
            if not (path.parent == package and path.name in TOP):
                out.append(f"{rel}: not in a stage folder ({', '.join(STAGES)})")
            continue
        for line, target in imports(path, package):
            there = stage_of(target)
            if there is not None and STAGES.index(there) > STAGES.index(here):
                out.append(f"{rel}:{line}: stage '{here}' imports {target} of the later stage '{there}'")
    return out


def main() -> int:
    found = violations()
    for v in found:
        print(v)
    print(f"{len(found)} violation(s): stages {' -> '.join(STAGES)}, at most {MAX_LINES} lines a module",
          file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
