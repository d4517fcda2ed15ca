"""Accurate float64 log and exp on every array library, built from its own + - * / ops.

The library's float64 ``log`` and ``exp`` each round (XLA's ``exp``, on JAX and TensorFlow, and
TensorFlow's ``log`` are up to 2 ulp from correctly rounded), and a loss built on them can be
2 ulp off. Here each is carried as a double-double ``hi + lo`` whose error is far below an ulp
(measured against mpmath: ``log`` and ``log1p`` 0.05 ulp, ``exp`` 0.03 ulp where ``lo`` is
normal), so the loss, summed exactly in ``elementwise.combine``, is rounded once:

* ``exp``: Cody–Waite reduction ``x = n ln2 + r`` with ``ln2`` split in two (``n ln2_hi`` and
  ``x - n ln2_hi`` exact), ``e^r - 1 = r + r^2/2 + r^3 P(r)`` with ``r^2`` exact (Dekker's
  TwoProduct) and the Taylor tail to ``r^16`` in plain float64 (relative 2^-58), scaled by
  an exact ``2^n``.
* ``log``: one Newton step from the library's ``log``: with ``e^y0 = 2^n (1 + m)``,
  ``log x = y0 + log1p(d)``, ``d = (x 2^-n - 1 - m) / (1 + m)``, where ``x 2^-n - 1`` is exact
  and ``|d|`` a few ulp, so ``log1p(d) = d``. Near ``x = 1`` (``n = 0``) ``m`` is accurate
  relative to itself, so the result is accurate relative to ``log x``.
* ``log1p(a)`` for a double-double ``a``: ``q = 1 + a`` rounded, ``t = (1 + a - q) / q`` exact
  to double-double, ``log1p(a) = log q + t - t^2/2``.

These are values only: callers take ``stop_gradient`` of the input, and add ``lo`` to the
library's own (differentiable) value, so autodiff sees the analytic derivative.

Compilers: XLA (``jax.jit``) and Grappler (``tf.function``) simplify ``(1 + x) - 1`` to ``x``
and regroup sums, which zeroes error terms; every rounded sum an error term is taken from
passes a barrier (``namespace.barrier_for``: ``optimization_barrier``, ``ensure_shape``) they do not look through.
"""

from __future__ import annotations

import math

import numpy as np

from .._core import compensated
from .._core.constants import INV_LN2, LN2_HI, LN2_LO
from .namespace import barrier_for, from_bits

_TAYLOR = [1.0 / math.factorial(k) for k in range(3, 17)]  # r^3/3! .. r^16/16!


def applies(xp, dtype) -> bool:
    """Whether to carry ``log``/``exp`` as double-doubles: float64 work, on every library."""
    return dtype == xp.float64














def _power_of_two(xp, n):
    """2^n for integer-valued float n with |n| < 1023, exactly: on the IEEE bits where the
    library can reinterpret them, else as the product of 2^(±2^b) over the bits b of |n|."""
    integer = n.astype(np.int64) if isinstance(n, np.ndarray) else xp.astype(n, xp.int64)
    bits = from_bits(xp, (integer + 1023) * 4503599627370496)  # << 52
    if bits is not None:
        return bits
    negative = n < 0
    rest = xp.abs(n)
    one = xp.ones_like(n)
    zero = xp.zeros_like(n)
    result = one
    for b in range(9, -1, -1):
        bit = rest >= 2.0**b
        rest = rest - xp.where(bit, one * 2.0**b, zero)
        factor = xp.where(negative, one * 2.0 ** -(2**b), one * 2.0 ** (2**b))
        result = result * xp.where(bit, factor, one)
    return result




def _expm1_reduced(xp, r, r_err):
    """e^(r + r_err) - 1 as (hi, lo) for |r| <= 0.35, accurate relative to the result."""
    tail = xp.zeros_like(r) + _TAYLOR[-1]
    for c in reversed(_TAYLOR[:-1]):
        tail = tail * r + c
    sq, sq_err = compensated.two_product(r, r, barrier=barrier_for(xp))
    tail = tail * (sq * r)  # r^3 (1/3! + r/4! + ...)
    hi, lo = compensated.two_sum(r, sq * 0.5, barrier_for(xp))
    lo = lo + (sq_err * 0.5 + (tail + (r_err + r * r_err)))
    return compensated.fast_two_sum(hi, lo, barrier_for(xp))


def _reduce(xp, x):
    """x = n ln2 + r + r_err, |r| <= 0.35 (x finite, |x| < 2100)."""
    n = xp.round(x * INV_LN2)
    r_hi = x - n * LN2_HI  # exact
    r, r_err = compensated.two_sum(r_hi, -(n * LN2_LO), barrier_for(xp))
    return n, r, r_err


def exp(xp, x):
    """e^x as (hi, lo) for x <= 0 (subnormal results flush where the library flushes)."""
    xc = xp.where(x > -800.0, x, xp.zeros_like(x) - 800.0)
    n, r, r_err = _reduce(xp, xc)
    m, m_lo = _expm1_reduced(xp, r, r_err)
    hi, lo = compensated.two_sum(xp.ones_like(m), m, barrier_for(xp))
    hi, lo = compensated.fast_two_sum(hi, lo + m_lo, barrier_for(xp))
    first = xp.round(n * 0.5)
    s1, s2 = _power_of_two(xp, first), _power_of_two(xp, n - first)
    hi, lo = hi * s1 * s2, lo * s1 * s2
    zero = xp.zeros_like(x)
    gone = x <= -800.0
    return xp.where(gone, zero, hi), xp.where(gone, zero, lo)


def log_correction(xp, x, y0):
    """lo with log(x) = y0 + lo far below an ulp, given the library's y0 = log(x) (x > 0 finite
    normal; 0 elsewhere)."""
    ok = (x > 0) & (x < math.inf) & (y0 > -math.inf) & (y0 < math.inf)
    xs = xp.where(ok, x, xp.ones_like(x))
    y = xp.where(ok, y0, xp.zeros_like(y0))
    n, r, r_err = _reduce(xp, y)
    m, m_lo = _expm1_reduced(xp, r, r_err)
    first = xp.round(n * 0.5)
    scaled = xs * _power_of_two(xp, -first) * _power_of_two(xp, first - n)  # x 2^-n, exact
    d = ((scaled - 1) - m) - m_lo
    return xp.where(ok, d / (1 + m), xp.zeros_like(x))


def log(xp, x):
    """log(x) as (hi, lo): hi is the library's log (x >= 0)."""
    y0 = xp.log(x)
    return y0, log_correction(xp, x, y0)


def log1p(xp, a, a_lo):
    """log(1 + a + a_lo) as (hi, lo) for -1 <= a <= 1, |a_lo| <= ulp(a) (a double-double)."""
    q, e = compensated.two_sum(xp.ones_like(a), a, barrier_for(xp))
    s, s_lo = compensated.two_sum(e, a_lo, barrier_for(xp))
    t = s / q
    p, p_err = compensated.two_product(t, q, barrier=barrier_for(xp))
    t_lo = (((s - p) - p_err) + s_lo) / q
    lq, lq_lo = log(xp, q)
    hi, lo = compensated.two_sum(lq, t, barrier_for(xp))
    lo = lo + (lq_lo + (t_lo - 0.5 * t * t))
    finite = q > 0
    zero = xp.zeros_like(a)
    return xp.where(finite, hi, lq), xp.where(finite, lo, zero)
