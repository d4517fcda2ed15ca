"""Compiled kernels for the fast path (optional: ``pip install logloss[fast]``, i.e. numba).

Imported by ``chunked`` only on the first call large enough to use it, never by ``import logloss``.

NumPy's float64 ``log``, ``log1p`` and ``exp`` are scalar libm calls on AVX2 machines (5-9 ns per
element), and llvmlite from PyPI has no SVML, so numba's ``math.log`` is the same libm call. The
kernels below therefore write ``log`` and ``exp`` out as branch-free float64 arithmetic on the
IEEE representation (int64 bit casts, Cody-Waite reduction with a hi/lo split of ln 2, Horner
polynomials), which LLVM vectorizes (4 doubles per AVX2 instruction, FMA where written as a
product plus a sum: ``fastmath={"contract"}`` allows only that, never reassociation).

* ``log_plus(a, c)`` is ``log(a + c)`` for a normal ``a > 0`` and ``|c| <= ulp(a)``: fdlibm's
  ``log`` (``f - (hfsq - (s (hfsq + R) + k ln2_lo)))`` with ``s = f / (2 + f)``) with the
  first-order term ``c / a`` added among the small corrections, as fdlibm's ``log1p`` does.
  ``log1p(-p) = log_plus(fl(1 - p), (-p) - (fl(1 - p) - 1))``, the remainder being exact
  (Fast2Sum), so ``-log(p)`` and ``-log1p(-p)`` are both within 1 ulp (tests/numpy/test_numba_kernels.py
  measures the largest error against long double and mpmath on millions of inputs).
* ``log_term(a, c)`` is ``log_plus`` with ``c / a`` to first order only (``c 2**-k``, off by
  ``|f| c / a``, at most 2**-53 relative): six FMAs less, for sums of soft-label losses.
* ``exp_neg(x)`` is ``exp(x)`` for ``-708 <= x <= 0``, within 1.1 ulp: ``x = k ln2 + r``,
  ``|r| <= ln2 / 2``, a degree-11 polynomial and ``2**k`` built from its exponent bits. Used
  only inside sums (products of ``1 + exp(-|z|)``, ``softplus_parts``), never per element.
  ``exp_neg_short`` (degree 8, 2**-37.8) serves float32 results only.
* ``log1p_unit(e)`` is ``log(1 + e)`` for ``0 <= e <= 1`` within 0.85 ulp, with no exponent
  split: ``softplus_parts(z) = log1p_unit(exp_neg(-|z|))``.
* ``softplus_exact(s)`` is ``log(1 + exp(s))`` within 1 ulp, for ``reduction="none"`` with hard
  labels from float64 logits: ``exp_split`` carries ``exp(s)`` to ~2**-60 as scale (hi + lo), so
  ``1 + exp(s)`` reaches ``log_plus`` as an exact a + c and the log's rounding is the only one
  that counts (below ``2**-20`` a three-term series replaces the log). float32 results take
  the float64 formula with the short exp: 2**-14 of a float32 ulp before their rounding.

Each chunk of ``CHUNK`` samples (one iteration of a kernel's loop over chunks)
goes through blocks of ``BLOCK`` samples, each seen through views (``x[b:b + m]``: an offset
index ``x[b + i]`` keeps a wraparound check that costs 0.5 ns per sample). float32 logit blocks
are first copied to float64 (``_widened``). A full unweighted block is first tried as a product
block: one pass validates it and stores ``q`` (hard labels from probabilities: ``p`` for
``y = 1``, ``fl(1 - p)`` for ``y = 0``), or ``a = fl(1 - p)`` and ``y log(p / a)`` (soft labels
from probabilities, see ``_soft_probability_product``), or for logits ``1 + exp(-|z|)`` and the
label-weighted linear term ``c |z|``; the factors are multiplied by pairwise halving
(contiguous vectorized passes; for probabilities the exponents are split off exactly after 16
factors) and one ``log`` serves the 512 samples. Its rounding error is a few u per sample
(each product states its bound); the block is accepted only when that bound is below
``TOLERANCE`` = 1e-14 of the block's loss, every ``q >= 2**-60`` and ``|z| <= 708``.
Otherwise (weights, a near-perfect classifier, tiny ``q``, the last partial block) one pass computes the losses into a buffer, which a pairwise sum then adds
up, and folds every check into one "clean" condition (labels in range, the logs' arguments
normal, ``|z| <= 708``, weights finite). A block that is not clean is classified by a second
pass: an invalid input makes the whole call return a status that sends the caller to the
reference path, which reports it; otherwise the block is computed by the scalar libm formulas
of the reference path (``p`` subnormal, 0 or 1, ``|z| > 708``, infinities), and an infinite loss
sends the call to the reference path too.
A block's losses are added by pairwise halving (``_tree_sum``: 9 roundings per term), the blocks
of a chunk one after another (``CHUNK / BLOCK`` = 32 more): sums of non-negative terms, so about
45u = 5e-15 relative at most, on top of the products' 1e-14; the chunk sums are added exactly
(``math.fsum``) by the caller.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic, overload

from .._core.constants import INV_LN2, LN2, LN2_HI, LN2_LO, PRODUCT_TOLERANCE, UNIT_ROUNDOFF

# No kernel is compiled with parallel=True: numba's threading layers are either not fork-safe
# (GNU OpenMP kills a forked child that launches a kernel) or not thread-safe (workqueue aborts
# on concurrent launches from two Python threads), and TBB is one more binary dependency. The
# kernels release the GIL (nogil) and the caller spreads ranges of chunks over its own pool,
# which is rebuilt after a fork.

CHUNK = 1 << 14
BLOCK = 512
OK, REFERENCE = 0, 1  # chunk status: fine / send the call to the reference path

_FAST = {"contract"}  # FMA contraction only
_KW = dict(fastmath=_FAST, error_model="numpy", cache=True, nogil=True)
_INLINE = dict(fastmath=_FAST, error_model="numpy", cache=True, inline="always")

U = UNIT_ROUNDOFF
TOLERANCE = PRODUCT_TOLERANCE
TINY = 2.2250738585072014e-308  # smallest normal float64
SHIFTER = 6755399441055744.0  # 1.5 * 2**52: x + SHIFTER rounds x to an integer in the low bits
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of sqrt(1/2)
EXPONENT_MASK = -(1 << 52)  # 0xFFF0000000000000 as int64
EXP_LIMIT = 708.0  # exp(-708) is still normal
SOFTPLUS_LOW = -690.0  # below: exp(s) scaled by 2**k would lose low bits to subnormals
SOFTPLUS_HIGH = 34.0  # above: exp(-s) < ulp(s) / 2, so softplus(s) rounds to s
MANTISSA_MASK = (1 << 52) - 1
ONE_BITS = 1023 << 52  # bits of 1.0
PRODUCT_MIN = 2.0**-60  # 16 factors >= this multiply to >= 2**-960: no underflow
SQRT2_MINUS_1 = 0.41421356237309503


@intrinsic
def _bits(typingctx, x):
    """The int64 with the same 64 bits as the float64 x."""
    if x == types.float64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(64))
        return types.int64(types.float64), codegen
    return None


@intrinsic
def _float(typingctx, i):
    """The float64 with the same 64 bits as the int64 i."""
    if i == types.int64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.DoubleType())
        return types.float64(types.int64), codegen
    return None


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma: one vfmadd instruction on FMA hardware)."""
    if a == b == c == types.float64:
        def codegen(context, builder, signature, args):
            d = ir.DoubleType()
            fma = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
            return builder.call(fma, args)
        return types.float64(types.float64, types.float64, types.float64), codegen
    return None


