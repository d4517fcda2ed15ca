"""End-to-end cost of bce on 4e6 samples with 1 and 2 threads: the pool that runs the kernels.

    PYTHONPATH=src python benchmarks/bench_threads.py

Run it on two checkouts to compare how the work is spread (numba's threading layer before
issue 11, chunked's own pool after); prints ns per sample, best of --repeat.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import logloss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=float, default=4e6)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = int(args.n)
    rng = np.random.default_rng(0)
    y, p, z = rng.random(n) < 0.3, rng.random(n), rng.normal(size=n)
    soft, w = rng.random(n), rng.random(n)
    cases = {
        "hard, probabilities": lambda: logloss.bce(y, p),
        "hard, logits": lambda: logloss.bce(y, z, from_logits=True),
        "soft, probabilities": lambda: logloss.bce(soft, p),
        "weighted": lambda: logloss.bce(y, p, sample_weight=w),
        "'none', probabilities": lambda: logloss.bce(y, p, reduction="none"),
        "'none', logits": lambda: logloss.bce(y, z, from_logits=True, reduction="none"),
    }
    for threads in (1, 2):
        with logloss.config_context(threads=threads):
            for name, run in cases.items():
                run()
                best = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    run()
                    best = min(best, time.perf_counter() - t0)
                print(f"threads={threads}  {name:24s} {best * 1e9 / n:6.2f} ns/sample")


if __name__ == "__main__":
    main()
