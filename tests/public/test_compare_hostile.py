"""Hostile checks of logloss.compare: every reference is computed here, row by row, in plain
Python (math.fsum), not by the code under test."""

from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

import logloss
from logloss import conventions as C

LN2 = math.log(2)
LIGHTGBM_CAP = -math.log(float(np.float32(1e-15)))  # -log(1e-15f)


def rows_of(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        return {r["convention"]: r for r in logloss.compare(*args, **kwargs).rows}


# One logit of -1e300 for a positive carries a loss of 1e300; the 10^4 other rows (z = 0, loss
# ln 2 each) must still count in the conventions that cap that row (BCELoss at 100, LightGBM at
# -log(1e-15f)). Subtracting the band's exact sum from the batch's lost them all.
@pytest.mark.parametrize("name, capped", [("torch", 100.0), ("lightgbm", LIGHTGBM_CAP)])
@pytest.mark.parametrize("logit", [-1e300, -1e20])
def test_a_huge_logit_does_not_swallow_the_other_rows(name, capped, logit):
    n = 10_000
    y = np.array([1.0] + [0.0] * n)
    z = np.array([logit] + [0.0] * n)
    expected = math.fsum([capped] + [LN2] * n) / (n + 1)
    row = rows_of(y, z, from_logits=True)[name]
    assert row["value"] == pytest.approx(expected, rel=1e-12)
    assert row["rows_changed"] == 1


# README (Autodiff): a zero sample_weight removes a sample even where its loss is +inf: 0, not
# 0 * inf = NaN. compare's exact value does so; its conventions came out NaN.
@pytest.mark.parametrize("name, loss_at_zero", [
    ("keras", -math.log(1e-7)), ("torch", 100.0), ("sklearn", -math.log(2.0 ** -52)),
    ("spark", -math.log(1e-15)), ("article", -math.log(1e-15)),
])
def test_a_zero_weight_on_an_infinite_row_is_left_out(name, loss_at_zero):
    y = [1.0, 0.0, 1.0]
    p = [0.0, 0.3, 0.6]
    w = [0.0, 1.0, 2.0]
    others = [-math.log1p(-0.3), -2.0 * math.log(0.6)]
    divisor = 3.0  # the weight 0 + 1 + 2 and the count 3 alike
    rows = rows_of(np.array(y), np.array(p), sample_weight=np.array(w))
    exact = math.fsum(others) / 3.0
    assert rows["exact"]["value"] == pytest.approx(exact, rel=1e-14)
    row = rows[name]
    assert row["value"] == pytest.approx(math.fsum([0.0 * loss_at_zero] + others) / divisor,
                                         rel=1e-7)
    assert row["total_change"] == 0.0  # the row it bounded weighs nothing


def weighted_mean(weights, losses):
    """sum(w * l) / sum(w) in exact rationals."""
    num = sum(Fraction(w) * Fraction(loss) for w, loss in zip(weights, losses))
    return float(num / sum(Fraction(w) for w in weights))


# logloss.bce and Accumulator scale weights by a power of two, so that weights of 1e308 (a total
# past float64) or 5e-324 (subnormal products) give the mean; compare summed them as they were:
# 0.0 or NaN for 1e308, 10.5 instead of 10.708 for 5e-324.
@pytest.mark.parametrize("weights", [
    [1e308, 1e308], [1e308, 1e300], [1e-300, 1e-300], [5e-324, 5e-324], [5e-324, 1e-323],
    [1e-320, 3e-320],
])
@pytest.mark.parametrize("p0", [0.5, 1e-9, 1e-20])
def test_extreme_weights_give_the_weighted_means(weights, p0):
    y = np.array([1.0, 1.0])
    p = np.array([p0, 0.5])
    rows = rows_of(y, p, sample_weight=np.array(weights))
    clip = {"exact": 0.0, "sklearn": 2.0 ** -52, "spark": 1e-15, "yardstick": 2.0 ** -52}
    for name, bound in clip.items():
        losses = [-math.log(max(q, bound)) for q in p]
        assert rows[name]["value"] == pytest.approx(weighted_mean(weights, losses),
                                                    rel=1e-13), name


def test_merging_batches_of_far_apart_weights_in_either_order():
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = np.array([1e-20, 0.3, 0.9, 1 - 1e-12])
    w = np.array([1e300, 3e299, 1e-300, 2e-300])
    batches = [(y[:2], p[:2], w[:2]), (y[2:], p[2:], w[2:])]
    expected = weighted_mean(w, [-math.log(1e-20), -math.log1p(-0.3), -math.log(0.9),
                                 -math.log1p(-p[3])])
    for order in (batches, batches[::-1]):
        states = [C.compare_state().update(*batch) for batch in order]
        merged = states[0].merge(states[1])
        assert merged.rows()[0]["value"] == pytest.approx(expected, rel=1e-13)
        streamed = C.compare_state()
        for batch in order:
            streamed.update(*batch)
        assert streamed.rows()[0]["value"] == pytest.approx(expected, rel=1e-13)


def test_a_loss_sum_past_float64_is_refused_not_reported_infinite():
    # Two logits of -1e308 for positives: each loss is 1e308, finite; their sum is not. The
    # Accumulator refuses (OverflowError); compare reported the exact value as inf.
    y = np.array([1.0, 1.0])
    z = np.array([-1e308, -1e308])
    with pytest.raises(OverflowError, match="float64 range"):
        logloss.Accumulator(from_logits=True).update(y, z)
    with pytest.raises(OverflowError, match="float64 range"):
        logloss.compare(y, z, from_logits=True)


# README: compare's values agree with the functions of logloss.conventions to ~1e-6 relative
# (but tf.keras 2). PyTorch computes in float32 from float32 logits: BCELoss(sigmoid(z)) rounds
# 1 - sigmoid(z) and BCEWithLogitsLoss cancels z - log_sigmoid(z) for |z| in (6.9, 13.8),
# outside compare's band: 1.2e-5 and 3.6e-5 relative on these logits.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spread", [4.0, 8.0])
def test_float32_logits_agree_with_each_convention(dtype, spread):
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, spread, 20_000).astype(dtype)
    y = (rng.uniform(size=z.size) < 0.4).astype(np.int8)
    rows = rows_of(y, z, from_logits=True)
    for name in C.names():
        if rows[name]["value"] is None or name == "tf_keras_legacy":
            continue
        expected = float(C.loss(name, y, z, from_logits=True))
        assert rows[name]["value"] == pytest.approx(expected, rel=1e-6), name


def test_a_scaled_state_round_trips_through_json():
    y = np.array([1.0, 0.0, 1.0])
    p = np.array([1e-20, 0.3, 0.9])
    w = np.array([1e-320, 3e-320, 2e-320])
    state = C.compare_state().update(y, p, w)
    restored = C.compare_state().load(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
    assert restored.rows() == state.rows()
    expected = weighted_mean([1, 3, 2], [-math.log(1e-20), -math.log1p(-0.3), -math.log(0.9)])
    assert restored.rows()[0]["value"] == pytest.approx(expected, rel=1e-13)
