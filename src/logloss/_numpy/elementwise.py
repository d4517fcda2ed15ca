"""Per-element losses, entropy and KL divergence: the primitives the NumPy engine reduces.

Inputs are already validated and in the working precision (see ``_core.precision``);
the derivatives are in ``_core.derivatives``, shared with the array-API engine.
Only array-API functions are used (``xp.log``, ``xp.log1p``, ``xp.exp``,
``xp.where``, ...), so the same code serves every array library.

Conventions: ``0 * log 0 = 0``; a label that is exactly 0 or 1 selects a single
term, so an impossible prediction on the *other* term never produces ``0 * inf``.
"""

from __future__ import annotations

from .._core.precision import clip_bounds


def xlog_or_zero(xp, weight, log_value):
    """``weight * log_value`` with 0 * (-inf) = 0 (the 0 log 0 = 0 convention)."""
    return xp.where(weight == 0, xp.zeros_like(log_value), weight * log_value)


def softplus(xp, x):
    # softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation.
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))


def probability_clip_masks(xp, p, clip):
    """p < clip, and p > 1 - clip exactly (1 - p is exact for p >= 1/2, Sterbenz)."""
    return p < clip, (p >= 0.5) & ((1 - p) < clip)


def bce_from_probabilities(xp, y, p, pos_weight=None, clip=None):
    """-[pw*y*log p + (1-y)*log1p(-p)] per element; ``clip`` as in ``_core.precision.clip_bounds``."""
    # log1p(-p) keeps full precision for small p, where log(1 - p) would round 1 - p.
    minus_log_p, minus_log_q = -xp.log(p), -xp.log1p(-p)
    if clip is not None:
        minus_log_p, minus_log_q = _clip(xp, minus_log_p, minus_log_q, *probability_clip_masks(xp, p, clip), clip)
    return _combine(xp, y, minus_log_p, minus_log_q, pos_weight)


def bce_from_logits(xp, y, z, pos_weight=None, clip=None):
    """pw*y*softplus(-z) + (1-y)*softplus(z) per element; -log sigmoid(z) = softplus(-z)."""
    minus_log_p, minus_log_q = softplus(xp, -z), softplus(xp, z)
    if clip is not None:
        limit = xp.asarray(clip_bounds(clip)[4], dtype=z.dtype)
        minus_log_p, minus_log_q = _clip(xp, minus_log_p, minus_log_q, z < limit, z > -limit, clip)
    return _combine(xp, y, minus_log_p, minus_log_q, pos_weight)


def _clip(xp, minus_log_p, minus_log_q, low, high, clip):
    """The terms of clipped samples replaced by those of a prediction of exactly ``clip``
    (``low``) or ``1 - clip`` (``high``), computed in the terms' precision."""
    c = xp.asarray(clip, dtype=minus_log_p.dtype)
    at_clip, at_complement = -xp.log(c), -xp.log1p(-c)
    minus_log_p = xp.where(low, at_clip, xp.where(high, at_complement, minus_log_p))
    minus_log_q = xp.where(low, at_complement, xp.where(high, at_clip, minus_log_q))
    return minus_log_p, minus_log_q


def _combine(xp, y, minus_log_p, minus_log_q, pos_weight):
    positive = xlog_or_zero(xp, y, minus_log_p)
    if pos_weight is not None:
        positive = positive * pos_weight
    return positive + xlog_or_zero(xp, 1 - y, minus_log_q)


def log1pmx(xp, a):
    """log(1 + a) - a, accurate also where the two nearly cancel (|a| small)."""
    # With u = a / (2 + a): log1p(a) = 2 atanh(u) = 2(u + u^3/3 + u^5/5 + ...), and
    # 2u - a = -a^2 / (2 + a), so log1p(a) - a = -a^2/(2+a) + 2(u^3/3 + u^5/5 + ...).
    small = xp.abs(a) <= 0.25
    a_small = xp.where(small, a, xp.zeros_like(a))
    u = a_small / (2 + a_small)
    u2 = u * u
    series = xp.zeros_like(a)
    # |u| <= 1/7 on this branch: 12 odd terms reach below 2^-64 relative.
    for k in range(25, 1, -2):
        series = u2 * (1 / k + series)
    series = -(a_small * a_small) / (2 + a_small) + 2 * u * series
    # Away from 0 the difference loses at most a few bits; the working precision covers them.
    with_big = xp.where(small, xp.ones_like(a), a)
    direct = xp.log1p(with_big) - with_big
    return xp.where(small, series, direct)


def binary_entropy(xp, y):
    """H(y) = -y log y - (1-y) log1p(-y), in nats, with 0 log 0 = 0."""
    return -(xlog_or_zero(xp, y, xp.log(y)) + xlog_or_zero(xp, 1 - y, xp.log1p(-y)))


def binary_kl(xp, y, p):
    """KL(y || p) = y log(y/p) + (1-y) log((1-y)/(1-p)) >= 0, without cancellation near y = p."""
    # With a = (y-p)/p and b = (p-y)/(1-p): y*a + (1-y)*b = (y-p)^2 / (p(1-p)), so
    # KL = y*log1pmx(a) + (1-y)*log1pmx(b) + (y-p)^2 / (p(1-p)); the terms cancel only by ~1/2.
    interior = (y > 0) & (y < 1) & (p > 0) & (p < 1)
    one = xp.ones_like(p)
    half = one / 2
    ys = xp.where(interior, y, half)
    ps = xp.where(interior, p, half)
    d = ys - ps
    a = d / ps
    b = -d / (1 - ps)
    inside = ys * log1pmx(xp, a) + (1 - ys) * log1pmx(xp, b) + (d * d) / (ps * (1 - ps))
    # At a hard label or an impossible prediction the cross-entropy form is exact and simple.
    edge = bce_from_probabilities(xp, y, p) - binary_entropy(xp, y)
    return xp.where(interior, inside, edge)
