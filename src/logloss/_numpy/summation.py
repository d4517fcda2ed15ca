"""Exact weighted sums for the reference path: no overflow, no underflow, one rounding.

Where the platform has an extended ``long double`` (x86-64: 64-bit significand, 15-bit exponent),
each term ``w * L`` of float64 (or long double) factors is formed and added in it: its exponent
range holds any product of float64s (subnormal weights included) and any sum of them, so
nothing over- or underflows, and NumPy's pairwise summation along a contiguous axis keeps the
error near ``log2(n) 2**-64``, far below a float64 ulp, ``axis=`` included.

Elsewhere each term is carried as ``m * 2**E`` (``frexp`` of each factor: ``m`` in [1/4, 1), ``E``
an int64), scaled by ``2**-max(E)`` per output (exact: a term that then underflows is below
2**-1022 of the largest and cannot matter) and added by a pairwise tree of TwoSums. Both ways
the result is rounded once, and a mean is formed before it is brought back to a float, so a
total weight beyond float64's range still gives the right mean.
"""

from __future__ import annotations

import math

import numpy as np

from .._core.checks import check_total_weight
from .._core.compensated import two_product, two_sum
from .._core.reduction import apply_weight


def scaled_terms(losses: np.ndarray, weight: np.ndarray | None):
    """(m, m_lo, E) with ``weight * losses = (m + m_lo) * 2**E`` exactly, elementwise (TwoProduct
    of the two mantissas); a zero weight gives 0 even for an infinite loss (it removes the
    sample), an infinite loss with weight > 0 gives m = inf."""
    m, e = np.frexp(losses)
    e = e.astype(np.int64)
    if weight is None:
        return m, np.zeros_like(m), e
    weight = np.broadcast_to(weight, losses.shape)
    mw, ew = np.frexp(weight.astype(losses.dtype, copy=False))
    removed = weight == 0
    with np.errstate(invalid="ignore"):
        product, low = two_product(m, mw)
        m = np.where(removed, 0, product)
        low = np.where(removed | ~np.isfinite(product), 0, low)
    e = np.where(removed, 0, e + ew)
    return m, low, e


