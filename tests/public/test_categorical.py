from __future__ import annotations

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

cce = logloss.categorical_cross_entropy
rng = np.random.default_rng(3)


def _mp_log_softmax_loss(z_row, k):
    z_row = [mpmath.mpf(float(v)) for v in z_row]
    return mpmath.log(mpmath.fsum(mpmath.exp(v - z_row[k]) for v in z_row))


def test_logits_match_mpmath_including_confident_correct_predictions():
    z = np.concatenate([rng.normal(0, 5, (30, 4)), [[40.0, 0.0, -3.0, 1.0], [800.0, -800.0, 0.0, 1.0]]])
    labels = np.concatenate([rng.integers(0, 4, 30), [0, 0]])
    losses = cce(labels, z, from_logits=True, reduction="none")
    exact = [_mp_log_softmax_loss(row, k) for row, k in zip(z, labels)]
    assert ref.max_ulp_error(losses, exact) <= 1.0


def test_integer_and_one_hot_labels_agree():
    p = rng.dirichlet(np.ones(5), 50)
    labels = rng.integers(0, 5, 50)
    one_hot = np.eye(5)[labels]
    np.testing.assert_array_equal(cce(labels, p, reduction="none"), cce(one_hot, p, reduction="none"))
    expected = [-float(mpmath.log(mpmath.mpf(float(row[k])))) for row, k in zip(p, labels)]
    np.testing.assert_allclose(cce(labels, p, reduction="none"), expected, rtol=2e-16)


def test_two_classes_equal_binary_cross_entropy():
    q = rng.uniform(0, 1, 30)
    y = (rng.uniform(size=30) < 0.5).astype(int)
    p2 = np.stack([1 - q, q], axis=1)
    bin_loss = logloss.bce(y, q, reduction="none")
    np.testing.assert_allclose(cce(y, p2, reduction="none"), bin_loss, rtol=1e-15)
    z = rng.normal(0, 4, 30)
    two_logits = np.stack([np.zeros(30), z], axis=1)
    np.testing.assert_allclose(
        cce(y, two_logits, from_logits=True, reduction="none"),
        logloss.bce(y, z, from_logits=True, reduction="none"),
        rtol=1e-15,
    )


def test_class_axis_and_soft_labels():
    p = rng.dirichlet(np.ones(3), 8)  # (8, 3)
    y = rng.dirichlet(np.ones(3), 8)
    moved = cce(y.T, p.T, axis=0, reduction="none")
    np.testing.assert_allclose(moved, cce(y, p, reduction="none"), rtol=1e-15)
    expected = [-sum(yc * np.log(pc) for yc, pc in zip(yr, pr)) for yr, pr in zip(y, p)]
    np.testing.assert_allclose(cce(y, p, reduction="none"), expected, rtol=1e-14)


def test_impossible_class_gives_inf_with_warning_and_zero_weight_row_does_not():
    z = np.array([[0.0, -np.inf], [1.0, 2.0]])
    with pytest.warns(logloss.InfiniteLossWarning):
        assert np.isposinf(cce([1, 0], z, from_logits=True))
    assert np.isfinite(cce([1, 0], z, from_logits=True, sample_weight=[0, 1]))
    assert cce([0, 0], z, from_logits=True, reduction="none")[0] == 0
