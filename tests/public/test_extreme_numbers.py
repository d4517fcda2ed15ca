"""The number must be right at the edges: clip, extreme weights and logits, weighted per-element
losses and axis= reductions, every reference from mpmath (tests/reference.py) or an identity
(a mean of equal values is that value)."""

from __future__ import annotations

import math
import re
import warnings

import mpmath
import numpy as np
import pytest

import logloss

from .. import reference as ref

LOG2 = math.log(2.0)  # correctly rounded (glibc)


def _bce(*args, engine="numpy", **kwargs):
    with logloss.config_context(engine=engine):
        return logloss.bce(*args, **kwargs)


# ---------------------------------------------------------------- pos_weight


@pytest.mark.parametrize("shape", [(2, 1), (3, 4), (1, 4, 1)])
def test_pos_weight_must_not_enlarge_the_labels(shape):
    with pytest.raises(ValueError, match=r"`pos_weight` must be broadcastable to the label shape \(4,\) "
                                         r"without enlarging it.*" + re.escape(str(shape))):
        logloss.bce(np.array([1.0, 0, 1, 0]), np.full(4, 0.5), pos_weight=np.ones(shape))


def test_pos_weight_must_not_enlarge_the_labels_on_every_library(foreign):
    y, p = foreign.asarray(np.array([1.0, 0, 1, 0])), foreign.asarray(np.full(4, 0.5))
    with pytest.raises(ValueError, match="without enlarging it"):
        logloss.bce(y, p, pos_weight=foreign.asarray(np.ones((2, 1))))


def test_pos_weight_per_column_still_broadcasts():
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    got = logloss.bce(y, np.full((2, 2), 0.5), pos_weight=np.array([2.0, 3.0]), reduction="none")
    assert got.tolist() == [[2 * LOG2, LOG2], [2 * LOG2, 3 * LOG2]]


# ---------------------------------------------------------------- clip


def _clip_reference(y, p, c, pos_weight=1.0):
    """-(pw y log p' + (1 - y) log(1 - p')) with p' = min(max(p, c), 1 - c), 1 - c exact."""
    c = mpmath.mpf(c)
    p = mpmath.mpf(p)  # floats exactly; an mpf as it is
    clipped = min(max(p, c), ref.one_minus(c))
    y = mpmath.mpf(y)
    return -(pos_weight * y * mpmath.log(clipped) + ref.one_minus(y) * mpmath.log(ref.one_minus(clipped)))


def _logit(p: float) -> float:
    return float(mpmath.log(mpmath.mpf(p)) - mpmath.log(ref.one_minus(mpmath.mpf(p)))) if 0 < p < 1 else (
        math.inf if p == 1 else -math.inf)


CLIPS = [1e-300, 1e-20, 2.0**-54, 1e-16, 2.0**-52, 1e-7, 0.25]
PREDICTIONS = [0.0, 1e-310, 1e-200, 1e-30, 1e-12, 0.3, 0.5, 1 - 2.0**-30, 1 - 2.0**-53, 1.0]
LABELS = [0.0, 1.0, 0.25]


@pytest.mark.parametrize("c", CLIPS)
def test_clip_bounds_every_prediction_to_c_and_exactly_1_minus_c(c):
    y = np.repeat(LABELS, len(PREDICTIONS))
    p = np.tile(PREDICTIONS, len(LABELS))
    exact = [_clip_reference(a, b, c) for a, b in zip(y, p)]
    for labels in (y, y.astype(np.float32)):
        got = logloss.bce(labels, p, clip=c, reduction="none")
        assert ref.max_ulp_error(got, exact) <= 1, c
    # Hard labels alone take the float64 path: the same numbers.
    hard = y != 0.25
    assert ref.max_ulp_error(logloss.bce(y[hard], p[hard], clip=c, reduction="none"),
                             [e for e, h in zip(exact, hard) if h]) <= 1


@pytest.mark.parametrize("c", [1e-20, 1e-16, 1e-7, 0.25])
def test_clip_from_logits_means_the_same(c):
    z = np.array([-np.inf, -1e300, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e300, np.inf])
    for y in LABELS:
        labels = np.full(z.size, y)
        got = logloss.bce(labels, z, from_logits=True, clip=c, reduction="none")
        # sigmoid(z) at 256 bits; beyond |z| = 1e5 it is 0 or 1 as far as any clip can tell.
        exact = [_clip_reference(y, 1 / (1 + mpmath.exp(-mpmath.mpf(v))) if abs(v) < 1e5
                                 else mpmath.mpf(int(v > 0)), c) for v in z]
        assert ref.max_ulp_error(got, exact) <= 1, (c, y)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("c", [1e-20, 1e-17, 1e-7])