def _widened(y, x, m, ybuf, xbuf):
    """(y, x) for a float64 block x, else the block's m samples copied into (ybuf, xbuf) as
    float64."""


@overload(_widened, inline="always")
def _widened_overload(y, x, m, ybuf, xbuf):
    # float32 blocks are widened in a pass of their own: a loop mixing float32 loads with the
    # float64 polynomials vectorizes worse (logit sums 2.6 against 1.9 ns per sample, one thread).
    if x.dtype == types.float64:
        return lambda y, x, m, ybuf, xbuf: (y, x)

    def widen(y, x, m, ybuf, xbuf):
        for i in range(m):
            xbuf[i] = np.float64(x[i])
            ybuf[i] = np.float64(y[i])
        return ybuf, xbuf

    return widen


@njit(**_INLINE)
def _log1p_parts(f):
    """(f**2 / 2, s (f**2 / 2 + R(s))), s = f / (2 + f): fdlibm's log1p(f) = f - (hfsq - that)
    for sqrt(1/2) - 1 <= f < sqrt(2) - 1, R its degree-14 polynomial (error < 2**-58.45)."""
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s4 * (3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01))
    t2 = s2 * (6.666666666666735130e-01 + s4 * (2.857142874366239149e-01
               + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)))
    r = t2 + t1
    return hfsq, s * (hfsq + r)


@njit(**_INLINE)
def _log_core(a, c, series):
    """log(a + c) for normal a > 0, a < 2**1022 and |c| <= ulp(a); branch-free. series (a
    constant): 2, c / a to full accuracy; 1, taken as c 2**-k (off by at most |f| c / a, 2**-53
    relative); 0, c is 0 and skipped."""
    ix = _bits(a)
    tmp = ix - SQRT_HALF_BITS
    k = tmp >> 52  # a = 2**k z with z in [sqrt(1/2), sqrt(2))
    z = _float(ix - (tmp & EXPONENT_MASK))
    # float(k) through the bits of 1.5 * 2**52 + k: AVX2 has no int64 -> float64 conversion.
    dk = _float(_bits(SHIFTER) + k) - SHIFTER
    f = z - 1.0  # exact (Sterbenz)
    hfsq, tail = _log1p_parts(f)
    small = tail + dk * LN2_LO
    if series == 2:
        # c / a = c 2**-k / (1 + f): a series in f (|f| < 0.42), no second division. Its error,
        # f**7 < 0.3% of a term below ulp(a) / 2, is far below the result's ulp.
        inverse = 1.0 + f * (-1.0 + f * (1.0 + f * (-1.0 + f * (1.0 + f * (-1.0 + f)))))
        small += c * _float((1023 - k) << 52) * inverse  # c 2**-k exact (|k| <= 1022)
    elif series == 1:
        small += c * _float((1023 - k) << 52)
    return dk * LN2_HI - ((hfsq - small) - f)


@njit(**_INLINE)
def log_plus(a, c):
    """log(a + c) for normal a > 0, a < 2**1022 and |c| <= ulp(a) within 1 ulp; branch-free."""
    return _log_core(a, c, 2)


