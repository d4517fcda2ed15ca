"""Hostile checks of logloss.compare: every reference is computed here, row by row, in plain
Python (math.fsum), not by the code under test."""

from __future__ import annotations

import math
import warnings

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
