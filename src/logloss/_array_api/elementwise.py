"""Per-element binary cross-entropy on any array library, safe for autodiff:
every ``where`` feeds its unselected branch a safe value ("double where")."""

from __future__ import annotations

import math

from .._core import compensated
from .._core.precision import clip_bounds
from . import doubledouble
from .namespace import barrier, barrier_for, is_jax_or_tensorflow, stop_gradient



def log1p(xp, x):
    """log(1 + x); XLA's float64 log1p is off by up to 128 ulp near x = -0.4 and TensorFlow's
    by 3, while their log is accurate: q = 1 + x rounds, err = x - (q - 1) is exactly what the
    rounding lost (|x| <= 1), and log(1 + x) = log(q) + log1p(err / q) = log(q) + err / q."""
    if not is_jax_or_tensorflow(xp):
        return xp.log1p(x)
    q = barrier(xp, 1 + x)  # else XLA and Grappler simplify (1 + x) - 1 to x
    err = x - (q - 1)
    exact = err == 0  # always so at x = -1, where err / q would be 0 / 0
    return xp.log(q) + xp.where(exact, xp.zeros_like(x), err / xp.where(exact, xp.ones_like(x), q))


def softplus(xp, x, accurate=False):
    """log(1 + e^x) as hi + lo (lo: the rounding error of the final sum), derivative sigmoid(x)
    at every x, ±inf included."""
    positive = x > 0
    zero = xp.zeros_like(x)
    xp_ = xp.where(positive, x, zero)
    xn = xp.where(positive, zero, x)
    # x > 0: x + log1p(e^-x), the sum kept exactly as hi + lo; x <= 0: log1p(e^x), one term.
    hi, lo = compensated.two_sum(xp_, log1p(xp, xp.exp(-xp_)), barrier_for(xp))
    finite = positive & (hi < math.inf)
    hi = xp.where(positive, hi, log1p(xp, xp.exp(xn)))
    if accurate and doubledouble.applies(xp, x.dtype):
        # The library's exp (XLA's is up to 2 ulp off) and log1p each round: lo is what the
        # double-double value adds to hi (no gradient; hi keeps the library's derivative).
        xs, his = stop_gradient(xp, x), stop_gradient(xp, hi)
        u, u_lo = doubledouble.exp(xp, -xp.abs(xs))
        value, value_lo = doubledouble.log1p(xp, u, u_lo)
        big, big_lo = compensated.two_sum(xp.where(positive, xs, zero), value, barrier_for(xp))
        return hi, _correction(xp, xp.where(positive, big, value), xp.where(positive, big_lo + value_lo, value_lo), his)
    return hi, xp.where(finite, xp.where(finite, lo, zero), zero)


def _correction(xp, exact_hi, exact_lo, hi):
    """lo with hi + lo = exact_hi + exact_lo (exact_hi - hi is exact: they are a few ulp apart)."""
    ok = xp.isfinite(hi) & xp.isfinite(exact_hi)
    return xp.where(ok, (xp.where(ok, exact_hi, hi) - hi) + exact_lo, xp.zeros_like(hi))


def bce_probabilities(xp, y, p, pos_weight, accurate=False, clip=None):
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    low, high = probability_clip(xp, p, clip)
    if clip is not None:  # clipped samples take their terms from clip_bounds: a safe p for autodiff
        p = xp.where(low | high, one / 2, p)
    has_positive = y != 0
    has_negative = y != 1
    ps, pn = xp.where(has_positive, p, one), xp.where(has_negative, p, zero)
    minus_log_p = -xp.log(ps)
    minus_log_q = -log1p(xp, -pn)
    positive_lo = negative_lo = None
    if accurate and doubledouble.applies(xp, p.dtype):
        # The library's log rounds (TensorFlow's is up to 2 ulp off): lo is the double-double
        # value's remainder (no gradient).
        ps, pn = stop_gradient(xp, ps), stop_gradient(xp, pn)
        positive_lo = -doubledouble.log_correction(xp, ps, xp.log(ps))
        value, value_lo = doubledouble.log1p(xp, -pn, zero)
        negative_lo = _correction(xp, -value, -value_lo, stop_gradient(xp, minus_log_q))
    terms = clipped(xp, clip, low, high, minus_log_p, minus_log_q, positive_lo, negative_lo, accurate)
    return combine(xp, y, *terms[:2], pos_weight, has_positive, has_negative, *terms[2:])


def bce_logits(xp, y, z, pos_weight, accurate=False, clip=None):
    zero = xp.zeros_like(z)
    low = high = None
    if clip is not None:
        limit = clip_bounds(clip)[4]
        low, high = z < limit, z > -limit
        z = xp.where(low | high, zero, z)  # their terms come from clip_bounds: a safe z for autodiff
    has_positive = y != 0
    has_negative = y != 1
    # -log sigmoid(z) = softplus(-z) and -log sigmoid(-z) = softplus(z).
    positive, positive_lo = softplus(xp, xp.where(has_positive, -z, zero), accurate)
    negative, negative_lo = softplus(xp, xp.where(has_negative, z, zero), accurate)
    terms = clipped(xp, clip, low, high, positive, negative, positive_lo, negative_lo, accurate)
    return combine(xp, y, *terms[:2], pos_weight, has_positive, has_negative, *terms[2:])


