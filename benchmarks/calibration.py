"""Calibration of mawt.statistics on simulated studies with a known truth: the calibration table of docs/statistics.md.

    python benchmarks/calibration.py                     # 2000 studies per cell (minutes on 2 cores)
    python benchmarks/calibration.py --sims 1000 --out results/bench/calibration.md
    python benchmarks/calibration.py --sims 200 --seeds 3 --items 400    # a part of the grid

For every design cell of the grid seeds {2, 3, 5} x items {50, 400} x base rate
{0.05, 0.17, 0.5} x latent seed SD {0, 0.3, 0.6} x heterogeneous effects (latent
effect SD) {0, 0.5}, `mawt.statistics.simulate.calibrate` draws --sims paired studies from
the probit model of `mawt.statistics.simulate` (which never calls the estimator) and reports:

* coverage: how often the 95% interval of the paired difference holds the true difference (0);
* type I: how often p < 0.05 when the true difference is 0;
* MDE: the mean minimum detectable effect `mawt.statistics.power` reports for the verdict shown (Holm over 3
  comparisons: level 0.05 / 3, power 0.8);
* power at MDE: studies of 3 variants, one with a true difference of that MDE and two with none: how
  often its Holm verdict says "better" (target 0.8); empty where the MDE exceeds what the accuracy
  scale allows (base rate + MDE >= 1);
* false verdicts: how often either null variant of those studies is called different (at most 0.05).

The seed SD is given on the latent (probit) scale and shown on the accuracy scale
(the SD of one run's accuracy over training seeds, at the base rate). Every cell
has its own fixed random stream (--seed and a hash of the cell). Prints the Markdown
table and a summary line and writes the same text to --out (under a line naming
the command, machine and commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import markdown  # noqa: E402  (benchmarks/markdown.py)
from mawt.statistics.simulate import Cell, accuracy_seed_sd, calibrate  # noqa: E402

SEEDS = (2, 3, 5)
ITEMS = (50, 400)
BASE_RATES = (0.05, 0.17, 0.5)
LATENT_SEED_SD = (0.0, 0.3, 0.6)
EFFECT_SD = (0.0, 0.5)
FAMILY = 3
COLUMNS = ["seeds", "items", "base rate", "seed SD (accuracy)", "heterogeneous (effect_sd)", "coverage", "type I",
           "MDE (Holm, 3 comparisons)", "power at MDE", "false verdicts"]


seed_sd = accuracy_seed_sd  # latent -> accuracy scale (mawt.statistics.simulate)


def grid(seeds=SEEDS, items=ITEMS, base_rates=BASE_RATES, latent_seed_sd=LATENT_SEED_SD,
         effect_sd=EFFECT_SD) -> list[Cell]:
    return [Cell(seeds=S, items=N, base_rate=p, seed_sd=seed_sd(lat, p), effect_sd=het)
            for S, N, p, lat, het in itertools.product(seeds, items, base_rates, latent_seed_sd, effect_sd)]


def rng(cell: Cell, seed: int = 0) -> np.random.Generator:
    """The cell's own random stream: --seed and the crc32 of the cell (the same in a run of part of the grid)."""
    return np.random.default_rng([seed, zlib.crc32(repr(cell).encode())])


def _num(value: float, fmt: str) -> str:
    return "" if value is None or np.isnan(value) else format(value, fmt)


def row(cell: Cell, r: dict) -> list:
    return [cell.seeds, cell.items, f"{cell.base_rate:g}", f"{cell.seed_sd:.3f}", f"{cell.effect_sd:g}",
            f"{r['coverage']:.3f}", f"{r['type_1']:.3f}", f"{r['mde']:.3f}", _num(r["power"], ".3f"),
            _num(r["false_verdicts"], ".3f")]


def summary(results: list[dict], sims: int) -> str:
    cov = [r["coverage"] for r in results]
    t1 = [r["type_1"] for r in results]
    power = [r["power"] for r in results if not np.isnan(r["power"])]
    false = [r["false_verdicts"] for r in results if not np.isnan(r["false_verdicts"])]
    mc = np.sqrt(0.05 * 0.95 / sims)
    found = (f"power at the MDE {min(power):.3f}-{max(power):.3f} ({len(power)} cells; "
             f"{len(results) - len(power)} with an MDE beyond the scale), false verdicts at most {max(false):.3f}"
             if power else "no cell with an MDE within the scale")
    cells = f"{len(results)} cell{'s' if len(results) != 1 else ''}"
    return (f"{cells}, {sims} simulated studies each (Monte Carlo SD of a 5% rate: {mc:.3f}): "
            f"coverage {min(cov):.3f}-{max(cov):.3f}, type I at most {max(t1):.3f}, {found}.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=2000, help="simulated studies per cell (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="base random seed (each cell: [seed, crc32 of the cell])")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "calibration.md")
    # a part of the grid (default: all of it)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--items", type=int, nargs="+", default=list(ITEMS))
    ap.add_argument("--base-rates", type=float, nargs="+", default=list(BASE_RATES))
    ap.add_argument("--latent-seed-sd", type=float, nargs="+", default=list(LATENT_SEED_SD))
    ap.add_argument("--effect-sd", type=float, nargs="+", default=list(EFFECT_SD))
    a = ap.parse_args(argv)
    started = time.perf_counter()
    cells, results = grid(a.seeds, a.items, a.base_rates, a.latent_seed_sd, a.effect_sd), []
    for k, cell in enumerate(cells):
        results.append(calibrate(cell, a.sims, rng(cell, a.seed), family=FAMILY))
        print(f"[{k + 1}/{len(cells)}] {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    text = (markdown.table(COLUMNS, "r" * len(COLUMNS), [row(c, r) for c, r in zip(cells, results)])
            + "\n\n" + summary(results, a.sims))
    md = markdown.write(a.out, "Calibration of mawt.statistics on simulated studies", text, markdown.command(__file__, argv))
    print(text)
    print(f"\nwrote {markdown.shown(md)} ({time.perf_counter() - started:.0f} s)")



if __name__ == "__main__":
    main()