def _tree_sum(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum over the last axis by pairwise TwoSums: (hi, the sum of every rounding error)."""
    errors = np.zeros(values.shape[:-1], dtype=values.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        while values.shape[-1] > 1:
            half = values.shape[-1] // 2
            s, e = two_sum(values[..., :half], values[..., half:2 * half])
            if values.shape[-1] % 2:
                s[..., -1], carry = two_sum(s[..., -1], values[..., -1])
                e[..., -1] += carry
            errors += np.sum(e, axis=-1)
            values = s
    if values.shape[-1] == 0:
        return errors, np.zeros_like(errors)
    total = values[..., 0]
    # inf - inf in the errors of an infinite sum is NaN: the sum is inf, without correction.
    return total, np.where(np.isfinite(total), errors, 0)


def exact_sum(m: np.ndarray, low: np.ndarray, e: np.ndarray, axes: tuple[int, ...] | None):
    """(S, S_lo, E) with ``sum((m + low) * 2**e)`` over ``axes`` (all when None) equal to
    ``(S + S_lo) * 2**E`` to far below an ulp of S."""
    if axes is None:
        axes = tuple(range(m.ndim))
    keep = [a for a in range(m.ndim) if a not in axes]
    out_shape = tuple(m.shape[a] for a in keep)
    order = keep + list(axes)
    rows = int(np.prod(out_shape, dtype=np.int64))

    def flat(a):
        return np.ascontiguousarray(np.transpose(a, order)).reshape(rows, -1)

    m, low, e = flat(m), flat(low), flat(e)
    present = m != 0
    top = np.max(np.where(present, e, np.iinfo(np.int64).min), axis=-1, initial=np.iinfo(np.int64).min)
    top = np.where(np.any(present, axis=-1), top, 0)
    with np.errstate(under="ignore"):
        # e - top <= 0; far below it, a term flushes to 0 or a subnormal: < 2**-1022 of the top.
        shift = np.maximum(e - top[:, None], -2000).astype(np.int32)
        hi, errors = _tree_sum(np.ldexp(m, shift))
        lo = errors + np.sum(np.ldexp(low, shift), axis=-1)
    return hi.reshape(out_shape), lo.reshape(out_shape), top.reshape(out_shape)


def _divide(a_hi, a_lo, b_hi, b_lo):
    """(a_hi + a_lo) / (b_hi + b_lo) rounded about once (one Newton step on the remainder)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        q = a_hi / b_hi
        p, e = two_product(q, b_hi)
        r = (((a_hi - p) - e) + a_lo - q * b_lo) / b_hi
        return np.where(np.isfinite(q) & np.isfinite(r), q + r, q)


def to_float(s: np.ndarray, e: np.ndarray):
    """``s * 2**e`` in the dtype of ``s``: inf beyond its range (the correctly rounded value)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(s, np.clip(e, -20000, 20000).astype(np.int32))


def _extended() -> np.dtype | None:
    """long double when it has the range and precision used here, else None."""
    info = np.finfo(np.longdouble)
    return np.dtype(np.longdouble) if info.nmant >= 63 and info.maxexp >= 16384 else None


def _contiguous_sum(values: np.ndarray, axes) -> np.ndarray:
    """Pairwise sum over ``axes``, moved last and made contiguous (NumPy sums a strided axis
    one term after another: 183 ulp on (500000, 2) with axis=0)."""
    if axes is None:
        return np.sum(values.reshape(-1))
    keep = [a for a in range(values.ndim) if a not in axes]
    moved = np.transpose(values, keep + list(axes))
    shape = moved.shape[:len(keep)]
    return np.sum(np.ascontiguousarray(moved).reshape(shape + (-1,)), axis=-1)


def _weighted_terms(losses: np.ndarray, weight: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """``weight * losses`` in ``dtype`` (``weight`` already broadcast and in ``dtype``)."""
    if weight is None:
        return losses.astype(dtype, copy=False)
    if losses.size and np.isinf(np.max(losses)):  # losses >= 0: max is inf iff one is
        return apply_weight(np, losses.astype(dtype, copy=False), weight)  # w = 0 removes an inf
    return np.multiply(losses, weight, dtype=dtype)


def weighted_reduction(losses: np.ndarray, weight: np.ndarray | None, reduction: str, axes):
    """'sum' or 'mean' of ``weight * losses`` over ``axes``, exactly; for a mean also the total
    weight, which is 0 exactly when every weight is 0. Results are in the extended or the
    losses' precision, for the caller to round once."""
    extended = _extended()
    if extended is None:
        return _portable_reduction(losses, weight, reduction, axes)
    if weight is not None:
        weight = np.broadcast_to(weight, losses.shape).astype(extended)
    total = _contiguous_sum(_weighted_terms(losses, weight, extended), axes)
    if reduction == "sum":
        return total, None
    if weight is None:
        count = losses.size if axes is None else int(np.prod([losses.shape[a] for a in axes]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count, None
    total_weight = _contiguous_sum(weight, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / total_weight, total_weight


def _portable_reduction(losses, weight, reduction, axes):
    s, s_lo, top = exact_sum(*scaled_terms(losses, weight), axes)
    if reduction == "sum":
        return to_float(s + s_lo, top), None
    if weight is None:
        count = losses.size if axes is None else int(np.prod([losses.shape[a] for a in axes]))
        return to_float(_divide(s, s_lo, np.float64(count), 0.0), top), None
    w, w_lo, wtop = exact_sum(*scaled_terms(np.broadcast_to(weight, losses.shape).astype(losses.dtype), None), axes)
    return to_float(_divide(s, s_lo, w, w_lo), top - wtop), w


def reduce(losses: np.ndarray, weight: np.ndarray | None, reduction: str, axes):
    """The NumPy engine's reduction: 'none' (weighted losses, in the working precision), or an
    exact 'sum' or 'mean' over ``axes``; a zero total weight is refused as on every engine."""
    if reduction == "none":
        return apply_weight(np, losses, weight)
    result, total_weight = weighted_reduction(losses, weight, reduction, axes)
    if total_weight is not None and not np.all(total_weight > 0):
        check_total_weight(total_weight, axes is not None)
    return result


# Headroom of the weighted sums: w * value / 2**scale stays below 2**960 for values below 2**896,
# so rows up to 2**63 cannot overflow the float64 total, while a sum that is subnormal unscaled keeps
# 64 more bits (a mean of 5e-324 stays 5e-324 instead of rounding to 0).
SCALE_HEADROOM = 64
LARGE_VALUE = 2.0**896


def scale_of(weight: np.ndarray | None, values: np.ndarray | None = None) -> int:
    """The power of two that the weighted sums of ``values`` are kept in units of: the largest
    weight's exponent less SCALE_HEADROOM, or the exponent itself where a finite value reaches
    LARGE_VALUE (0 without weights or when all are 0)."""
    if weight is None or not weight.size:
        return 0
    top = float(np.max(weight))
    if not (top > 0 and math.isfinite(top)):
        return 0
    exponent = math.frexp(top)[1]
    if values is not None and values.size:
        largest = float(np.max(np.abs(values), where=np.isfinite(values), initial=0.0))
        if largest >= LARGE_VALUE:
            return exponent
    return exponent - SCALE_HEADROOM


def scaled_sum(values: np.ndarray, weight: np.ndarray | None, scale: int) -> tuple[float, float]:
    """``sum(weight * values) * 2**-scale`` as float64 hi + lo (lo: what the working precision
    adds to hi, 0 where that is float64)."""
    extended = _extended()
    if extended is None:
        s, s_lo, top = exact_sum(*scaled_terms(values, weight), None)
        total = to_float(s + s_lo, top - scale)
    else:
        if weight is not None:
            weight = np.broadcast_to(weight, values.shape).astype(extended)
        total = to_float(_contiguous_sum(_weighted_terms(values, weight, extended), None), -scale)
    with np.errstate(over="ignore"):
        hi = float(total)
    return hi, (float(total - hi) if math.isfinite(hi) else 0.0)