def probability_clip(xp, p, clip):
    """p < clip, and p > 1 - clip exactly (1 - p is exact for p >= 1/2, Sterbenz)."""
    if clip is None:
        return None, None
    return p < clip, (p >= 0.5) & ((1 - p) < clip)


def clipped(xp, clip, low, high, positive, negative, positive_lo, negative_lo, accurate):
    """The terms of clipped samples replaced by those of a prediction of exactly ``clip`` (low)
    or ``1 - clip`` (high), the same numbers as on the NumPy engine (``clip_bounds``)."""
    if clip is None:
        return positive, negative, positive_lo, negative_lo
    at_clip, at_clip_lo, at_complement, at_complement_lo, _ = clip_bounds(clip)
    zero = xp.zeros_like(positive)

    def pick(value, when_low, when_high):
        return xp.where(low, zero + when_low, xp.where(high, zero + when_high, value))

    positive, negative = pick(positive, at_clip, at_complement), pick(negative, at_complement, at_clip)
    if accurate:
        positive_lo = pick(zero if positive_lo is None else positive_lo, at_clip_lo, at_complement_lo)
        negative_lo = pick(zero if negative_lo is None else negative_lo, at_complement_lo, at_clip_lo)
    return positive, negative, positive_lo, negative_lo


def combine(xp, y, positive, negative, pos_weight, has_positive, has_negative, positive_lo=None, negative_lo=None):
    """pw*y*positive + (1-y)*negative (both >= 0), with an absent term exactly 0.

    A hard label is a single term: one rounding. A soft label sums two products, carried
    exactly (TwoProduct, TwoSum) and rounded once at the end, so in float64 only the rounding
    of the two logs remains. Autodiff sees the plain formula's derivatives: the derivative of
    every error term is exactly 0 in floating point.
    """
    zero = xp.zeros_like(positive)
    plain_positive = xp.where(has_positive, y * positive, zero)
    if pos_weight is not None:
        plain_positive = plain_positive * pos_weight
    plain = plain_positive + xp.where(has_negative, (1 - y) * negative, zero)
    info = xp.finfo(positive.dtype)
    factor = compensated.SPLIT_FLOAT64 if info.bits == 64 else compensated.SPLIT_FLOAT32
    fence = barrier_for(xp)
    limit = float(info.max) / 2**30  # no overflow inside the splitting
    # Every finite term takes the exact path: a hard label with a correction (lo) or a pos_weight
    # rounds once too. Each factor must stay below the limit, not just the sum: (1 - y) * 1e300
    # can be small while splitting 1e300 overflows.
    soft = (plain < limit) & (positive < limit) & (negative < limit)
    if pos_weight is not None:
        soft = soft & (pos_weight < limit)
    ys = xp.where(soft, y, zero)
    p_term, p_error = compensated.two_product(ys, xp.where(soft, positive, zero), factor, fence)
    if positive_lo is not None:
        p_error = p_error + ys * xp.where(soft, positive_lo, zero)
    if pos_weight is not None:
        pw = xp.where(soft, pos_weight, zero)
        p_term, weighted_error = compensated.two_product(pw, p_term, factor, fence)
        p_error = weighted_error + pw * p_error
    one_minus_y = fence(1 - ys)
    one_minus_y_error = (1 - one_minus_y) - ys  # exact (Fast2Sum): 1 - y = one_minus_y + this
    negative_s = xp.where(soft, negative, zero)
    n_term, n_error = compensated.two_product(one_minus_y, negative_s, factor, fence)
    n_error = n_error + one_minus_y_error * negative_s
    if negative_lo is not None:
        n_error = n_error + one_minus_y * xp.where(soft, negative_lo, zero)
    total, sum_error = compensated.two_sum(p_term, n_term, fence)
    # (A barrier, or Grappler's AddOpsRewrite would add the small terms to total one by one.)
    return xp.where(soft, total + fence(sum_error + (p_error + n_error)), plain)


# ---------------------------------------------------------------------------------------------
# Label smoothing in float64: the smoothed label y(1 - s) + s/2 rounds, and the loss at the rounded
# label was up to 4.8 ulp from the loss at the smoothed one (NumPy, in long double, within 0.5).


def smoothed_labels(xp, y, smoothing: float, exact: bool):
    """(hi, lo): y(1 - s) + s/2 = hi + lo, lo exact to double-double (``exact``) or None."""
    one_minus = 1.0 - smoothing
    hi = y * one_minus + smoothing / 2
    if not exact:
        return hi, None
    one_minus_error = (1.0 - one_minus) - smoothing  # exact (Sterbenz): 1 - s = one_minus + this
    fence = barrier_for(xp)
    product, product_error = compensated.two_product(y, xp.zeros_like(y) + one_minus, compensated.SPLIT_FLOAT64, fence)
    total, sum_error = compensated.two_sum(product, xp.zeros_like(y) + smoothing / 2, fence)
    return total, stop_gradient(xp, sum_error + product_error + y * one_minus_error)
