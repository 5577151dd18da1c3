"""The one checker of the numbers in the config dataclasses (MAWTConfig, DataConfig, TrainConfig, EvalConfig).

Each class states the allowed range of every number field in one table next to its fields,
`RANGES = {field: range}`, and calls `check_ranges(self, prefix)` first in `__post_init__`.
A range is written as the message shows it:

    ">= 1"             a lower bound (">" excludes it)
    "(0, 1]"           an interval: brackets include the end, parentheses exclude it
    "0..depth-1"       integers, both ends included; an end may be an earlier field, +/- a constant
    ">= 0; 0 = none"   after ";": a note, shown in parentheses

The field's annotation gives the kind: `int` fields take integers (not bools), `float` fields take
finite numbers (no nan, no inf), and `... | None` fields also take None.
"""

from __future__ import annotations

import dataclasses
import math
import re

_BOUND = re.compile(r"(-?\d+)|([a-z_]+)\s*(?:([+-])\s*(\d+))?")


def check_ranges(config, prefix: str) -> None:
    """Refuse the first field of `config` (in `RANGES` order) outside its range with one line,
    `{prefix}{field}={value!r} is invalid: must be <kind> <range>`, e.g.
    `train.beta=-0.1 is invalid: must be a finite number >= 0`."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(config)}
    for name, spec in type(config).RANGES.items():
        value = getattr(config, name)
        nullable = "None" in kinds[name]
        if value is None and nullable:
            continue
        integer = "float" not in kinds[name]
        rule, _, note = (part.strip() for part in spec.partition(";"))
        inside, shown = _within(config, value, rule)
        if integer:
            typed, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        else:
            typed = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        if not (typed and inside):
            allowed = f"{kind} {shown}" + (" or null" if nullable else "") + (f" ({note})" if note else "")
            raise ValueError(f"{prefix}{name}={value!r} is invalid: must be {allowed}")


def _within(config, value, rule: str) -> tuple[bool, str]:
    """Whether `value` lies in `rule` (False for a value that is no number), and the rule as shown."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if m := re.fullmatch(r"(>=|>)\s*(-?[\d.]+)", rule):
        low = float(m[2])
        return number and (value >= low if m[1] == ">=" else value > low), rule
    if m := re.fullmatch(r"([\[(])\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*([\])])", rule):
        low, high = float(m[2]), float(m[3])
        return number and (value >= low if m[1] == "[" else value > low) and (
            value <= high if m[4] == "]" else value < high), f"in {rule}"
    if m := re.fullmatch(r"(.+?)\.\.(.+)", rule):
        (low, low_from), (high, high_from) = _bound(config, m[1]), _bound(config, m[2])
        named = ", ".join(f"{n}={getattr(config, n)}" for n in (low_from, high_from) if n)
        return number and low <= value <= high, f"in {low}..{high}" + (f" ({named})" if named else "")
    raise ValueError(f"{type(config).__name__}.RANGES: cannot read the range {rule!r}")


def _bound(config, text: str) -> tuple[int, str | None]:
    """An end of an integer range: a constant, or a field (checked before: earlier in RANGES) +/- a constant."""
    m = _BOUND.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{type(config).__name__}.RANGES: cannot read the bound {text!r}")
    if m[1] is not None:
        return int(m[1]), None
    offset = int(m[4] or 0) * (-1 if m[3] == "-" else 1)
    return getattr(config, m[2]) + offset, m[2]


def refuse_unknown(data: dict, cls, where: str) -> None:
    """The one unknown-key check of every config mapping: one line, `{where}: unknown key(s) [...];
    allowed are [...]` (the YAML keys, which are the dataclass's field names)."""
    allowed = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed are {allowed}")

