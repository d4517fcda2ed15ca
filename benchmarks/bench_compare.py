"""logloss.compare against binary_cross_entropy on the same in-memory rows (issue 15's target: ≤ 3×).

Both run in the same process on the same arrays (a reasonable classifier with a fraction of
confident mistakes, as in benchmarks/conventions.py), best of --repeat; the ratio is printed.

    PYTHONPATH=src python benchmarks/bench_compare.py [--n 10000000] [--mistakes 0.005] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import logloss

sys.path.insert(0, os.path.dirname(__file__))
from conventions import make_data


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--mistakes", type=float, default=0.005)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = int(args.n)
    y, p = make_data(n, args.mistakes, 1e-50)
    labels = {"float64 labels": y, "int8 labels": y.astype(np.int8)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logloss.bce(y[:100_000], p[:100_000])  # warm-up
        logloss.compare(y[:100_000], p[:100_000])
        for name, labels_ in labels.items():
            logloss.bce(labels_[:100_000], p[:100_000])
            t_bce = best(lambda labels_=labels_: logloss.bce(labels_, p), args.repeat)
            t_cmp = best(lambda labels_=labels_: logloss.compare(labels_, p), args.repeat)
            print(f"{n} rows, {args.mistakes:.1%} confident mistakes, {name}, float64 p: "
                  f"binary_cross_entropy {t_bce * 1e9 / n:.2f} ns/row, "
                  f"compare {t_cmp * 1e9 / n:.2f} ns/row, ratio {t_cmp / t_bce:.2f}")


if __name__ == "__main__":
    main()
