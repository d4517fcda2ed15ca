"""Independent references: the textbook formulas evaluated by mpmath at 256 bits.

Nothing here calls logloss. Inputs are floats, converted exactly to mpf.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

mp = mpmath.mp
mp.prec = 256


def _mpf(x) -> mpmath.mpf:
    # Floats convert exactly; mpf inputs (mpmath.diff's probe points) are kept as they are.
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def one_minus(x: mpmath.mpf) -> mpmath.mpf:
    """1 - x exactly (at whatever precision that takes): 1 - 1e-300 must not round to 1."""
    return mpmath.fsub(1, x, exact=True)


def bce_probability(y, p, pos_weight=1.0) -> mpmath.mpf:
    """-[pw*y*ln p + (1-y)*ln(1-p)], with 0*ln 0 = 0."""
    y, p, pw = _mpf(y), _mpf(p), _mpf(pos_weight)
    total = mpmath.mpf(0)
    if y != 0:
        total -= pw * y * (mpmath.log(p) if p > 0 else mpmath.mpf("-inf"))
    if y != 1:
        total -= one_minus(y) * (mpmath.log(one_minus(p)) if p < 1 else mpmath.mpf("-inf"))
    return total


def _log_sigmoid(z: mpmath.mpf) -> mpmath.mpf:
    """ln(1 / (1 + e^-z)), written as ln of the ratio, not as softplus."""
    if mpmath.isinf(z):
        return mpmath.mpf(0) if z > 0 else mpmath.mpf("-inf")
    if z < -1e5:  # e^-z beyond mpmath's comfortable range: ln sigmoid(z) = z - ln(1 + e^z)
        return z - mpmath.log1p(mpmath.exp(z))
    e = mpmath.exp(-z)
    if e < mpmath.mpf(2) ** -2000:  # ln(1 + e) = e - e^2/2 + ..., exact far below 2^-256 relative
        return -(e - e * e / 2)
    return -mpmath.log(mpmath.fadd(1, e, exact=True) if e < 1 else 1 + e)


def bce_logit(y, z, pos_weight=1.0) -> mpmath.mpf:
    """-[pw*y*ln sigmoid(z) + (1-y)*ln sigmoid(-z)]."""
    y, z, pw = _mpf(y), _mpf(z), _mpf(pos_weight)
    total = mpmath.mpf(0)
    if y != 0:
        total -= pw * y * _log_sigmoid(z)
    if y != 1:
        total -= one_minus(y) * _log_sigmoid(-z)
    return total


def entropy(y) -> mpmath.mpf:
    y = _mpf(y)
    return sum((-t * mpmath.log(t) for t in (y, one_minus(y)) if t > 0), mpmath.mpf(0))


def kl(y, p) -> mpmath.mpf:
    y, p = _mpf(y), _mpf(p)
    total = mpmath.mpf(0)
    for a, b in ((y, p), (one_minus(y), one_minus(p))):
        if a > 0:
            total += a * (mpmath.log(a) - mpmath.log(b)) if b > 0 else mpmath.mpf("inf")
    return total


def to_float(value: mpmath.mpf) -> float:
    return float(value) if mpmath.isfinite(value) else (math.inf if value > 0 else -math.inf)


def ulp_error(computed, exact: mpmath.mpf, dtype=np.float64) -> float:
    """|computed - exact| in units of the last place of `exact` rounded to `dtype`."""
    computed = float(computed)
    if not mpmath.isfinite(exact):
        return 0.0 if computed == to_float(exact) else math.inf
    if math.isinf(computed) or math.isnan(computed):
        return math.inf
    magnitude = abs(to_float(exact))
    if dtype is np.float64:
        spacing = math.ulp(magnitude)
    else:
        with np.errstate(over="ignore"):
            spacing = float(np.spacing(dtype(magnitude)))
    if spacing == 0 or not math.isfinite(spacing):
        spacing = float(np.finfo(dtype).smallest_subnormal)
    return float(abs(mpmath.mpf(computed) - exact) / mpmath.mpf(spacing))


def max_ulp_error(computed, exact_values, dtype=np.float64) -> float:
    return max(ulp_error(c, e, dtype) for c, e in zip(np.ravel(computed), exact_values))
