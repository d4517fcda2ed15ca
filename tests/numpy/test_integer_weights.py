"""64-bit integer weights: the compiled kernels' loader clamps 64-bit integers to [-1, 2] (what
labels need), so such weights must not reach it. References: float64 weights of the same values,
and the weighted mean written out here."""

from __future__ import annotations

import numpy as np
import pytest

import logloss
from logloss._numpy import kernels as paths


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint8])
def test_integer_weights_count_as_their_values(dtype):
    rng = np.random.default_rng(4)
    n = 50_000
    y = (rng.random(n) < 0.3).astype(np.int8)
    p = rng.uniform(0.01, 0.99, n)
    w = rng.integers(0, 9, n).astype(dtype)
    per_row = np.where(y == 1, -np.log(p), -np.log1p(-p))
    expected = float(np.sum(w * per_row) / np.sum(w))
    logloss.set_config(engine="auto")
    got = logloss.binary_cross_entropy(y, p, sample_weight=w)
    assert got == pytest.approx(expected, rel=1e-12)
    accumulator = logloss.Accumulator()
    accumulator.update(y, p, sample_weight=w)
    assert accumulator.summary()["log_loss"] == pytest.approx(expected, rel=1e-12)
    if paths.supported_paths():
        from logloss._numpy import chunked

        codes = rng.integers(0, 5, n).astype(np.int32)
        sums = chunked.grouped_sums(y, p, w, codes, 5, from_logits=False)
        if sums is not None:  # the kernel took it: its weight sums are the weights' values
            want = np.bincount(codes, weights=w.astype(np.float64), minlength=5)
            assert np.allclose(sums[:, 1], want, rtol=1e-12)
