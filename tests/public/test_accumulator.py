from __future__ import annotations

import json
import math
import pickle

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

rng = np.random.default_rng(5)


def _data(n=5000):
    y = (rng.uniform(size=n) < 0.3).astype(np.int8)
    p = np.where(y == 1, rng.beta(5, 2, n), rng.beta(2, 5, n))
    w = rng.uniform(0, 2, n)
    return y, p, w


@pytest.mark.parametrize("batch", [1, 7, 1000, 5000])
def test_result_equals_in_memory_function_whatever_the_batches(batch):
    y, p, w = _data()
    acc = logloss.Accumulator()
    for start in range(0, len(y), batch):
        acc.update(y[start : start + batch], p[start : start + batch], w[start : start + batch])
    assert acc.result() == pytest.approx(float(logloss.bce(y, p, sample_weight=w)), rel=1e-13)


def test_merge_of_shards_equals_one_pass_and_mpmath():
    y, p, _ = _data(3000)
    shards = [logloss.Accumulator().update(y[i::3], p[i::3]) for i in range(3)]
    merged = shards[0].merge(shards[1]).merge(shards[2])
    exact = mpmath.fsum(ref.bce_probability(a, b) for a, b in zip(y, p)) / len(y)
    assert merged.result() == pytest.approx(float(exact), rel=1e-13)


def test_summary_diagnostics_from_independent_formulas():
    y, p, _ = _data(2000)
    acc = logloss.Accumulator().update(y, p)
    s = acc.summary()
    base = y.mean()
    entropy = -(base * math.log(base) + (1 - base) * math.log(1 - base))
    assert s["count"] == 2000 and s["positives"] == y.sum()
    assert s["normalized_entropy"] == pytest.approx(s["log_loss"] / entropy, rel=1e-12)
    assert s["calibration"] == pytest.approx(p.sum() / y.sum(), rel=1e-12)


def test_logits_accumulate_and_predictions_are_probabilities():
    y, p, _ = _data(500)
    z = np.log(p) - np.log1p(-p)
    acc = logloss.Accumulator(from_logits=True).update(y, z)
    assert acc.result() == pytest.approx(float(logloss.bce(y, z, from_logits=True)), rel=1e-13)
    assert acc.summary()["calibration"] == pytest.approx(p.sum() / y.sum(), rel=1e-9)


def test_state_pickles_and_round_trips_through_json():
    y, p, w = _data(100)
    acc = logloss.Accumulator(pos_weight=2.0).update(y, p, w)
    again = logloss.Accumulator.from_dict(json.loads(json.dumps(acc.to_dict())))
    assert again.result() == acc.result()
    assert pickle.loads(pickle.dumps(acc)).result() == acc.result()


def test_errors_and_infinite_losses():
    with pytest.raises(ValueError, match="seen no samples"):
        logloss.Accumulator().result()
    with pytest.raises(ValueError, match="different settings"):
        logloss.Accumulator().merge(logloss.Accumulator(from_logits=True))
    with pytest.raises(ValueError, match="`y_pred`.*index 1"):
        logloss.Accumulator().update([1, 0], [0.5, 1.5])
    acc = logloss.Accumulator().update([1, 0], [0.0, 0.5])
    with pytest.warns(logloss.InfiniteLossWarning, match="1 of 2"):
        assert math.isinf(acc.result())


@pytest.mark.parametrize("weighted", [False, True])
def test_fast_path_sums_of_int8_labels_and_float32_predictions(weighted):
    # Large enough for the fast path; the label and prediction sums come from float64 math.fsum.
    n = 50_000
    p = rng.uniform(0.01, 0.99, n).astype(np.float32)
    y = (rng.uniform(size=n) < p).astype(np.int8)
    w = rng.uniform(0, 2, n) if weighted else np.ones(n)
    acc = logloss.Accumulator()
    for start in range(0, n, 20_000):
        part = slice(start, start + 20_000)
        acc.update(y[part], p[part], w[part] if weighted else None)
    s = acc.summary()
    p64, y64 = p.astype(np.float64), y.astype(np.float64)
    terms = np.where(y == 1, -np.log(p64), -np.log1p(-p64))
    assert s["count"] == n and s["positives"] == int(y.sum())
    assert s["log_loss"] == pytest.approx(math.fsum(w * terms) / math.fsum(w), rel=1e-12)
    assert s["calibration"] == pytest.approx(math.fsum(w * p64) / math.fsum(w * y64), rel=1e-12)