@njit(**_INLINE)
def log_term(a, c):
    """log_plus for sums: c / a to first order only, 2**-53 relative more error, 6 FMAs less."""
    return _log_core(a, c, 1)


@njit(**_INLINE)
def exp_neg(x):
    """exp(x) for -708 <= x <= 0; branch-free."""
    kd = x * INV_LN2 + SHIFTER
    ki = _bits(kd) - _bits(SHIFTER)  # round(x / ln 2) as an integer
    kd -= SHIFTER
    r = (x - kd * LN2_HI) - kd * LN2_LO
    # exp(r) = 1 + r + r**2 q(r): q is the degree-9 near-minimax (Chebyshev) fit of
    # (exp(r) - 1 - r) / r**2 on |r| <= ln2 / 2, 1.8e-17 relative; two terms fewer than Taylor.
    q = 2.5100375832561234e-08
    q = 2.7620075879983367e-07 + r * q
    q = 2.7557268480310024e-06 + r * q
    q = 2.4801521322368692e-05 + r * q
    q = 1.9841269863040545e-04 + r * q
    q = 1.3888888917196719e-03 + r * q
    q = 8.333333333330065e-03 + r * q
    q = 4.1666666666624164e-02 + r * q
    q = 0.16666666666666669 + r * q
    q = 0.5000000000000001 + r * q
    q = r + (r * r) * q  # exp(r) - 1
    return (1.0 + q) * _float((ki + 1023) << 52)


@njit(**_INLINE)
def log1p_unit(e):
    """log(1 + e) for 0 <= e <= 1; branch-free, no bit tricks: 1 + e is in [1, 2].

    fdlibm's log1p core on an exact f: f = e (k = 0) up to sqrt(2) - 1, else
    1 + e = 2 (1 + f) with f = (e - 1) / 2 and its rounding c kept (e - 1 = d + 2c exactly),
    entering as c / (1 + f) to first order. Measured within 0.85 ulp (tests/numpy/test_numba_kernels.py)."""
    big = e > SQRT2_MINUS_1
    f = e
    k = 0.0
    c = 0.0
    if big:
        d = e - 1.0
        f = d * 0.5
        c = (e - (d + 1.0)) * 0.5  # below e = 0.5, e has bits under ulp(d)
        k = 1.0
    hfsq, tail = _log1p_parts(f)
    small = tail + (k * LN2_LO + c * (1.0 - f + f * f))
    return k * LN2_HI - ((hfsq - small) - f)


@njit(**_INLINE)
def exp_neg_short(x):
    """exp(x) for -708 <= x <= 0 within 2**-37 relative, as exp_neg with a degree-6 q (minimax
    fit, 2.7e-11): plenty for a float32 result (its ulp is 2**-23 relative), three FMAs less."""
    kd = x * INV_LN2 + SHIFTER
    ki = _bits(kd) - _bits(SHIFTER)
    kd -= SHIFTER
    r = (x - kd * LN2_HI) - kd * LN2_LO
    q = 2.4859578222625295e-05
    q = 0.0001989927395864936 + r * q
    q = 0.001388885404961482 + r * q
    q = 0.008333298483754886 + r * q
    q = 0.041666666718980845 + r * q
    q = 0.16666666718997508 + r * q
    q = 0.5 + r * q
    q = r + (r * r) * q
    return (1.0 + q) * _float((ki + 1023) << 52)


@njit(**_INLINE)
def softplus_parts(z):
    """log1p(exp(-|z|)) for |z| <= 708."""
    return log1p_unit(exp_neg(-abs(z)))


@njit(**_INLINE)
def exp_split(x):
    """(scale, hi, lo) with exp(x) = scale (hi + lo) within ~2**-60 relative and |lo| <= ulp(hi),
    for SOFTPLUS_LOW <= x < 710.

    As exp_neg, but 1 + r + (r**2 / 2 + r**3 q) is summed with its rounding errors kept (Fast2Sum
    twice, r**2 / 2 split exactly with an FMA); r**3 q, the series' tail from r**3 / 3! to
    r**15 / 15!, is below 0.008 of the result, so its own roundings cost ~2**-60. The reduced
    argument is r + r_tail exactly; r_tail (~1e-23) enters as exp(r) r_tail, exp(r) taken as hi."""
    kd = x * INV_LN2 + SHIFTER
    ki = _bits(kd) - _bits(SHIFTER)
    kd -= SHIFTER
    r_hi = x - kd * LN2_HI  # exact: kd * LN2_HI is exact and close to x (Sterbenz)
    r_lo = -kd * LN2_LO  # up to 2e-7: its square matters, so r = r_hi + r_lo is split exactly
    r = r_hi + r_lo
    v = r - r_hi
    r_tail = (r_hi - (r - v)) + (r_lo - v)  # TwoSum: |r_lo| may exceed |r_hi|
    q = 7.647163731819816e-13
    q = 1.1470745597729725e-11 + r * q
    q = 1.6059043836821613e-10 + r * q
    q = 2.08767569878681e-09 + r * q
    q = 2.505210838544172e-08 + r * q
    q = 2.755731922398589e-07 + r * q
    q = 2.7557319223985893e-06 + r * q
    q = 2.48015873015873e-05 + r * q
    q = 1.984126984126984e-04 + r * q
    q = 1.388888888888889e-03 + r * q
    q = 8.333333333333333e-03 + r * q
    q = 4.1666666666666664e-02 + r * q
    q = 0.16666666666666666 + r * q
    half = 0.5 * r
    square = half * r
    square_lo = _fma(half, r, -square)  # r**2 / 2 = square + square_lo exactly
    cube = (r * r) * (r * q)  # |cube| <= |r| / 3 * square
    t = square + cube
    t_lo = cube - (t - square)
    one = 1.0 + r
    one_lo = r - (one - 1.0)
    hi = one + t
    lo = (one_lo + (t - (hi - one))) + ((t_lo + square_lo) + r_tail * hi)
    top = hi + lo  # renormalized: lo (r_lo hi) can exceed ulp(hi)
    return _float((ki + 1023) << 52), top, lo - (top - hi)


