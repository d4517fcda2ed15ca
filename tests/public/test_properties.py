"""Invariants that hold for every input (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import logloss

# Dyadic probabilities k / 2^20: 1 - p is exact, so label/prediction swaps are exact too.
dyadic = st.integers(1, 2**20 - 1).map(lambda k: k / 2**20)
hard = st.integers(0, 1)
soft = st.integers(0, 2**20).map(lambda k: k / 2**20)


@st.composite
def samples(draw, labels=hard, min_size=1, max_size=40):
    n = draw(st.integers(min_size, max_size))
    y = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=float)
    p = np.array(draw(st.lists(dyadic, min_size=n, max_size=n)))
    return y, p


@given(samples(labels=st.one_of(hard, soft)), st.randoms(use_true_random=False))
def test_order_of_samples_does_not_matter(data, random):
    y, p = data
    order = list(range(len(y)))
    random.shuffle(order)
    assert float(logloss.bce(y[order], p[order])) == pytest.approx(float(logloss.bce(y, p)), rel=1e-15)


@given(samples(), st.lists(st.integers(0, 5), min_size=40, max_size=40))
def test_integer_weight_equals_repeating_the_sample(data, counts):
    y, p = data
    k = np.array(counts[: len(y)])
    if k.sum() == 0:
        k[0] = 1
    weighted = logloss.bce(y, p, sample_weight=k)
    repeated = logloss.bce(np.repeat(y, k), np.repeat(p, k))
    assert float(weighted) == pytest.approx(float(repeated), rel=1e-14)


@given(samples(labels=st.one_of(hard, soft)))
def test_swapping_classes_leaves_the_loss_unchanged(data):
    y, p = data
    # -log1p(-p) and -log(1 - p) are different libm calls, each within 1 ulp of the same exact
    # value (1 - p is exact for these dyadic p), so they may differ by up to 2 ulp.
    np.testing.assert_array_max_ulp(
        logloss.bce(y, p, reduction="none"), logloss.bce(1 - y, 1 - p, reduction="none"), maxulp=2
    )


@given(samples(labels=st.one_of(hard, soft)), st.lists(st.floats(-30, 30), min_size=40, max_size=40))
def test_logit_path_equals_probability_path(data, logits):
    y, _ = data
    z = np.array(logits[: len(y)])
    p = 1 / (1 + np.exp(-z))
    p = p[(p > 0) & (p < 1)]
    y, z = y[: len(p)], z[: len(p)]
    from_p = logloss.bce(y, p, reduction="none")
    from_z = logloss.bce(y, z, from_logits=True, reduction="none")
    # Rounding p (twice: exp, then the division) moves the loss by up to |dL/dp| * 2 ulp(p).
    sensitivity = (y / p + (1 - y) / (1 - p)) * 2 * np.spacing(p)
    assert np.all(np.abs(from_z - from_p) <= sensitivity + 1e-15 * from_z)


@given(samples(labels=st.one_of(hard, soft)))
def test_neutral_options_change_nothing(data):
    y, p = data
    plain = logloss.bce(y, p, reduction="none")
    np.testing.assert_array_equal(logloss.bce(y, p, pos_weight=1.0, reduction="none"), plain)
    np.testing.assert_array_equal(logloss.bce(y, p, label_smoothing=0.0, reduction="none"), plain)


@given(samples(labels=st.one_of(hard, soft)))
def test_sum_is_mean_times_count(data):
    y, p = data
    total = float(logloss.bce(y, p, reduction="sum"))
    assert total == pytest.approx(float(logloss.bce(y, p)) * len(y), rel=1e-14)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=dyadic))
def test_axis_reduction_matches_reducing_each_column(p):
    y = (p > 0.5).astype(float)
    per_column = logloss.bce(y, p, axis=0)
    expected = [float(logloss.bce(y[:, j], p[:, j])) for j in range(p.shape[1])]
    np.testing.assert_allclose(per_column, expected, rtol=1e-15)