def test_clip_a_sample_does_not_depend_on_the_other_samples(c, from_logits):
    """The issue's example: below ~1.1e-16, 1 - c rounds to 1 and a hard-label batch gave +inf."""
    x = np.array([np.inf if from_logits else 1.0])
    alone = logloss.bce([0.0], x, clip=c, from_logits=from_logits)
    assert np.isfinite(alone)
    assert ref.ulp_error(alone, -mpmath.log(mpmath.mpf(c))) <= 0.5
    other_x = 0.0 if from_logits else 0.5
    for other in (0.0, 1.0, 0.5, 0.25):
        with_other = logloss.bce([0.0, other], np.append(x, other_x), clip=c, from_logits=from_logits,
                                 reduction="none")
        assert with_other[0] == alone, other
    for dtype in (np.float32, np.float16):
        single = logloss.bce(np.zeros(1, dtype), x.astype(dtype), clip=c, from_logits=from_logits)
        assert single == np.asarray(alone).astype(dtype)


def test_clip_is_the_same_on_every_library(foreign):
    y = np.repeat(LABELS, len(PREDICTIONS))
    p = np.tile(PREDICTIONS, len(LABELS))
    for c in (1e-20, 1e-7):
        expected = logloss.bce(y, p, clip=c, reduction="none")
        got = foreign.to_numpy(logloss.bce(foreign.asarray(y), foreign.asarray(p), clip=c, reduction="none"))
        if got.dtype == np.float64:
            assert ref.max_ulp_error(got, [_clip_reference(a, b, c) for a, b in zip(y, p)]) <= 1
        else:  # a library without float64 here: the float32 result of the same numbers
            np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=2e-7)


# ---------------------------------------------------------------- extreme weights and logits

BIG = 1 << 16  # above the chunked and kernel thresholds: the fast paths are exercised

ENGINES = ["numpy", "kernels"]  # "kernels" is the NumPy fast path where no kernel was built


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n", [2, BIG])
@pytest.mark.parametrize("w", [5e-324, 1e-310, 2.0**-1060, 1e-300, 1e300, 1e308, np.finfo(np.float64).max])
def test_extreme_equal_weights_do_not_change_a_mean(w, n, engine):
    """Equal weights cancel: the mean of log 2 is log 2 (subnormal weights gave 1.0, total
    weight beyond float64 gave 0 or NaN)."""
    y = np.arange(n) % 2 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _bce(y, np.full(n, 0.5), sample_weight=np.full(n, w), engine=engine)
    assert got == LOG2


@pytest.mark.parametrize("engine", ["numpy", "kernels"])
def test_weights_of_every_magnitude_together(engine):
    rng = np.random.default_rng(3)
    n = BIG
    y = rng.random(n) < 0.5
    p = rng.uniform(0.05, 0.95, n)
    w = np.ldexp(rng.uniform(0.5, 1, n), rng.integers(-1074, 1024, n))
    got = _bce(y, p, sample_weight=w, engine=engine)
    losses = np.where(y, -np.log(p.astype(np.longdouble)), -np.log1p(-p.astype(np.longdouble)))
    # Reference: exact rational arithmetic on the losses (each rounded once to float64).
    from fractions import Fraction

    num = sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(w, losses))
    den = sum(Fraction(float(a)) for a in w)
    assert got == pytest.approx(float(num / den), rel=1e-15)


@pytest.mark.parametrize("engine", ["numpy", "kernels"])
@pytest.mark.parametrize("z", [1e300, 1e308, np.finfo(np.float64).max])
def test_logits_near_the_float_max_on_many_samples(z, engine):
    """softplus(z) = z exactly here, so the mean of equal losses is z (OverflowError: intermediate
    overflow in fsum, before)."""
    y = np.zeros(BIG)
    assert _bce(y, np.full(BIG, z), from_logits=True, engine=engine) == z
    assert _bce(y, np.full(BIG, -z), from_logits=True, engine=engine, sample_weight=np.full(BIG, z)) == 0.0
    assert _bce(1 - y, np.full(BIG, -z), from_logits=True, engine=engine, sample_weight=np.full(BIG, 1e308)) == z
    total = _bce(y, np.full(BIG, z), from_logits=True, engine=engine, reduction="sum")
    if float(z) * BIG < float(np.finfo(np.float64).max):
        assert total == z * BIG
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a finite sum beyond float64 is +inf, not an "infinite loss"
            assert _bce(y, np.full(BIG, z), from_logits=True, engine=engine, reduction="sum") == np.inf


def test_accumulator_with_extreme_weights():
    for w in (5e-324, 1e-300, 1e300, 1.7e308):
        acc = logloss.Accumulator()
        acc.update([1.0, 0.0], [0.5, 0.5], [w, w])
        acc.update(np.arange(BIG) % 2 == 0, np.full(BIG, 0.5), np.full(BIG, w))
        assert acc.result() == LOG2, w
        again = logloss.Accumulator.from_dict(acc.to_dict())
        assert again.result() == LOG2
    tiny, huge = logloss.Accumulator(), logloss.Accumulator()
    tiny.update([1.0], [0.5], [1e-300])
    huge.update([1.0], [0.25], [1e300])
    assert tiny.merge(huge).result() == ref.to_float(-mpmath.log(mpmath.mpf(0.25)))


