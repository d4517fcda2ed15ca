"""How far each framework's log loss is from the exact value on data with confident mistakes.

Runs every installed framework on the same predictions (a reasonable classifier plus a few
confident mistakes: positives predicted at p = 1e-50, whose exact loss is 115.1 each) and prints
each mean and its relative difference from the exact mean. Missing frameworks are skipped.

    python benchmarks/conventions.py [--n 100000] [--mistakes 0.005] [--p-wrong 1e-50]
"""

from __future__ import annotations

import argparse
import math
import os
import warnings

import numpy as np

import logloss

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_data(n: int, mistakes: float, p_wrong: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(np.float64)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    wrong = rng.choice(np.flatnonzero(y == 1), int(mistakes * n), replace=False)
    p[wrong] = p_wrong
    return y, p


def article(y, p):
    epsilon = 1e-15
    ones = np.ones_like(y)
    return -np.mean(y * np.log(p + epsilon) + (ones - y) * np.log(ones - p + epsilon))


def peers():
    yield "the introductory articles' NumPy function (+1e-15)", article
    try:
        from sklearn.metrics import log_loss

        yield "scikit-learn log_loss", lambda y, p: log_loss(y, p)
    except ImportError:
        yield "scikit-learn log_loss", None
    try:
        import torch

        yield "PyTorch F.binary_cross_entropy", lambda y, p: float(
            torch.nn.functional.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(y))
        )
    except ImportError:
        yield "PyTorch F.binary_cross_entropy", None
    try:
        import keras

        yield "Keras binary_crossentropy", lambda y, p: float(
            np.mean(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y[:, None], p[:, None])))
        )
    except ImportError:
        yield "Keras binary_crossentropy", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--mistakes", type=float, default=0.005, help="fraction of confident mistakes")
    parser.add_argument("--p-wrong", type=float, default=1e-50, help="their predicted probability")
    args = parser.parse_args()
    y, p = make_data(args.n, args.mistakes, args.p_wrong)
    exact = float(logloss.bce(y, p))
    # An independent check of the exact value: math.fsum of math.log terms.
    check = math.fsum(-math.log(q) if t else -math.log1p(-q) for t, q in zip(y, p)) / len(y)
    assert abs(exact - check) <= 1e-13 * exact, (exact, check)
    print(f"{args.n} samples, {args.mistakes:.1%} of them positives predicted at p = {args.p_wrong:g}")
    print("| implementation | mean log loss | vs exact |\n|---|---:|---:|")
    print(f"| logloss (exact) | {exact:.4f} | 0 |")
    for name, function in peers():
        if function is None:
            print(f"| {name} | not installed | |")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = function(y, p)
        print(f"| {name} | {value:.4f} | {(value - exact) / exact:+.1%} |")


if __name__ == "__main__":
    main()
