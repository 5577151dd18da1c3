"""Check the package's shape: stages import only earlier stages, and no module is long.

    python scripts/architecture.py          # prints each violation; exit 1 if any

`mawt/` is laid out by stage, in this order (each folder's __init__ says what it holds):

    common -> layer -> data -> bases -> training -> evaluation -> statistics -> studies -> analysis

A module may import its own stage and earlier ones, never a later one: every import
counts, also one inside a function (a lazy import is still a dependency). The CLI
(`mawt/__main__.py`) and the public API (`mawt/__init__.py`) sit above all stages.
No module has more than MAX_LINES lines, and no module imports itself through others (an import
cycle: also through a lazy import, which only hides it). tests/test_architecture.py runs this check.
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
    out = [f"import cycle: {' -> '.join(c)}" for c in cycles(package)]
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


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name imported from a module counts as that module)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for _, target in imports(path, package):
            while target not in modules and "." in target:  # `from mawt.x import f`: f is not a module
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(package: Path = PACKAGE) -> list[list[str]]:
    """Every import cycle, once: the strongly connected components of more than one module (Tarjan),
    each as a path that starts at its first module by name and returns to it."""
    edges = graph(package)
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_loop(sorted(component), edges))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def _loop(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start, inside = component[0], set(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(edges[path[-1]] & inside):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return component


def main() -> int:
    found = violations()
    for v in found:
        print(v)
    print(f"{len(found)} violation(s): stages {' -> '.join(STAGES)}, at most {MAX_LINES} lines a module, "
          f"no import cycles ({sum(v.startswith('import cycle') for v in found)} found)",
          file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
