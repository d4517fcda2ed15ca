"""Derivatives against mpmath differentiation of the reference loss, and finiteness at the extremes."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

grad = logloss.binary_cross_entropy_gradient
hess = logloss.binary_cross_entropy_hessian
rng = np.random.default_rng(7)


def _mp_derivatives(f, x):
    # mpmath differentiates the reference numerically at 256 bits: independent of our formulas.
    x = mpmath.mpf(float(x))
    return mpmath.diff(f, x, 1), mpmath.diff(f, x, 2)


@pytest.mark.parametrize("pos_weight", [1.0, 2.5])
def test_probability_derivatives_match_mpmath(pos_weight):
    p = np.concatenate([rng.uniform(0.01, 0.99, 40), [1e-6, 1 - 1e-6]])
    y = np.concatenate([(rng.uniform(size=20) < 0.5) * 1.0, rng.uniform(size=22)])
    g = grad(y, p, pos_weight=pos_weight)
    h = hess(y, p, pos_weight=pos_weight)
    for yi, pi, gi, hi in zip(y, p, g, h):
        d1, d2 = _mp_derivatives(lambda t: ref.bce_probability(yi, t, pos_weight), pi)
        assert ref.ulp_error(gi, d1) <= 4 or abs(gi - float(d1)) <= 1e-15 * abs(float(d2))
        assert ref.ulp_error(hi, d2) <= 4


@pytest.mark.parametrize("pos_weight", [1.0, 0.3])
def test_logit_derivatives_match_mpmath(pos_weight):
    z = np.concatenate([rng.uniform(-30, 30, 40), [-700.0, 700.0, 1e-9]])
    y = np.concatenate([(rng.uniform(size=20) < 0.5) * 1.0, rng.uniform(size=23)])
    g = grad(y, z, from_logits=True, pos_weight=pos_weight)
    h = hess(y, z, from_logits=True, pos_weight=pos_weight)
    for yi, zi, gi, hi in zip(y, z, g, h):
        # Numerical differentiation cannot resolve e^-700; differentiate by hand instead,
        # written as e^z / (1 + e^z)^2 rather than the library's sigmoid(z) * sigmoid(-z).
        yi, t, pw = (mpmath.mpf(float(v)) for v in (yi, zi, pos_weight))
        e = mpmath.exp(t)
        d1 = (1 - yi) * e / (1 + e) - pw * yi / (1 + e)
        d2 = (1 - yi + pw * yi) * e / (1 + e) ** 2
        assert ref.ulp_error(gi, d1) <= 2
        assert ref.ulp_error(hi, d2) <= 2


def test_logit_gradient_is_sigmoid_minus_label_and_hessian_sigma_one_minus_sigma():
    z = np.array([-3.0, 0.0, 2.0])
    y = np.array([1.0, 0.0, 0.25])
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(grad(y, z, from_logits=True), s - y, rtol=1e-15)
    np.testing.assert_allclose(hess(y, z, from_logits=True), s * (1 - s), rtol=1e-15)


def test_derivatives_are_finite_at_the_extremes():
    z = np.array([1e4, -1e4, 1e308, -1e308, 0.0])
    for y in (0.0, 1.0, 0.5):
        labels = np.full(z.shape, y)
        assert np.all(np.isfinite(grad(labels, z, from_logits=True)))
        assert np.all(np.isfinite(hess(labels, z, from_logits=True)))
    # Where PyTorch's BCELoss clamps log(p) at -100 its gradient vanishes; the exact one does not.
    p = np.array([1e-300, 1 - 1e-16, 0.5])
    g = grad(np.array([1.0, 0.0, 1.0]), p)
    np.testing.assert_allclose(g, [-1e300, 1 / (1 - p[1]), -2.0], rtol=1e-15)
    assert np.all(np.isfinite(hess(np.array([0.0, 1.0, 1.0]), np.array([1e-300, 1 - 1e-16, 0.5]))))


def test_hard_label_on_impossible_side_has_finite_derivative():
    # y = 0 at p = 0: only the (1 - y)/(1 - p) term exists, equal to 1.
    assert grad([0.0], [0.0])[0] == 1.0
    assert grad([1.0], [1.0])[0] == -1.0


def test_sample_weight_scales_derivatives():
    y, z, w = np.array([1.0, 0.0]), np.array([0.3, -0.2]), np.array([2.0, 0.0])
    np.testing.assert_array_equal(grad(y, z, from_logits=True, sample_weight=w), w * grad(y, z, from_logits=True))


def test_derivatives_beyond_the_float_range_round_to_inf_silently():
    # 1/p**2 at p = 1e-300 is 1e600: +inf is the correctly rounded float64 (and float32) value.
    p = np.array([1e-300, 5e-324])
    assert np.all(np.isposinf(hess(np.ones(2), p)))
    assert np.isneginf(grad([1.0], [5e-324])[0])  # -1/p
    assert np.isposinf(hess(np.ones(1, np.float32), np.array([1e-30], np.float32))[0])
