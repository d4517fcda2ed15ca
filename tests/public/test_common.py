"""Properties every public function shares, in one table (scikit-learn's test_common style).

A new public function adds a row to ``FUNCTIONS``, not a file. Each row says how to draw valid
inputs of n samples and how to call the function; each test applies one property to every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import logloss

rng = np.random.default_rng(20261201)


@dataclass(frozen=True)
class Function:
    name: str
    call: Callable  # call(y, p, sample_weight=None, reduction="mean", dtype) -> scalar or array
    draw: Callable  # draw(n, dtype) -> (y, p): n samples along the first axis


def _binary(n, dtype, *, soft=False):
    y = rng.uniform(size=n) if soft else (rng.uniform(size=n) < 0.3).astype(dtype)
    return y.astype(dtype), rng.uniform(0.001, 0.999, n).astype(dtype)


def _logits(n, dtype):
    return (rng.uniform(size=n) < 0.3).astype(dtype), rng.normal(0, 4, n).astype(dtype)


def _categorical(n, dtype):
    p = rng.dirichlet(np.ones(4), size=n).astype(dtype)
    p /= p.sum(axis=1, keepdims=True, dtype=np.float64).astype(dtype)
    return rng.integers(0, 4, n), p


def _multilabel(n, dtype):
    return (rng.uniform(size=(n, 3)) < 0.4).astype(dtype), rng.uniform(0.01, 0.99, (n, 3)).astype(dtype)


FUNCTIONS = [
    Function("bce/probabilities", lambda y, p, **kw: logloss.binary_cross_entropy(y, p, **kw), _binary),
    Function("bce/soft labels", lambda y, p, **kw: logloss.binary_cross_entropy(y, p, **kw),
             lambda n, d: _binary(n, d, soft=True)),
    Function("bce/logits", lambda y, p, **kw: logloss.binary_cross_entropy(y, p, from_logits=True, **kw), _logits),
    Function("bce/pos_weight", lambda y, p, **kw: logloss.binary_cross_entropy(y, p, pos_weight=2.5, **kw), _binary),
    Function("bce/label_smoothing",
             lambda y, p, **kw: logloss.binary_cross_entropy(y, p, label_smoothing=0.1, **kw), _binary),
    Function("bce/multi-label", lambda y, p, **kw: logloss.binary_cross_entropy(
        y, p, sample_weight=None if kw.get("sample_weight") is None else kw["sample_weight"][:, None],
        reduction=kw.get("reduction", "mean")), _multilabel),
    Function("categorical", lambda y, p, **kw: logloss.categorical_cross_entropy(y, p, **kw), _categorical),
    Function("kl divergence", lambda y, p, **kw: logloss.binary_kl_divergence(y, p, **kw),
             lambda n, d: _binary(n, d, soft=True)),
]
IDS = [f.name for f in FUNCTIONS]
SIZES = [7, 20_000]  # a small input, and one above the chunked fast path's threshold


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("function", FUNCTIONS, ids=IDS)
def test_order_of_samples_does_not_matter(function, n):
    y, p = function.draw(n, np.float64)
    order = rng.permutation(n)
    assert function.call(y[order], p[order]) == pytest.approx(function.call(y, p), rel=4e-16)


@pytest.mark.parametrize("function", FUNCTIONS, ids=IDS)
def test_integer_weight_equals_repeating_the_sample(function):
    y, p = function.draw(50, np.float64)
    counts = rng.integers(0, 4, 50)
    counts[0] = max(counts[0], 1)
    repeated = function.call(np.repeat(y, counts, axis=0), np.repeat(p, counts, axis=0))
    weighted = function.call(y, p, sample_weight=counts.astype(float))
    assert weighted == pytest.approx(repeated, rel=1e-15)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("function", FUNCTIONS, ids=IDS)
def test_sum_is_mean_times_total_weight(function, n):
    y, p = function.draw(n, np.float64)
    w = rng.uniform(0.5, 2.0, n)
    total = function.call(y, p, sample_weight=w, reduction="sum")
    mean = function.call(y, p, sample_weight=w, reduction="mean")
    # The weight sum of the multi-label row counts each of its 3 columns.
    columns = 1 if np.ndim(total) == 0 and np.ndim(p) == 1 or function.name == "categorical" else p.shape[1]
    assert float(total) == pytest.approx(float(mean) * float(np.sum(w)) * columns, rel=1e-14)


@pytest.mark.parametrize("function", FUNCTIONS, ids=IDS)
def test_none_then_mean_agrees_with_mean(function):
    y, p = function.draw(100, np.float64)
    losses = np.asarray(function.call(y, p, reduction="none"), dtype=np.float64)
    assert float(function.call(y, p)) == pytest.approx(float(np.mean(losses)), rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("function", FUNCTIONS, ids=IDS)
def test_dtype_in_is_dtype_out(function, dtype):
    y, p = function.draw(40, dtype)
    for reduction in ("mean", "sum", "none"):
        assert np.asarray(function.call(y, p, reduction=reduction)).dtype == dtype


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("n", SIZES)
def test_accumulator_is_invariant_to_batching_and_merging(n, from_logits):
    y, p = _logits(n, np.float64) if from_logits else _binary(n, np.float64)
    w = rng.uniform(0, 3, n)
    whole = logloss.binary_cross_entropy(y, p, sample_weight=w, from_logits=from_logits)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(5, n - 1), replace=False))
    parts = []
    for y_part, p_part, w_part in zip(*(np.split(a, cuts) for a in (y, p, w))):
        parts.append(logloss.Accumulator(from_logits=from_logits).update(y_part, p_part, w_part))
    merged = parts[0]
    for part in reversed(parts[1:]):  # merged out of order, as workers finish
        merged.merge(part)
    streamed = logloss.Accumulator(from_logits=from_logits)
    for y_part, p_part, w_part in zip(*(np.split(a, cuts) for a in (y, p, w))):
        streamed.update(y_part, p_part, w_part)
    restored = logloss.Accumulator.from_dict(merged.to_dict())
    for accumulator in (merged, streamed, restored):
        assert accumulator.result() == pytest.approx(float(whole), rel=1e-15)
        assert accumulator.count == n