@njit(**_INLINE)
def softplus_exact(s):
    """log(1 + exp(s)) within 1 ulp for SOFTPLUS_LOW <= s < SOFTPLUS_HIGH; branch-free.

    1 + exp(s) is formed as a + c (TwoSum of 1 and the high part, the low part added to c),
    good to ~2**-60, so log_plus's own error (< 0.9 ulp, tests/numpy/test_numba_kernels.py) is all that
    remains: one log per element, no log1p(exp(-|s|)) + max(s, 0) rounding on top."""
    scale, hi, lo = exp_split(s)
    e = hi * scale
    e_lo = lo * scale
    big = max(e, 1.0)
    small = min(e, 1.0)
    a = big + small
    logged = log_plus(a, (small - (a - big)) + e_lo)
    # Below 2**-20, log1p(e) = e - e**2 / 2 + e**3 / 3 to 2**-62: one rounding, where log_plus
    # would see 1 + e rounded to 1 + 2**-52 and a c as large as the result's leading bits.
    series = e + (e_lo - (e * e) * (0.5 - e * (1.0 / 3.0)))
    return series if e < 2.0**-20 else logged


@njit(**_INLINE)
def _tree_sum(buf, m):
    """Sum of buf[:m], m <= BLOCK, by pairwise halving; overwrites buf.

    Each pass is a contiguous loop without a carried dependency, so it vectorizes (a loop of
    running sums does not: without reassociation LLVM keeps it scalar, 0.3 ns per sample), and
    every term goes through log2(BLOCK) = 9 roundings instead of BLOCK / 4."""
    for i in range(m, BLOCK):
        buf[i] = 0.0
    half = BLOCK // 2
    while half >= 1:
        for i in range(half):
            buf[i] += buf[i + half]
        half //= 2
    return buf[0]


# ------------------------------------------------------------- scalar formulas for rare blocks


@njit(**_INLINE)
def _scalar_probability(y, p):
    """The reference formula in float64 libm: -(y log p + (1 - y) log1p(-p)), 0 log 0 = 0."""
    loss = 0.0
    if y != 0:
        loss -= y * math.log(p)
    t = 1.0 - y
    if t != 0:
        loss -= t * math.log1p(-p)
    return loss


