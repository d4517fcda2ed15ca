"""The reference path's sums on a platform without an extended long double (ARM macOS, Windows):
the frexp-scaled TwoSum tree must give the same exact answers as the long-double sums."""

from __future__ import annotations

import math

import numpy as np
import pytest

import logloss
from logloss._numpy import summation

from .. import reference as ref

LOG2 = math.log(2.0)


@pytest.fixture(params=["long double", "portable"])
def platform(request, monkeypatch):
    if request.param == "portable":
        monkeypatch.setattr(summation, "_extended", lambda: None)
    elif summation._extended() is None:
        pytest.skip("no extended long double here")
    return request.param


@pytest.mark.parametrize("w", [5e-324, 1e-300, 1e300, 1.7e308])
def test_equal_extreme_weights_cancel(platform, w):
    assert logloss.bce([1.0, 0.0, 1.0], [0.5, 0.5, 0.5], sample_weight=[w] * 3) == LOG2
    assert logloss.bce(np.eye(2), np.full((2, 2), 0.5), sample_weight=[[w], [w]], axis=0).tolist() == [LOG2] * 2


def test_axis_sum_of_equal_terms(platform):
    n, p = 100_000, 0.3566749439387324
    got = logloss.bce(np.ones((n, 2)), np.full((n, 2), p), axis=0)
    assert ref.max_ulp_error(got, [ref.bce_probability(1.0, p)] * 2) <= 0.5


def test_infinite_loss_and_zero_weight(platform):
    with pytest.warns(logloss.InfiniteLossWarning):
        assert logloss.bce([1.0, 0.0], [0.0, 0.5], sample_weight=[1.0, 1.0]) == np.inf
    # A zero weight removes a sample even where its loss is infinite.
    assert logloss.bce([1.0, 0.0], [0.0, 0.5], sample_weight=[0.0, 1.0]) == LOG2


def test_sum_beyond_float64_is_inf_and_a_mean_is_not(platform):
    z = np.full(4, 1e308)
    assert logloss.bce(np.zeros(4), z, from_logits=True, reduction="sum") == np.inf
    assert logloss.bce(np.zeros(4), z, from_logits=True) == 1e308
