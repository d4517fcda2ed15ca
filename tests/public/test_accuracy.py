"""Per-element accuracy against mpmath at 256 bits, on the regimes that break naive code."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

rng = np.random.default_rng(20261122)
N = 400


def _probability_regimes():
    near_one = 1 - rng.integers(1, 400, N) * 2.0**-53  # within 1e-16 .. 5e-14 of 1
    return {
        "uniform": rng.uniform(0, 1, N),
        "tiny": 10.0 ** rng.uniform(-300, -1, N),
        "subnormal": np.array([5e-324, 1e-320, 2.2e-310, 1e-308, 2.2250738585072014e-308]),
        "near_one": near_one,
        "near_half": 0.5 + rng.uniform(-1e-9, 1e-9, N),
    }


def _logit_regimes():
    huge = np.array([1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308, 1e300, -1e300])
    return {
        "uniform": rng.uniform(-50, 50, N),
        "wide": np.sign(rng.uniform(-1, 1, N)) * 10.0 ** rng.uniform(-12, 6, N),
        "huge": huge,
        "around_37": rng.uniform(30, 45, N) * np.sign(rng.uniform(-1, 1, N)),
        "tiny": rng.uniform(-1e-10, 1e-10, N),
    }


@pytest.mark.parametrize("regime", list(_probability_regimes()))
@pytest.mark.parametrize("label", [0, 1])
def test_hard_labels_from_probabilities_within_one_ulp(regime, label):
    p = _probability_regimes()[regime]
    y = np.full(p.shape, label)
    losses = logloss.bce(y, p, reduction="none")
    exact = [ref.bce_probability(label, pi) for pi in p]
    assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("regime", list(_probability_regimes()))
def test_soft_labels_from_probabilities_within_one_ulp(regime):
    p = _probability_regimes()[regime]
    y = rng.uniform(0, 1, p.shape)
    losses = logloss.bce(y, p, reduction="none")
    exact = [ref.bce_probability(yi, pi) for yi, pi in zip(y, p)]
    assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("regime", list(_logit_regimes()))
def test_logits_within_one_ulp(regime):
    z = _logit_regimes()[regime]
    for y in (np.zeros(z.shape), np.ones(z.shape), rng.uniform(0, 1, z.shape)):
        losses = logloss.bce(y, z, from_logits=True, reduction="none")
        exact = [ref.bce_logit(yi, zi) for yi, zi in zip(y, z)]
        assert ref.max_ulp_error(losses, exact) <= 1.0


def test_infinite_logits_give_exact_limits():
    z = np.array([np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1, 0, 0.0, 0.25])
    with pytest.warns(logloss.InfiniteLossWarning, match="2 of 4 samples"):
        losses = logloss.bce(y, z, from_logits=True, reduction="none")
    assert losses[0] == 0 and losses[1] == 0
    assert np.isposinf(losses[2]) and np.isposinf(losses[3])


def test_exact_zero_and_one_probabilities():
    y = np.array([1, 0, 1, 0])
    p = np.array([1.0, 0.0, 0.5, 0.5])
    np.testing.assert_array_equal(logloss.bce(y, p, reduction="none"), [0, 0, math.log(2), math.log(2)])


def test_impossible_prediction_is_inf_with_one_warning():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.0, 1.0, 0.3, 0.3, 0.0])
    with pytest.warns(logloss.InfiniteLossWarning, match=r"3 of 5 samples .*first at index 0.*clip="):
        result = logloss.bce(y, p)
    assert np.isposinf(result)


def test_clip_is_explicit_and_bounds_each_loss():
    loss = logloss.bce([1], [0.0], clip=1e-7)
    assert float(loss) == pytest.approx(-math.log(1e-7), rel=1e-15)
    z_loss = logloss.bce([1], [-np.inf], from_logits=True, clip=1e-7)
    assert float(z_loss) == pytest.approx(-math.log(1e-7), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_narrow_dtypes_are_computed_wide_and_rounded_once(dtype):
    p = rng.uniform(0, 1, N).astype(dtype)
    p = p[(p > 0) & (p < 1)]
    y = (rng.uniform(0, 1, p.shape) < 0.5).astype(dtype)
    soft = rng.uniform(0, 1, p.shape).astype(dtype)
    for labels in (y, soft):
        losses = logloss.bce(labels, p, reduction="none")
        assert losses.dtype == dtype
        exact = [ref.bce_probability(yi, pi) for yi, pi in zip(labels, p)]
        assert ref.max_ulp_error(losses, exact, dtype) <= 1.0
    z = rng.uniform(-20, 20, N).astype(dtype)
    losses = logloss.bce(y[: len(z)], z[: len(y)], from_logits=True, reduction="none")
    assert losses.dtype == dtype
    exact = [ref.bce_logit(yi, zi) for yi, zi in zip(y, z)]
    assert ref.max_ulp_error(losses, exact, dtype) <= 1.0


def test_pos_weight_and_smoothing_within_one_ulp():
    p = rng.uniform(0, 1, N)
    y = (rng.uniform(0, 1, N) < 0.5).astype(float)
    s = 0.1
    losses = logloss.bce(y, p, pos_weight=3.0, label_smoothing=s, reduction="none")
    smoothed = [mpmath.mpf(float(yi)) * (1 - mpmath.mpf(s)) + mpmath.mpf(s) / 2 for yi in y]
    exact = []
    for yi, pi in zip(smoothed, p):
        pi = mpmath.mpf(float(pi))
        exact.append(-(3 * yi * mpmath.log(pi) + (1 - yi) * mpmath.log(1 - pi)))
    assert ref.max_ulp_error(losses, exact) <= 1.0


@pytest.mark.parametrize("kind", ["uniform", "tiny", "near_perfect"])
def test_mean_within_1e_14_relative(kind):
    n = 2000
    y = (rng.uniform(0, 1, n) < 0.3).astype(np.int8)
    if kind == "uniform":
        p = rng.uniform(0, 1, n)
    elif kind == "tiny":
        p = np.where(y == 1, 10.0 ** rng.uniform(-300, 0, n), 10.0 ** rng.uniform(-300, -1, n))
    else:  # a near-perfect classifier: mean loss around 1e-12
        p = np.where(y == 1, 1 - rng.integers(1, 20, n) * 2.0**-53, 10.0 ** rng.uniform(-14, -11, n))
    w = rng.uniform(0, 3, n)
    exact = mpmath.fsum(ref.bce_probability(yi, pi) for yi, pi in zip(y, p)) / n
    assert float(logloss.bce(y, p)) == pytest.approx(float(exact), rel=1e-14)
    exact_w = mpmath.fsum(
        mpmath.mpf(float(wi)) * ref.bce_probability(yi, pi) for yi, pi, wi in zip(y, p, w)
    ) / mpmath.fsum(mpmath.mpf(float(wi)) for wi in w)
    assert float(logloss.bce(y, p, sample_weight=w)) == pytest.approx(float(exact_w), rel=1e-14)
