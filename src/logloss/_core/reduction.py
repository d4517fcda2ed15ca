"""Reduction: the one step that turns per-element losses into a number (or an array over ``axis``).

Written against an array namespace ``xp`` so that the NumPy engine (``xp = numpy``) and the
array-API engine share it; shapes may be partly unknown (a symbolic TensorFlow batch dimension).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .checks import InfiniteLossWarning, check_total_weight, first_index, infinite_loss_message


def normalize_axis(axis: object, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if ndim == 0:
        raise ValueError(f"`axis` must be None for 0-d input (a single sample). Received axis={axis!r}.")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)):
        axes = (axis,)  # a float, a string...: refused below with the one message
    normalized = []
    for a in axes:
        is_int = isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))
        if not is_int or not -ndim <= a < ndim:
            raise ValueError(
                f"`axis` must be None or integers in [-{ndim}, {ndim}) for inputs with "
                f"{ndim} dimension(s). Received axis={axis!r}."
            )
        normalized.append(int(a) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"`axis` must not repeat an axis. Received axis={axis!r}.")
    return tuple(normalized)


def shape_of(value) -> tuple:
    """The shape as ints, with None for a dimension known only at run time."""
    return tuple(
        int(s) if s is not None and not (isinstance(s, float) and math.isnan(s)) else None
        for s in value.shape
    )


def known(shape) -> bool:
    """Whether every dimension is known (a symbolic TensorFlow batch dimension is None)."""
    return all(isinstance(s, int) for s in shape)


def broadcast(xp, value, like):
    """``value`` broadcast to the shape of ``like``, also where that shape is only known at run time."""
    shape = shape_of(like)
    if known(shape):
        return xp.broadcast_to(value, shape)
    return value * xp.ones_like(like)


def apply_weight(xp, values, weight):
    """``weight * values``, where a zero weight removes the sample even if its value is +inf
    (0 * inf would be NaN); the inner ``where`` keeps that NaN out of autodiff too."""
    if weight is None:
        return values
    zero = xp.zeros_like(values)
    removed = weight == 0
    return xp.where(removed, zero, weight * xp.where(removed, zero, values))


def reduce_losses(xp, losses, weight, reduction: str, axes, *, traced: bool = False, to_host=np.asarray):
    """Weighted per-element losses -> 'none' | 'sum' | 'mean' (= sum(w*l) / sum(w)).

    ``traced``: values cannot be inspected (``jax.jit``, ``tf.function``), so a zero total
    weight cannot be refused. ``to_host`` copies a small result to NumPy for the error message.
    """
    exponent = 0
    if reduction != "none" and weight is not None and not traced:
        weight, exponent = _scaled_weight(xp, weight, to_host)
    weighted = apply_weight(xp, losses, weight)
    if reduction == "none":
        return weighted
    total = xp.sum(weighted, axis=axes)
    if reduction == "sum":
        return _times_power_of_two(total, exponent)
    shape = shape_of(weighted)
    if weight is None:
        dims = shape if axes is None else [shape[a] for a in axes]
        count = math.prod(dims) if known(dims) else xp.sum(xp.ones_like(weighted), axis=axes)
        return total / count
    total_weight = xp.sum(broadcast(xp, weight, weighted), axis=axes)
    if not traced and not bool(xp.all(total_weight > 0)):
        check_total_weight(to_host(total_weight), axes is not None)
    return total / total_weight


def _scaled_weight(xp, weight, to_host):
    """(weight * 2**-e, e) with the largest weight brought to [1/2, 1): exact, and it cancels in
    a mean, but subnormal weights no longer round their products (1.0 for log 2) and a total
    weight near 1e308 no longer overflows."""
    top = float(to_host(xp.max(weight))) if math.prod(shape_of(weight)) else 0.0
    if not (top > 0 and math.isfinite(top)):
        return weight, 0
    exponent = math.frexp(top)[1]
    if -4 <= exponent <= 4:
        return weight, 0
    return _times_power_of_two(weight, -exponent), exponent


def _times_power_of_two(value, exponent: int):
    if not exponent:
        return value
    half = exponent // 2  # in two factors: 2.0**1073 alone would overflow
    return (value * 2.0**half) * 2.0**(exponent - half)


def warn_if_infinite(
    losses: np.ndarray, result: np.ndarray, *, weight: np.ndarray | None = None, stacklevel: int
) -> None:
    if not np.isinf(result).any():
        return
    infinite = np.isinf(losses)
    if weight is not None:
        infinite &= weight != 0  # a zero weight removes the sample, infinite or not
    count = int(np.count_nonzero(infinite))
    if not count:
        return  # a sum of finite losses beyond the float range: inf is its correctly rounded value
    warnings.warn(
        infinite_loss_message(count, losses.size, first_index(infinite)),
        InfiniteLossWarning,
        stacklevel=stacklevel + 1,
    )