@pytest.mark.parametrize("weights", [[1.0], [1.0, 3.0], [1e-300, 1e-300], [1e300, 2e300], [0.5, 1.7e308]])
@pytest.mark.parametrize("p", [5e-324, 1e-320, 2.2e-310, 1e-300])
def test_accumulator_keeps_a_subnormal_weighted_mean(p, weights):
    # Weighted sums were kept in units of the largest weight's power of two, which rounded a mean
    # of 5e-324 (label 0, prediction 5e-324, weight 1) to 0.0: a perfect score that is not.
    w = np.array(weights)
    y, pred = np.zeros(w.size), np.full(w.size, p)
    loss = -mpmath.log1p(-mpmath.mpf(p))
    exact = ref.to_float(mpmath.fsum(mpmath.mpf(x) * loss for x in weights) / mpmath.fsum(map(mpmath.mpf, weights)))
    assert exact > 0
    acc = logloss.Accumulator().update(y, pred, w)
    assert acc.result() == exact
    assert logloss.Accumulator.from_dict(acc.to_dict()).result() == exact
    assert logloss.bce(y, pred, sample_weight=w) == exact
    split = logloss.Accumulator().update(y[:1], pred[:1], w[:1]).update(y[1:], pred[1:], w[1:])
    assert split.result() == exact


def test_accumulator_refuses_a_total_beyond_float64():
    acc = logloss.Accumulator(from_logits=True)
    acc.update([0.0], [1e308])
    with pytest.raises(OverflowError, match="exceeds the float64 range"):
        acc.update([0.0], [1e308])
    assert acc.count == 1 and acc.result() == 1e308  # unchanged by the refused batch


def test_array_libraries_scale_the_weights(foreign):
    y, p = foreign.asarray(np.array([1.0, 0.0])), foreign.asarray(np.array([0.5, 0.5]))
    for w in (1e-300, 1e300, 1e308):
        got = logloss.bce(y, p, sample_weight=foreign.asarray(np.array([w, w])))
        assert float(foreign.to_numpy(got)) == LOG2, w


# ---------------------------------------------------------------- precision


@pytest.mark.parametrize("weighted", [False, True])
def test_axis_reductions_are_exact(weighted):
    """A column of equal losses: the mean is that loss (naive float64 sums: thousands of ulp)."""
    n = 200_000
    p = 0.3566749439387324
    y = np.ones((n, 3))
    x = np.full((n, 3), p)
    w = np.full((n, 1), 0.1) if weighted else None
    exact = ref.bce_probability(1.0, p)
    for axis, expected_shape in ((0, (3,)), ((0,), (3,))):
        got = logloss.bce(y, x, axis=axis, sample_weight=w)
        assert got.shape == expected_shape
        assert ref.max_ulp_error(got, [exact] * 3) <= 0.5
    got = logloss.bce(y.T.copy(), x.T.copy(), axis=1, sample_weight=None if w is None else w.T)
    assert ref.max_ulp_error(got, [exact] * 3) <= 0.5
    total = logloss.bce(y, x, axis=0, reduction="sum")
    assert ref.max_ulp_error(total, [exact * n] * 3) <= 0.5


def test_axis_reductions_match_mpmath_on_random_data():
    rng = np.random.default_rng(11)
    y = (rng.random((1500, 2)) < 0.4).astype(float)
    p = rng.uniform(1e-6, 1 - 1e-6, (1500, 2))
    w = rng.uniform(0, 5, (1500, 1))
    got = logloss.bce(y, p, axis=0, sample_weight=w)
    for j in range(2):
        num = mpmath.fsum(ref.bce_probability(a, b) * mpmath.mpf(float(c)) for a, b, c in zip(y[:, j], p[:, j], w[:, 0]))
        den = mpmath.fsum(mpmath.mpf(float(c)) for c in w[:, 0])
        assert ref.ulp_error(got[j], num / den) <= 1


@pytest.mark.parametrize("from_logits", [False, True])
def test_weighted_per_element_losses_within_one_ulp(from_logits):
    """Hard float64 labels with pos_weight and sample_weight: the multiply was a second float64
    rounding (1.39 ulp)."""
    rng = np.random.default_rng(5)
    n = 3000
    y = (rng.random(n) < 0.5).astype(float)
    if from_logits:
        x = rng.normal(0, 20, n)
    else:
        x = np.exp(-rng.uniform(0, 30, n))
        x = np.where(rng.random(n) < 0.5, x, 1 - x)
    w = rng.uniform(0.1, 10, n)
    pw = rng.uniform(0.1, 10, n)
    exact_one = ref.bce_logit if from_logits else ref.bce_probability
    for kwargs in (dict(sample_weight=w), dict(pos_weight=pw), dict(sample_weight=w, pos_weight=pw)):
        got = logloss.bce(y, x, from_logits=from_logits, reduction="none", **kwargs)
        weights = kwargs.get("sample_weight", np.ones(n))
        positive = kwargs.get("pos_weight", np.ones(n))
        exact = [exact_one(a, b, c) * mpmath.mpf(float(d)) for a, b, c, d in zip(y, x, positive, weights)]
        assert ref.max_ulp_error(got, exact) <= 1, kwargs

