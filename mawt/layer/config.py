"""`MAWTConfig`: every knob of the MAWT layer, with defaults and the reason for each.

The same names are used from the ablation YAML to the code to the report
(`depth`, `mixer`, `layers`, ...). `__post_init__` rejects bad values with a
`ValueError` that names the parameter and what is allowed, before any model is
touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mawt.common.ranges import check_ranges, refuse_unknown

MIXERS = ("softmax", "grpo", "gumbel", "mean", "fixed")
PATHS = ("auto", "fused", "materialized", "routed")
SELECTOR_INPUTS = ("stats", "hidden", "both")
GATES = ("none", "head")
PLANTS = ("none", "silent")  # a planted control (docs/grpo.md): what `plant` may be
# Mixers whose weights come from a learned selector MLP (the others are constant).
LEARNED_MIXERS = ("softmax", "grpo", "gumbel")


@dataclass
class MAWTConfig:
    # Number of attention-weight maps ("depths") per head. D=1 with the
    # `fixed` mixer is the plain fine-tuning baseline.
    depth: int = 4
    # How the D depths are combined per token; see mawt/layer/mixers.py.
    mixer: str = "grpo"
    # Decoder layers whose self-attention is replaced. Negative indices count
    # from the end; [-1] (the last layer) is the original study's setup.
    layers: list[int] = field(default_factory=lambda: [-1])
    # A_d = B_d = I + N(0, init_noise^2). 0 reproduces the base model exactly;
    # a little noise breaks the symmetry between depths so they can specialise.
    init_noise: float = 1e-2
    # `fused` never holds the 5D tensor (memory linear in length for outputs);
    # `materialized` builds it (reference path, inspection); `routed` computes only
    # the chosen depth per token (one attention, not D; needs a hard choice known
    # before attention: selector_input `hidden` with grpo, or gumbel at evaluation).
    # `auto`: routed where it applies, else fused. All agree to 1e-5.
    path: str = "auto"
    # Temperature of the `softmax` and `gumbel` mixers. Lower = harder choices.
    tau: float = 1.0
    # Depth used by the `fixed` mixer.
    fixed_index: int = 0
    # Width of the selector MLP's hidden layer (small: it reads 2*D numbers).
    selector_width: int = 32
    # What the selector observes: `stats` (entropy and peak of each depth's attention
    # row: it must compute all D maps first), `hidden` (the query's hidden state only,
    # hidden_size*width parameters: the choice is known before attention, so a hard
    # choice costs one attention, see `path`), or `both`.
    selector_input: str = "stats"
    # Query rows per block when the fused path computes selector statistics:
    # bounds the temporary score block to (B, H*D, query_block, Lk).
    query_block: int = 128
    # Per-head output gate (Qiu et al. 2025, "Gated Attention for LLMs", headwise
    # G1 position): y = (g * O) W_O with g = 2 * sigmoid(x W_g + b_g), one scalar
    # per head from the query's hidden state; W_g = b_g = 0 at init, so g = 1 and
    # the pretrained model is kept. `head` with depth 1 is the cheap,
    # parameter-comparable baseline `gated` that every study gets.
    gate: str = "none"
    # A planted control for the depth policy (docs/grpo.md): `silent` zeroes the last depth's output
    # transform B_{D-1} at init (that depth's attention adds nothing), and the depth transforms stay
    # fixed (not MAWT parameters: with `trainable: mawt` only the selector trains). `none`: no plant.
    plant: str = "none"

    # The allowed range of every number above, checked by mawt/common/ranges.py (a class constant, not a field).
    RANGES = {"depth": ">= 1", "init_noise": ">= 0", "tau": "> 0", "fixed_index": "0..depth-1",
              "selector_width": ">= 1", "query_block": ">= 1"}

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            value = getattr(self, name)
            return ValueError(f"mawt.{name}={value!r} is invalid: {allowed}")  # the YAML key (docs/naming.md)

        check_ranges(self, "mawt.")
        if self.mixer not in MIXERS:
            raise bad("mixer", f"allowed values are {', '.join(MIXERS)}")
        if self.path not in PATHS:
            raise bad("path", f"allowed values are {', '.join(PATHS)}")
        if self.selector_input not in SELECTOR_INPUTS:
            raise bad("selector_input", f"allowed values are {', '.join(SELECTOR_INPUTS)}")
        if self.path == "routed" and not self.routable:
            raise bad("path", self._why_not_routed())
        if isinstance(self.layers, int):
            self.layers = [self.layers]
        if (
            not isinstance(self.layers, (list, tuple))
            or not self.layers
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in self.layers)
        ):
            raise bad("layers", "must be a non-empty list of layer indices, e.g. [-1]")
        self.layers = list(self.layers)
        twice = sorted({i for i in self.layers if self.layers.count(i) > 1})
        if twice:  # literal repeats; indices that meet only on a model ([-1, 3] of 4 layers): mawt/layer/patching.py
            raise bad("layers", f"names layer {', '.join(map(str, twice))} twice: list each layer once")
        if self.gate not in GATES:
            raise bad("gate", f"allowed values are {', '.join(GATES)}")
        if self.plant not in PLANTS:
            raise bad("plant", f"allowed values are {', '.join(PLANTS)}")
        if self.plant != "none" and not (self.depth >= 2 and self.mixer in LEARNED_MIXERS):
            raise bad("plant", "a plant needs depth >= 2 and a learned mixer (softmax, grpo, gumbel): it tests "
                      "what the selector learns")

    @property
    def is_mawt(self) -> bool:
        """More than one attention map per head: a real MAWT layer (D=1 is plain attention)."""
        return is_mawt(self.to_dict())

    @property
    def uses_grpo(self) -> bool:
        """The depth choice is a sampled policy trained with GRPO (mawt/training/grpo.py)."""
        return uses_grpo(self.to_dict())

    @property
    def routable(self) -> bool:
        """A hard choice known before attention: the routed path can compute one depth per token
        (grpo in training and evaluation, gumbel in evaluation)."""
        return self.depth > 1 and self.mixer in ("grpo", "gumbel") and self.selector_input == "hidden"

    def _why_not_routed(self) -> str:
        if self.depth == 1:
            return "'routed' needs depth > 1 (with D=1 there is nothing to route)"
        if self.mixer not in ("grpo", "gumbel"):
            return (f"'routed' computes one depth per token, but mixer {self.mixer!r} mixes every depth "
                    "(routed needs the hard choices of grpo, or of gumbel at evaluation)")
        return (f"'routed' needs the choice before attention, but selector_input={self.selector_input!r} reads "
                "the attention maps of every depth (use selector_input: hidden)")

    @property
    def learned_selector(self) -> bool:
        """True when the layer owns a selector MLP (with D=1 every mixer gives w=1)."""
        return self.mixer in LEARNED_MIXERS and self.depth > 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MAWTConfig":
        refuse_renamed(data)
        refuse_unknown(data, cls, "mawt")
        return cls(**data)


def is_mawt(mawt: dict | None) -> bool:
    """The one test of "a real MAWT variant" on a config's `mawt` section (a dict, or None = no MAWT):
    depth > 1. The workflow, tables and plots read configs as dicts, hence a function."""
    return bool(mawt) and (mawt.get("depth") or 1) > 1


def uses_grpo(mawt: dict | None) -> bool:
    """A real MAWT variant whose selector is trained with GRPO."""
    return is_mawt(mawt) and mawt.get("mixer") == "grpo"


RENAMED = {"selector_hidden_state": "selector_input"}  # old key -> the key that replaced it


def refuse_renamed(data: dict, where: str = "mawt") -> None:
    """Old keys are refused with the key that replaced them (not silently ignored)."""
    for old, new in RENAMED.items():
        if old in data:
            raise ValueError(f"{where}.{old} was replaced by {new} (stats | hidden | both; "
                             f"selector_hidden_state: true is selector_input: both)")


# ------------------------------------------------ which layers (torch-free: checked before any model loads)


def resolve_layers(layers: list[int], n_layers: int) -> list[int]:
    """Patched layer indices, absolute and sorted; out of range or twice the same: ValueError."""
    resolved = []
    for i in layers:
        if not -n_layers <= i < n_layers:
            raise ValueError(
                f"mawt.layers contains {i}, out of range for a model with {n_layers} "
                f"decoder layers: allowed are 0..{n_layers - 1} or -{n_layers}..-1"
            )
        resolved.append(i % n_layers)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"mawt.layers={layers} names the same layer twice")
    return sorted(resolved)


FREEZE_MODES = "'last', 'last:N' (N >= 1), 'mawt' or 'all'"


def trainable_tail(trainable: str, n_layers: int | None) -> int | None:
    """How many of the last decoder layers a freeze mode trains (None: all parameters).

    Needs only the layer count, so runs check it from the config before loading weights;
    n_layers=None (no model yet) checks the form only."""
    if trainable == "all":
        return None
    if trainable == "mawt":
        return 0
    if trainable == "last":
        return 1
    if isinstance(trainable, str) and trainable.startswith("last:"):
        tail = trainable.split(":", 1)[1]
        if not (tail.isdigit() and 1 <= int(tail) <= (n_layers or int(tail))):
            allowed = ("an integer >= 1" if n_layers is None else
                       f"an integer in 1..{n_layers} (the model has {n_layers} decoder layers)")
            raise ValueError(f"trainable={trainable!r} is invalid: N in 'last:N' must be {allowed}")
        return int(tail)
    raise ValueError(f"trainable={trainable!r} is unknown; allowed are {FREEZE_MODES}")


def nothing_to_train(trainable: str) -> ValueError:
    return ValueError(f"freeze: trainable={trainable!r} leaves nothing to train (the model has no MAWT layers)")
