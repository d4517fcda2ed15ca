from __future__ import annotations

import numpy as np
import pytest

import logloss

from .. import reference as ref

rng = np.random.default_rng(11)


def test_entropy_matches_mpmath_and_its_endpoints():
    y = np.concatenate([rng.uniform(0, 1, 200), [0.0, 1.0, 0.5, 1e-300, 1 - 2**-53]])
    exact = [ref.entropy(v) for v in y]
    assert ref.max_ulp_error(logloss.binary_entropy(y), exact) <= 1.0
    assert logloss.binary_entropy(0.5) == pytest.approx(np.log(2), rel=1e-16)


@pytest.mark.parametrize("gap", [0.3, 1e-3, 1e-8, 1e-12, 0.0])
def test_kl_matches_mpmath_even_as_prediction_approaches_label(gap):
    y = rng.uniform(0.05, 0.95, 100)
    p = np.clip(y + gap * rng.uniform(-1, 1, 100), 0.01, 0.99)
    exact = [ref.kl(a, b) for a, b in zip(y, p)]
    kl = logloss.binary_kl_divergence(y, p, reduction="none")
    assert np.all(kl >= 0)
    assert ref.max_ulp_error(kl, exact) <= 4.0


def test_cross_entropy_is_entropy_plus_kl_and_kl_vanishes_at_the_label():
    y = rng.uniform(0, 1, 100)
    p = rng.uniform(0, 1, 100)
    np.testing.assert_allclose(
        logloss.bce(y, p, reduction="none"),
        logloss.binary_entropy(y) + logloss.binary_kl_divergence(y, p, reduction="none"),
        rtol=1e-14,
    )
    assert np.all(logloss.binary_kl_divergence(y, y, reduction="none") == 0)


def test_kl_at_hard_labels_is_the_cross_entropy():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.0, 1.0])
    np.testing.assert_array_equal(
        logloss.binary_kl_divergence(y, p, reduction="none"), logloss.bce(y, p, reduction="none")
    )