@njit(**_INLINE)
def _softplus_libm(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(**_INLINE)
def _scalar_logit(y, z):
    loss = 0.0
    if y != 0:
        loss += y * _softplus_libm(-z)
    t = 1.0 - y
    if t != 0:
        loss += t * _softplus_libm(z)
    return loss


# ------------------------------------------------------------- one block


@njit(**_INLINE)
def _invalid(yi, xi, logits):
    """A label outside [0, 1], or x NaN (logits) or outside [0, 1] (probabilities)."""
    if logits:
        return not (xi == xi and yi >= 0.0 and yi <= 1.0)
    return not (xi >= 0.0 and xi <= 1.0 and yi >= 0.0 and yi <= 1.0)


# The loss passes below fold every check into one condition per sample and return whether
# the whole block was clean: labels in range (and 0 or 1 where the formula needs it), the log's
# arguments normal, weights finite and >= 0. One condition is cheaper than separate flags
# (0.4 ns per sample in the soft-label pass); a block that is not clean is rare, and
# _classify tells then what it was: invalid (the reference path reports it), soft labels on
# a hard-label pass (redone as soft), or values only the libm formulas handle (_rare_block).


@njit(**_INLINE)
def _weight_ok(wi):
    return wi >= 0.0 and wi < np.inf


@njit(**_INLINE)
def _hard_losses(y, p, w, weighted, m, out):
    """out[:m] = (w *) -log q, q = p (y = 1) or 1 - p (y = 0), within 1 ulp; clean when
    every label is 0 or 1, p is in [0, 1] and q is normal."""
    clean = True
    for i in range(m):
        pi = np.float64(p[i])
        yi = np.float64(y[i])
        a = 1.0 - pi
        c = -pi - (a - 1.0)  # 1 - p = a + c exactly
        if yi != 0.0:
            a = pi
            c = 0.0
        clean &= (yi == 0.0 or yi == 1.0) and pi >= 0.0 and pi <= 1.0 and a >= TINY
        loss = -log_plus(a, c)
        if weighted:
            wi = np.float64(w[i])
            clean &= _weight_ok(wi)
            loss *= wi
        out[i] = loss
    return clean


@njit(**_INLINE)
def _soft_losses(y, p, w, weighted, m, out):
    """out[:m] = (w *) -(y log p + (1 - y) log(1 - p)) for sums (log_term); clean when every
    label is in [0, 1] and p and 1 - p are normal."""
    clean = True
    for i in range(m):
        pi = np.float64(p[i])
        yi = np.float64(y[i])
        a = 1.0 - pi
        c = -pi - (a - 1.0)
        clean &= yi >= 0.0 and yi <= 1.0 and pi >= TINY and a >= TINY
        loss = -(yi * _log_core(pi, 0.0, 0) + (1.0 - yi) * log_term(a, c))
        if weighted:
            wi = np.float64(w[i])
            clean &= _weight_ok(wi)
            loss *= wi
        out[i] = loss
    return clean


@njit(**_INLINE)
def _logit_losses(y, z, w, weighted, m, out, ybuf):
    """out[:m] = (w *) L + y max(-z, 0) + (1 - y) max(z, 0), L = log1p(exp(-|z|)); clean when
    every label is in [0, 1] and |z| <= 708."""
    clean = True
    y, z = _widened(y, z, m, ybuf, out)
    for i in range(m):
        zi = np.float64(z[i])
        yi = np.float64(y[i])
        clean &= yi >= 0.0 and yi <= 1.0 and abs(zi) <= EXP_LIMIT
        loss = softplus_parts(zi) + yi * max(-zi, 0.0) + (1.0 - yi) * max(zi, 0.0)
        if weighted:
            wi = np.float64(w[i])
            clean &= _weight_ok(wi)
            loss *= wi
        out[i] = loss
    return clean


@njit(**_INLINE)
def _classify(y, x, w, weighted, m, logits):
    """(invalid, soft) for a block that was not clean: x a probability in [0, 1], or for logits
    any number but NaN; labels in [0, 1]; weights finite and >= 0."""
    invalid = False
    soft = False
    for i in range(m):
        yi = np.float64(y[i])
        invalid |= _invalid(yi, np.float64(x[i]), logits)
        soft |= yi != 0.0 and yi != 1.0
        if weighted:
            invalid |= not _weight_ok(np.float64(w[i]))
    return invalid, soft


@njit(**_INLINE)
def _tree_product(buf):
    """(E, M) with prod(buf[:BLOCK]) = 2**E M, M in [1, 2**32); BLOCK - 1 roundings of <= u each.

    Needs every factor in [PRODUCT_MIN, 2**60]: pairwise halving (each pass a contiguous,
    vectorized loop) to 32 products of 16 factors, exponents split off exactly, then 31 more
    products of mantissas in [1, 2)."""
    half = BLOCK // 2
    while half >= BLOCK // 16:  # 4 passes: 32 products of 16 factors, in [2**-960, 2**960]
        for i in range(half):
            buf[i] *= buf[i + half]
        half //= 2
    exponent = 0
    for i in range(2 * half):
        bits = _bits(buf[i])
        exponent += (bits >> 52) - 1023
        buf[i] = _float((bits & MANTISSA_MASK) | ONE_BITS)
    while half >= 1:
        for i in range(half):
            buf[i] *= buf[i + half]
        half //= 2
    return exponent, buf[0]


@njit(**_INLINE)
def _hard_probability_product(y, p, buf):
    """(invalid, soft, loss) for a full block, loss = sum of -log q as -log(prod q).

    Checks the block (labels and p in [0, 1]) in the same pass. loss is -1.0 where the product
    cannot vouch: soft labels, a q < PRODUCT_MIN, or an error bound above TOLERANCE times the
    loss (a near-perfect classifier, whose losses are tiny). q = p (y = 1, exact) or
    fl(1 - p) (y = 0, <= u relative); with the BLOCK - 1 roundings of the product the error
    is at most 2 BLOCK u absolute, plus a few u relative for the final log and sums."""
    invalid = 0
    soft = 0
    rare = 0
    for i in range(BLOCK):
        pi = np.float64(p[i])
        yi = np.float64(y[i])
        invalid |= not (pi >= 0.0 and pi <= 1.0 and yi >= 0.0 and yi <= 1.0)
        soft |= yi != 0.0 and yi != 1.0
        q = 1.0 - pi
        if yi != 0.0:
            q = pi
        rare |= not (q >= PRODUCT_MIN)
        buf[i] = q
    if invalid or soft or rare:
        return invalid, soft, -1.0
    exponent, mantissa = _tree_product(buf)
    log_m = math.log(mantissa)
    e = np.float64(exponent)
    loss = -(e * LN2_HI + (e * LN2_LO + log_m))
    bound = 2.0 * BLOCK * U + 4.0 * U * (-e * LN2 + log_m + loss)
    if not bound <= TOLERANCE * loss:
        return 0, 0, -1.0
    return 0, 0, loss


@njit(**_INLINE)
def _soft_probability_product(y, p, buf, linear):
    """(invalid, loss) for a full block of soft labels from probabilities, one log per sample.

    y log p + (1 - y) log(1 - p) = y log(p / a) + log a + (1 - y) c / a, with 1 - p = a + c
    exactly (a = fl(1 - p)): the log of 1 - p is shared by the block as log(prod a) (as in
    _hard_probability_product), and 1 / a = 1 + p / a to first order serves the c term. Per
    sample y log r, r = fl(p / a), costs one division and one log_term, where two logs were.

    Error: the division (u) and log_term (3u |log r|) in y log r, the roundings of y L and of
    the linear term (u each), the pairwise sum (9u of the sum of |linear|), the product
    (BLOCK u) and its log (4u (P + 44), P = -log(prod a)): with sum |linear| <= loss + P
    that is below u (16 loss + 20 P + 3 BLOCK). Where it exceeds TOLERANCE times the loss (y
    log r and log a cancel for confident, correct predictions), or p < TINY or a < PRODUCT_MIN,
    loss is -1.0 and the block goes sample by sample."""
    invalid = 0
    rare = 0
    y, p = _widened(y, p, BLOCK, linear, buf)  # float32: 4.4 -> 4.0 ns per sample
    for i in range(BLOCK):
        pi = np.float64(p[i])
        yi = np.float64(y[i])
        invalid |= not (pi >= 0.0 and pi <= 1.0 and yi >= 0.0 and yi <= 1.0)
        a = 1.0 - pi
        c = -pi - (a - 1.0)
        rare |= not (pi >= TINY and a >= PRODUCT_MIN)
        r = pi / a
        linear[i] = -(yi * log_term(r, 0.0)) - (1.0 - yi) * (c * (1.0 + r))
        buf[i] = a
    if invalid or rare:
        return invalid, -1.0
    exponent, mantissa = _tree_product(buf)
    e = np.float64(exponent)
    log_a = e * LN2_HI + (e * LN2_LO + math.log(mantissa))  # log(prod a) <= 0
    loss = _tree_sum(linear, BLOCK) - log_a
    bound = U * (16.0 * loss - 20.0 * log_a + 3.0 * BLOCK)
    if not bound <= TOLERANCE * loss:
        return 0, -1.0
    return 0, loss


def _logit_factors(y, z, buf, linear):
    """buf[i] = 1 + exp(-|z_i|), linear[i] = c_i |z_i| over a full block; (invalid, rare)."""


@overload(_logit_factors, inline="always")
def _logit_factors_overload(y, z, buf, linear):
    def one_pass(y, z, buf, linear):
        invalid = 0
        rare = 0
        for i in range(BLOCK):
            zi = np.float64(z[i])
            yi = np.float64(y[i])
            invalid |= not (zi == zi and yi >= 0.0 and yi <= 1.0)
            a = abs(zi)
            rare |= not (a <= EXP_LIMIT)
            linear[i] = _fma(-yi, zi, max(zi, 0.0))  # (1 - y) z or y |z|, one rounding
            buf[i] = 1.0 + exp_neg(-min(a, EXP_LIMIT))
        return invalid, rare

    def two_passes(y, z, buf, linear):
        # |z| goes to buf in float64 first, so the exp pass reads one float64 array (see
        # _widened): float32 2.1 -> 1.9 ns per sample, where float64 would lose 1.9 -> 2.1.
        invalid = 0
        for i in range(BLOCK):
            zi = np.float64(z[i])
            yi = np.float64(y[i])
            invalid |= not (zi == zi and yi >= 0.0 and yi <= 1.0)
            linear[i] = _fma(-yi, zi, max(zi, 0.0))
            buf[i] = abs(zi)
        rare = 0
        for i in range(BLOCK):
            a = buf[i]
            rare |= not (a <= EXP_LIMIT)
            buf[i] = 1.0 + exp_neg(-min(a, EXP_LIMIT))
        return invalid, rare

    return one_pass if z.dtype == types.float64 else two_passes


@njit(**_INLINE)
def _logit_product(y, z, buf, linear):
    """(invalid, 0, loss) for a full block, loss = sum of y softplus(-z) + (1 - y) softplus(z),
    and -1.0 where the product cannot vouch (|z| > 708, error bound).

    Per sample the loss is l + c |z| with l = log(1 + exp(-|z|)) and c = y for z <= 0, 1 - y
    for z > 0: the labels only weight the linear term, so hard and soft labels alike take one
    log per block. The factors 1 + exp(-|z|) are in (1, 2], so BLOCK of them cannot overflow.
    Per sample: exp within 1.1 ulp (<= 1.1u absolute in the log, e / (1 + e) <= 1/2), 1 + e
    rounded (u) and the product (u): |error| <= 4 BLOCK u, accepted when below TOLERANCE times
    the block's loss; c |z| = max(z, 0) - y z is non-negative and rounded once (an FMA)."""
    invalid, rare = _logit_factors(y, z, buf, linear)
    if invalid or rare:
        return invalid, 0, -1.0
    half = BLOCK // 2
    while half >= 1:
        for i in range(half):
            buf[i] *= buf[i + half]
        half //= 2
    loss = _tree_sum(linear, BLOCK) + math.log(buf[0])
    bound = 4.0 * BLOCK * U + 4.0 * U * loss
    if not bound <= TOLERANCE * loss:
        return 0, 0, -1.0
    return 0, 0, loss


@njit(**_INLINE)
def _rare_block(y, x, w, weighted, m, logits, out):
    """The block by the libm formulas; REFERENCE if a loss is infinite (or NaN), else OK."""
    for i in range(m):
        yi = np.float64(y[i])
        xi = np.float64(x[i])
        loss = _scalar_logit(yi, xi) if logits else _scalar_probability(yi, xi)
        if not (loss < np.inf):
            return REFERENCE  # an infinite loss, even with weight 0: the reference path decides
        if weighted:
            wi = np.float64(w[i])
            loss = 0.0 if wi == 0 else loss * wi
        out[i] = loss
    return OK


def _make_sums(weighted, logits):
    """The loop over chunks for one mode. `weighted` and `logits` are closure constants,
    so numba prunes the other modes' branches before inlining: each kernel compiles only its own
    block code (7-17 s per kernel and dtype pair; every call site is inlined, so each block
    function is called from one place)."""

    @njit(**_INLINE)
    def _chunk(y, x, w, lo, hi, buf, buf2):
        """(sum of losses, sum of weights, status) over [lo, hi)."""
        total = 0.0
        weight = 0.0
        first = np.float64(y[lo])
        soft = 0 if first == 0.0 or first == 1.0 else 1  # a guess: it only picks the first path
        for b in range(lo, hi, BLOCK):
            m = min(BLOCK, hi - b)
            # Views, not y[b + i]: an offset index costs a wraparound check LLVM cannot drop
            # (0.5 ns per sample in the soft-label pass).
            yb = y[b:b + m]
            xb = x[b:b + m]
            wb = w[b:b + m] if weighted else w
            # Try a product (which checks the block in the same pass): from probabilities the
            # soft-label one once a block had soft labels (data is usually all soft or all hard),
            # else the hard-label one; from logits one product serves both.
            # Each block function below is called from one place only: numba inlines every call
            # site, and the second call sites of the soft passes cost 7 s of compile (24 -> 17 s).
            if not weighted and m == BLOCK:
                if logits:
                    invalid, soft, loss = _logit_product(yb, xb, buf, buf2)
                elif soft:
                    invalid, loss = _soft_probability_product(yb, xb, buf, buf2)
                else:  # finds soft labels too: that block then takes the soft pass below
                    invalid, soft, loss = _hard_probability_product(yb, xb, buf)
                if invalid:
                    return 0.0, 0.0, REFERENCE
                if loss >= 0.0:
                    total += loss
                    continue
            if logits:
                clean = _logit_losses(yb, xb, wb, weighted, m, buf, buf2)
            else:
                clean = False
                if not soft:
                    clean = _hard_losses(yb, xb, wb, weighted, m, buf)
                    if not clean:  # soft labels (the first soft block after hard ones)?
                        invalid, soft = _classify(yb, xb, wb, weighted, m, False)
                        if invalid:
                            return 0.0, 0.0, REFERENCE
                if soft:
                    clean = _soft_losses(yb, xb, wb, weighted, m, buf)
            if not clean:
                invalid, _ = _classify(yb, xb, wb, weighted, m, logits)
                if invalid:
                    return 0.0, 0.0, REFERENCE
            # A block with values only libm handles; with weights, a zero weight must drop its
            # sample even where the loss is infinite (0 * inf is NaN in the fast formulas).
            block_sum = _tree_sum(buf, m) if clean else np.nan
            if not block_sum < np.inf:
                if _rare_block(yb, xb, wb, weighted, m, logits, buf) != OK:
                    return 0.0, 0.0, REFERENCE
                block_sum = _tree_sum(buf, m)
            total += block_sum
            if weighted:
                a0 = 0.0
                for i in range(m):
                    a0 += np.float64(wb[i])
                weight += a0
        if not weighted:
            weight = np.float64(hi - lo)
        return total, weight, OK

    @njit(**_INLINE)
    def _sums(y, x, w, totals, weights, status):
        n = x.size
        for c in range(totals.size):
            lo = c * CHUNK
            hi = min(lo + CHUNK, n)
            buf = np.empty(BLOCK)
            buf2 = np.empty(BLOCK)
            totals[c], weights[c], status[c] = _chunk(y, x, w, lo, hi, buf, buf2)

    return _sums


_probability_sums = _make_sums(False, False)
_weighted_probability_sums = _make_sums(True, False)
_logit_sums = _make_sums(False, True)
_weighted_logit_sums = _make_sums(True, True)


# One compiled function per mode.
@njit(**_KW)
def probability_sums(y, p, totals, weights, status):
    """Per chunk of CHUNK samples: the sum of losses, of weights, and a status."""
    _probability_sums(y, p, np.empty(0), totals, weights, status)


@njit(**_KW)
def weighted_probability_sums(y, p, w, totals, weights, status):
    _weighted_probability_sums(y, p, w, totals, weights, status)


@njit(**_KW)
def logit_sums(y, z, totals, weights, status):
    _logit_sums(y, z, np.empty(0), totals, weights, status)


@njit(**_KW)
def weighted_logit_sums(y, z, w, totals, weights, status):
    _weighted_logit_sums(y, z, w, totals, weights, status)


@njit(**_KW)
def hard_probability_losses(y, p, out, status):
    """out = -log q per sample (q = p for y = 1, 1 - p for y = 0), each within 1 ulp."""
    n = p.size
    empty = np.empty(0)
    for c in range(status.size):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        buf = np.empty(BLOCK)
        st = OK
        for b in range(lo, hi, BLOCK):
            m = min(BLOCK, hi - b)
            yb = y[b:b + m]
            pb = p[b:b + m]
            if not _hard_losses(yb, pb, empty, False, m, buf):
                invalid, soft = _classify(yb, pb, empty, False, m, False)
                if invalid or soft or _rare_block(yb, pb, empty, False, m, False, buf) != OK:
                    st = REFERENCE
                    break
            ob = out[b:b + m]
            for i in range(m):
                ob[i] = buf[i]
        status[c] = st


def _softplus_to(out, s):
    """softplus(s), SOFTPLUS_LOW <= s <= SOFTPLUS_HIGH, as accurate as out's dtype needs."""


@overload(_softplus_to, inline="always")
def _softplus_to_overload(out, s):
    if out.dtype == types.float32:
        # The float64 formula with the short exp is within 2**-37 relative, 2**-14 of a float32
        # ulp: rounded to float32 it is within 1 ulp (0.5 + 2**-14), at 2/3 of the cost.
        return lambda out, s: max(s, 0.0) + log1p_unit(exp_neg_short(-abs(s)))
    return lambda out, s: softplus_exact(s)


def _staged(out, buf):
    """Where a block of losses bound for out is computed: out itself if float64, else buf,
    copied to out by _unstage once the block is done."""


@overload(_staged, inline="always")
def _staged_overload(out, buf):
    if out.dtype == types.float64:
        return lambda out, buf: out
    return lambda out, buf: buf


def _unstage(out, m, buf):
    """out[:m] = buf[:m] rounded to out's dtype, unless out was the target itself."""


@overload(_unstage, inline="always")
def _unstage_overload(out, m, buf):
    if out.dtype == types.float64:
        return lambda out, m, buf: None

    def unstage(out, m, buf):
        for i in range(m):
            out[i] = buf[i]

    return unstage


@njit(**_INLINE)
def _hard_logit_block(y, z, m, out, sbuf):
    """out[:m] = softplus(s), s = z (y = 0) or -z (y = 1); clean when every label is 0 or 1 and
    SOFTPLUS_LOW <= s < inf (else the caller classifies the block and redoes it).

    A first pass forms s in float64 (sbuf), so the softplus pass reads one float64 array
    whatever the input dtypes (see _widened); float32 results are computed in sbuf too and
    rounded at the end. Branch-free: s is clamped into softplus_exact's domain and the result
    replaced by s above SOFTPLUS_HIGH."""
    clean = True
    for i in range(m):
        zi = np.float64(z[i])
        yi = np.float64(y[i])
        clean &= yi == 0.0 or yi == 1.0
        sbuf[i] = -zi if yi != 0.0 else zi
    target = _staged(out, sbuf)
    for i in range(m):
        s = sbuf[i]
        clean &= s >= SOFTPLUS_LOW and s < np.inf
        loss = _softplus_to(out, min(max(s, SOFTPLUS_LOW), SOFTPLUS_HIGH))
        if s >= SOFTPLUS_HIGH:
            loss = s
        target[i] = loss
    _unstage(out, m, sbuf)
    return clean


@njit(**_KW)
def hard_logit_losses(y, z, out, status):
    """out = softplus(-z) for y = 1, softplus(z) for y = 0, each within 1 ulp (float64 or float32 out).

    status per chunk: REFERENCE for soft labels, NaN, labels outside [0, 1] or an infinite loss
    (the reference path reports those), else OK. Below SOFTPLUS_LOW, softplus(s) = exp(s) to
    far below an ulp, and libm's exp is used for it (subnormal results included)."""
    n = z.size
    empty = np.empty(0)
    for c in range(status.size):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        sbuf = np.empty(BLOCK)
        st = OK
        for b in range(lo, hi, BLOCK):
            m = min(BLOCK, hi - b)
            yb = y[b:b + m]
            zb = z[b:b + m]
            if not _hard_logit_block(yb, zb, m, out[b:b + m], sbuf):
                invalid, soft = _classify(yb, zb, empty, False, m, True)
                if invalid or soft:
                    st = REFERENCE
                    break
                for i in range(b, b + m):
                    s = np.float64(z[i])
                    if y[i] != 0:
                        s = -s
                    if s == np.inf:
                        st = REFERENCE
                    elif s < SOFTPLUS_LOW:
                        out[i] = math.exp(s)
                if st != OK:
                    break
        status[c] = st


# ------------------------------------------------------------- the bare functions, for tests


@njit(**_KW)
def vector_log(a, c, out):
    for i in range(a.size):
        out[i] = log_plus(a[i], c[i])


@njit(**_KW)
def vector_log1p_neg(p, out):
    """log1p(-p) for 0 <= p < 1 (1 - p normal)."""
    for i in range(p.size):
        a = 1.0 - p[i]
        out[i] = log_plus(a, -p[i] - (a - 1.0))


@njit(**_KW)
def vector_log_term_1p_neg(p, out):
    """log1p(-p) through log_term, for 0 <= p < 1 (1 - p normal)."""
    for i in range(p.size):
        a = 1.0 - p[i]
        out[i] = log_term(a, -p[i] - (a - 1.0))


@njit(**_KW)
def vector_log1p_unit(e, out):
    for i in range(e.size):
        out[i] = log1p_unit(e[i])


@njit(**_KW)
def vector_exp(x, out):
    for i in range(x.size):
        out[i] = exp_neg(x[i])


@njit(**_KW)
def vector_exp_short(x, out):
    for i in range(x.size):
        out[i] = exp_neg_short(x[i])


@njit(**_KW)
def vector_softplus_exact(s, out):
    """softplus(s) for SOFTPLUS_LOW <= s < SOFTPLUS_HIGH."""
    for i in range(s.size):
        out[i] = softplus_exact(s[i])


@njit(**_KW)
def vector_softplus(z, out):
    for i in range(z.size):
        out[i] = softplus_parts(z[i]) + max(z[i], 0.0)
