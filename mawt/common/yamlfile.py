"""The one YAML reader for everything the harness reads: setups, studies, run and eval configs.

PyYAML's `safe_load` alone merges duplicate keys silently (the last wins: a study with two
`v:` variants loses one without a word), expands aliases without limit (a 10^9-element
"billion laughs" in a description runs for minutes and gigabytes), and reports a file that
is not UTF-8 as a bare `UnicodeDecodeError`. `load(path, what)`:

* refuses a file over `MAX_BYTES` before reading it;
* decodes it as UTF-8 (a BOM is allowed), naming the file, the byte offset and the line of
  the first byte that is not;
* refuses a duplicate key in any mapping, naming both lines;
* composes the node graph first (aliases stay shared nodes, so this is cheap) and refuses a
  document whose alias expansion would exceed `MAX_NODES` nodes, before building anything;
* keeps every message to one line, quoting at most `SHOWN` characters of an offending value.

Errors are `ValueError`s (`YamlError`), one line, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_BYTES = 1_000_000  # a study, setup or run YAML is a few KB
MAX_NODES = 100_000  # scalars, sequences and mappings after alias expansion
SHOWN = 200  # characters of an offending value quoted in a message


class YamlError(ValueError):
    """A YAML file that cannot be read; its message is one line naming the file."""


def short(value, limit: int = SHOWN) -> str:
    """repr(value), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 15] + f"... ({len(text)} chars)"


def problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (line, column)."""
    mark = getattr(err, "problem_mark", None)
    what = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{what}{where}" + (f" ({context})" if context else "")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader itself refuses an unhashable key, with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(key)} (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_size(node, memo: dict) -> int:
    """Nodes in the document once every alias is expanded (shared nodes counted each time they are used)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once (SafeLoader builds it as a self-reference)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def loads(text: str, where: str):
    """Parse `text` (the contents of `where`) with the checks of the module docstring."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            size = _expanded_size(node, {})
            if size > MAX_NODES:
                raise YamlError(f"{where}: expands to {size:,} nodes through its aliases (& and *), more than the "
                                f"{MAX_NODES:,} allowed")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise YamlError(f"{where}: not valid YAML: {short(problem(err), 400)[1:-1]}") from None


def load(path: str | Path, what: str = "YAML"):
    """The document of the YAML file `path` (None for an empty file); `what` names it in messages
    ("run config", "study", ...)."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    if not path.is_file():
        raise YamlError(f"{where}: no such file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YamlError(f"{where}: {size:,} bytes, more than the {MAX_BYTES:,} a YAML file here may have")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise YamlError(f"{where}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}, line {line}); "
                        "save it as UTF-8") from None
    return loads(text, where)
