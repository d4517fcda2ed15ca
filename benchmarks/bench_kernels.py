"""Single-core cost of the numba kernels (logloss[fast]), without the Python-side dispatch.

    PYTHONPATH=src python benchmarks/bench_kernels.py              # 2e6 samples, one thread

Calls ``_numba.probability_sums`` / ``logit_sums`` (the sums behind "mean" and "sum") and
``hard_probability_losses`` / ``hard_logit_losses`` (reduction="none") directly, best of
--repeat runs after a warm-up call that loads or compiles them, and prints ns per sample; then
one bare ``exp`` and one bare ``log`` per sample, the floor under the float64 kernels. Used to
compare kernel changes; bench_reductions.py is the comparison with every peer.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best(f, repeat: int) -> float:
    f()
    result = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        result = min(result, time.perf_counter() - t0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=float, default=2e6)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from logloss._numpy import numba_kernels as kernels

    n = int(args.n)
    rng = np.random.default_rng(0)
    p = np.clip(rng.uniform(0, 1, n), 1e-12, 1 - 1e-12)
    hard = (rng.uniform(0, 1, n) < p).astype(np.float64)
    soft = rng.uniform(0, 1, n)
    z = np.log(p) - np.log1p(-p)
    zeros = np.zeros(n)
    chunks = -(-n // kernels.CHUNK)
    totals, weights = np.empty(chunks), np.empty(chunks)
    status = np.empty(chunks, dtype=np.int64)
    print(f"N = {n:.0e}, one thread (the kernels are serial; chunked spreads them over its pool), best of {args.repeat}, ns per sample")
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        rows = [
            ("sum, hard labels, probabilities", kernels.probability_sums, hard, p, None),
            ("sum, hard labels, logits", kernels.logit_sums, hard, z, None),
            ("sum, soft labels, probabilities", kernels.probability_sums, soft, p, None),
            ("sum, soft labels, logits", kernels.logit_sums, soft, z, None),
            ("none, hard labels, probabilities", kernels.hard_probability_losses, hard, p, True),
            ("none, hard labels, logits", kernels.hard_logit_losses, hard, z, True),
        ]
        for title, kernel, y, x, per_element in rows:
            y, x = y.astype(dtype), x.astype(dtype)
            if per_element:
                out = np.empty_like(x)
                run = lambda: kernel(y, x, out, status)  # noqa: E731
            else:
                run = lambda: kernel(y, x, totals, weights, status)  # noqa: E731
            seconds = best(run, args.repeat)
            print(f"{name:8s} {title:34s} {seconds / n * 1e9:6.2f}")
    # The floor under the float64 kernels: one exp or one log per sample, nothing else.
    out, negative = np.empty(n), -np.abs(z)
    for title, run in (("exp alone (exp_neg of -|z|)", lambda: kernels.vector_exp(negative, out)),
                       ("log alone (log_plus of p, 0)", lambda: kernels.vector_log(p, zeros, out))):
        seconds = best(run, args.repeat)
        print(f"float64  {title:34s} {seconds / n * 1e9:6.2f}")


if __name__ == "__main__":
    main()
