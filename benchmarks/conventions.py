"""How far each framework's log loss is from the exact value on data with confident mistakes.

The README's "Why it exists" table: a reasonable classifier plus a fraction of confident
mistakes (positives predicted at p = 1e-50, whose exact loss is 115.1 each), every convention of
logloss.conventions computed by logloss.compare (each convention is checked against its
framework in tests/test_conventions.py). tests/test_readme_conventions.py re-checks the
README's numbers with this same data.

    PYTHONPATH=src python benchmarks/conventions.py [--n 100000] [--mistakes 0.05] [--p-wrong 1e-50]
    PYTHONPATH=src python benchmarks/conventions.py --sources   # the README's Conventions table
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import logloss
from logloss import conventions


def make_data(n: int, mistakes: float, p_wrong: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(np.float64)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    wrong = rng.choice(np.flatnonzero(y == 1), int(mistakes * n), replace=False)
    p[wrong] = p_wrong
    return y, p


def comparison_table(y, p) -> str:
    table = logloss.compare(y, p)
    lines = ["| convention | framework | mean log loss | vs exact | rows changed |",
             "|---|---|---:|---:|---:|"]
    for row in table.rows:
        name = row["convention"]
        if row["value"] is None:
            continue
        framework = (conventions.CONVENTIONS[name].framework if name != "exact"
                     else "**logloss** (exact)")
        unit = " bits" if row["units"] == "bits" else ""
        relative = "0" if name == "exact" else f"{row['relative_difference']:+.1%}"
        lines.append(f"| `{name}` | {framework} | {row['value']:.4f}{unit} | {relative} | "
                     f"{row['rows_changed']} |")
    return "\n".join(lines)


def sources_table() -> str:
    lines = ["| convention | framework | confident mistakes | mean | source followed |",
             "|---|---|---|---|---|"]
    for name, info in conventions.CONVENTIONS.items():
        mean = "Σw·l / n" if info.normalization == "count" else "Σw·l / Σw"
        lines.append(f"| `{name}` | {info.framework} | {info.bound} | {mean} | {info.source} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--mistakes", type=float, default=0.05, help="fraction of confident mistakes")
    parser.add_argument("--p-wrong", type=float, default=1e-50, help="their predicted probability")
    parser.add_argument("--sources", action="store_true", help="print the Conventions table")
    args = parser.parse_args()
    if args.sources:
        print(sources_table())
        return
    y, p = make_data(args.n, args.mistakes, args.p_wrong)
    exact = float(logloss.bce(y, p))
    # An independent check of the exact value: math.fsum of math.log terms.
    check = math.fsum(-math.log(q) if t else -math.log1p(-q) for t, q in zip(y, p)) / len(y)
    assert abs(exact - check) <= 1e-13 * exact, (exact, check)
    print(f"{args.n} samples, {args.mistakes:.1%} of them positives predicted at p = {args.p_wrong:g}")
    print(comparison_table(y, p))


if __name__ == "__main__":
    main()
