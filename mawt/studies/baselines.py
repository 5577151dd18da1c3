"""The baselines every study gets (MAWT_SPEC section 6).

  * `plain`: D=1 + fixed, fine-tuning the same trainable layers without MAWT
    depth. A variant that changes what plain fine-tuning would see (`trainable`,
    `data`, `mawt.layers`, a learning rate, ...) gets its own plain counterpart,
    named after what differs (e.g. `plain_trainable-last-2`): the "plain-ized"
    config of every variant (MAWT reduced to D=1 fixed, GRPO-only knobs dropped)
    is resolved, and variants whose plain-ized configs are equal share one.
  * `gated`: the cheap, parameter-comparable alternative: a per-head sigmoid
    output gate on the same trainable layers (Qiu et al. 2025; D=1, fixed,
    `mawt.gate: head`), with the study's defaults.
"""

from __future__ import annotations

import copy

PLAIN = {"mawt": {"depth": 1, "mixer": "fixed"}}
GATED = {"mawt": {"depth": 1, "mixer": "fixed", "gate": "head"}}
BASELINES = ("plain", "gated")  # variant names (and prefixes) the workflow adds
# MAWT keys that make no sense at D=1 fixed, and train keys only the GRPO objective reads:
# a plain counterpart drops them, so e.g. every group size shares one plain run.
_MAWT_ONLY = ("depth", "mixer", "tau", "fixed_index", "selector_width", "selector_input", "gate",
              "query_block", "path", "plant")
_GRPO_ONLY = ("group_size", "lambda_pg", "beta", "eta", "reuse_prefix", "credit", "advantage",
              "reward_control")


def plainized(over: dict) -> dict:
    """The plain fine-tuning counterpart of a variant's overrides: MAWT at D=1 fixed (same layers)."""
    out = copy.deepcopy(over)
    mawt = {k: v for k, v in (out.get("mawt") or {}).items() if k not in _MAWT_ONLY}
    out["mawt"] = {**mawt, **PLAIN["mawt"]}
    train = {k: v for k, v in (out.get("train") or {}).items() if k not in _GRPO_ONLY}
    if train:
        out["train"] = train
    else:
        out.pop("train", None)
    return out


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def baseline_name(config: dict, reference: dict) -> str:
    """`plain_` + what differs from the study's own plain run, e.g. plain_trainable-last-2."""
    mine, ref = _flat(config), _flat(reference)
    parts = []
    for key in sorted(set(mine) | set(ref)):
        if key == "train.seed" or mine.get(key) == ref.get(key):
            continue
        value = mine.get(key)
        text = "+".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key.split('.')[-1]}-{text}")
    name = "plain_" + "_".join(parts)
    return "".join(c if c.isalnum() or c in "_.=+-" else "-" for c in name).replace("+", "-")
