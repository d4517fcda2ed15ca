"""The grouped kernel on one batch of 2**20 rows (int8 labels, float32 predictions and weights,
int32 group numbers drawn uniformly), per number of groups, on one thread against one range per
thread: medians of interleaved repeats, in milliseconds.

    PYTHONPATH=src python benchmarks/bench_grouped.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from logloss._accumulator import GroupedStatistics
from logloss._numpy import chunked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if chunked.compiled_kernels() is None:
        raise SystemExit("the compiled kernels are not built")
    rng = np.random.default_rng(0)
    n = 1 << 20
    p = np.clip(rng.beta(0.6, 6.0, n), 1e-7, 1 - 1e-7).astype(np.float32)
    y = (rng.random(n) < p).astype(np.int8)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    limit = chunked.GROUPED_ONE_THREAD
    print(f"{'groups':>8} {'one thread ms':>14} {'a range per thread ms':>22}")
    for groups in (50, 1000, 5000, 12000, 20000, 100000):
        codes = rng.integers(0, groups, n).astype(np.int32)
        times: dict = {"one": [], "each": []}
        for _ in range(args.repeat):
            for mode in times:
                chunked.GROUPED_ONE_THREAD = 0 if mode == "one" else 1 << 62
                table = GroupedStatistics()
                start = time.perf_counter()
                table.add_batch(y, p, w, codes, groups)
                times[mode].append((time.perf_counter() - start) * 1e3)
        chunked.GROUPED_ONE_THREAD = limit
        print(f"{groups:8} {statistics.median(times['one']):14.2f} {statistics.median(times['each']):22.2f}")


if __name__ == "__main__":
    main()
