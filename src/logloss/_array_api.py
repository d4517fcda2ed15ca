"""Every array library other than NumPy: one implementation through the array API.

The public functions in ``_binary`` and ``_categorical`` send an input here when any array
argument is not a NumPy array or a Python value (:func:`is_foreign`). The namespace comes from
``array_api_compat`` (PyTorch, JAX, Dask, CuPy, array-api-strict) or from ``_tensorflow`` (which
is not array-API compatible). Nothing here imports a framework at module level.

Precision: float16 and bfloat16 are computed in float32; float32 in float64 where the library
and device have it (JAX only with ``jax_enable_x64``); float64 in float64 (there is no long
double on a GPU), with log and exp carried as double-doubles (``_float64``) and products and
sums carried exactly, so the loss is rounded once: within 1 ulp of the NumPy path on every
library, under ``jax.jit`` and ``tf.function`` too. Results are rounded once to the input's
dtype, on the input's device.

Autodiff: every ``where`` feeds its unselected branch a safe value ("double where"), so a
gradient never meets ``0 * inf`` (``log 0`` in a branch that was not taken).

Validation: values are checked with one reduction and one host sync; only when that check
fails are the inputs copied to NumPy, where the NumPy path raises the same error it raises for
NumPy input. Under tracing (``jax.jit``/``grad``/``vmap``, ``tf.function``) values cannot be
inspected, so only shapes and dtypes are checked and no ``InfiniteLossWarning`` is issued.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

from . import _float64
from ._validation import check_clip, check_probability_scalar, check_reduction

_FRAMEWORKS = ("torch", "jax", "jaxlib", "tensorflow", "keras", "dask", "cupy", "array_api_strict")


# ---------------------------------------------------------------------------------------------
# Which library, which namespace


def _root(value) -> str:
    return type(value).__module__.partition(".")[0]


def is_foreign(*values) -> bool:
    """Whether any argument is an array of a library other than NumPy (checked without imports)."""
    for value in values:
        if value is None or isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)):
            continue
        if _root(value) in _FRAMEWORKS or hasattr(value, "__array_namespace__"):
            return True
    return False


def _is_tensorflow(value) -> bool:
    return _root(value) in ("tensorflow", "keras") and "tensorflow" in sys.modules


def namespace(value):
    if _is_tensorflow(value):
        from . import _tensorflow

        return _tensorflow.namespace()
    import array_api_compat

    return array_api_compat.array_namespace(value)


def _device(xp, value):
    if getattr(xp, "__name__", "") == "logloss._tensorflow":
        return None
    import array_api_compat

    return array_api_compat.device(value)


def is_traced(value) -> bool:
    """Values that cannot be inspected: JAX tracers, symbolic TensorFlow tensors."""
    root = _root(value)
    if root in ("jax", "jaxlib"):
        import jax

        return isinstance(value, jax.core.Tracer)
    if root in ("tensorflow", "keras") and "tensorflow" in sys.modules:
        import tensorflow as tf

        return not tf.executing_eagerly() or not hasattr(value, "numpy")
    return False


def to_numpy(value):
    """A host copy, for error messages and for the NumPy check that writes them."""
    if value is None or isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)):
        return value
    root = _root(value)
    if root == "torch":
        import torch

        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    if root == "dask":
        return np.asarray(value.compute())
    if root == "cupy":
        return value.get()
    if root in ("tensorflow", "keras"):
        import tensorflow as tf

        if value.dtype == tf.bfloat16:
            value = tf.cast(value, tf.float32)
        return np.asarray(value.numpy())
    if root == "array_api_strict":
        return np.asarray(value._array)
    array = np.asarray(value)
    if array.dtype.kind == "V" or str(array.dtype) == "bfloat16":
        array = array.astype(np.float32)
    return array


# ---------------------------------------------------------------------------------------------
# Dtypes


def _kind(xp, dtype) -> str:
    """NumPy's dtype.kind letters for the kinds that matter: 'b', 'i', 'f', or '?' for the rest."""
    if dtype == xp.bool:
        return "b"
    if xp.isdtype(dtype, "integral"):
        return "i"
    if xp.isdtype(dtype, "real floating"):
        return "f"
    return "?"


def _dtype_name(dtype) -> str:
    return str(dtype).rpartition(".")[2].replace("'>", "").replace("<dtype: '", "")


def _check_real(xp, name: str, value) -> None:
    if _kind(xp, value.dtype) == "?":
        complex_ = "complex" in str(value.dtype)
        hint = " Take the real part or the magnitude first." if complex_ else ""
        raise TypeError(
            f"`{name}` must be an array of real numbers (bool, int or float). "
            f"Received dtype {_dtype_name(value.dtype)}.{hint}"
        )


def _has_float64(xp, reference) -> bool:
    root = _root(reference)
    if root in ("jax", "jaxlib"):
        import jax

        return bool(jax.config.jax_enable_x64)
    if root == "torch":
        return reference.device.type != "mps"
    return True


def _dtypes(xp, reference, pred_dtype):
    """(output dtype, working dtype) for a prediction of ``pred_dtype``."""
    wide = xp.float64 if _has_float64(xp, reference) else xp.float32
    output = pred_dtype if _kind(xp, pred_dtype) == "f" else wide
    if output == xp.float64:
        return output, xp.float64
    if output == xp.float32:
        return output, wide
    return output, xp.float32  # float16, bfloat16


# ---------------------------------------------------------------------------------------------
# Shared pieces


class _Context:
    """The namespace, device and reference array every argument is converted with."""

    def __init__(self, *values):
        self.reference = next(v for v in values if is_foreign(v))
        self.xp = namespace(self.reference)
        self.device = _device(self.xp, self.reference)
        self.traced = any(is_traced(v) for v in values if is_foreign(v))

    def asarray(self, value, name: str):
        """``value`` as an array of this library on this device (its own arrays pass through)."""
        if value is None or is_foreign(value):
            return value
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            # Keep the NumPy path's message for strings, objects, complex and dates.
            from ._validation import check_real_array

            check_real_array(name, value)
        if self.device is None:
            return self.xp.asarray(value)
        return self.xp.asarray(value, device=self.device)

    def check_values(self, ok, numpy_call) -> None:
        """One host sync; on failure the NumPy path, given host copies, raises its own error."""
        if self.traced or ok is None or bool(ok):
            return
        numpy_call()


def _all(xp, condition):
    return xp.all(condition)


def _shape(value) -> tuple:
    return tuple(int(s) if s is not None and not (isinstance(s, float) and math.isnan(s)) else s for s in value.shape)


def _known(shape) -> bool:
    """Whether every dimension is known (a symbolic TensorFlow batch dimension is None)."""
    return all(isinstance(s, int) for s in shape)


def _broadcast(xp, value, like):
    """``value`` broadcast to the shape of ``like``, also where that shape is only known at run time."""
    shape = _shape(like)
    if _known(shape):
        return xp.broadcast_to(value, shape)
    return value * xp.ones_like(like)


def _broadcast_ok(shape, target, exact: bool = True) -> bool:
    if not (_known(shape) and _known(target)):
        return True  # checked by the library when it runs
    try:
        result = np.broadcast_shapes(shape, target)
    except ValueError:
        return False
    return result == tuple(target) or not exact


# ---------------------------------------------------------------------------------------------
# Per-element primitives, safe for autodiff


def log1p(xp, x):
    """log(1 + x); XLA's float64 log1p is off by up to 128 ulp near x = -0.4 and TensorFlow's
    by 3, while their log is accurate: q = 1 + x rounds, err = x - (q - 1) is exactly what the
    rounding lost (|x| <= 1), and log(1 + x) = log(q) + log1p(err / q) = log(q) + err / q."""
    if getattr(xp, "__name__", "") not in ("jax.numpy", "logloss._tensorflow"):
        return xp.log1p(x)
    q = _float64.barrier(xp, 1 + x)  # else XLA and Grappler simplify (1 + x) - 1 to x
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
    hi, lo = _two_sum(xp, xp_, log1p(xp, xp.exp(-xp_)))
    finite = positive & (hi < math.inf)
    hi = xp.where(positive, hi, log1p(xp, xp.exp(xn)))
    if accurate and _float64.applies(xp, x.dtype):
        # The library's exp (XLA's is up to 2 ulp off) and log1p each round: lo is what the
        # double-double value adds to hi (no gradient; hi keeps the library's derivative).
        xs, his = _float64.stop_gradient(xp, x), _float64.stop_gradient(xp, hi)
        u, u_lo = _float64.exp(xp, -xp.abs(xs))
        value, value_lo = _float64.log1p(xp, u, u_lo)
        big, big_lo = _float64.two_sum(xp, xp.where(positive, xs, zero), value)
        return hi, _correction(xp, xp.where(positive, big, value), xp.where(positive, big_lo + value_lo, value_lo), his)
    return hi, xp.where(finite, xp.where(finite, lo, zero), zero)


def _correction(xp, exact_hi, exact_lo, hi):
    """lo with hi + lo = exact_hi + exact_lo (exact_hi - hi is exact: they are a few ulp apart)."""
    ok = xp.isfinite(hi) & xp.isfinite(exact_hi)
    return xp.where(ok, (xp.where(ok, exact_hi, hi) - hi) + exact_lo, xp.zeros_like(hi))


def bce_probabilities(xp, y, p, pos_weight, accurate=False):
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    has_positive = y != 0
    has_negative = y != 1
    ps, pn = xp.where(has_positive, p, one), xp.where(has_negative, p, zero)
    minus_log_p = -xp.log(ps)
    minus_log_q = -log1p(xp, -pn)
    if not (accurate and _float64.applies(xp, p.dtype)):
        return _combine(xp, y, minus_log_p, minus_log_q, pos_weight, has_positive, has_negative)
    # The library's log rounds (TensorFlow's is up to 2 ulp off): lo is the double-double
    # value's remainder (no gradient).
    ps, pn = _float64.stop_gradient(xp, ps), _float64.stop_gradient(xp, pn)
    positive_lo = -_float64.log_correction(xp, ps, xp.log(ps))
    value, value_lo = _float64.log1p(xp, -pn, zero)
    negative_lo = _correction(xp, -value, -value_lo, _float64.stop_gradient(xp, minus_log_q))
    return _combine(xp, y, minus_log_p, minus_log_q, pos_weight, has_positive, has_negative, positive_lo, negative_lo)


def bce_logits(xp, y, z, pos_weight, accurate=False):
    zero = xp.zeros_like(z)
    has_positive = y != 0
    has_negative = y != 1
    # -log sigmoid(z) = softplus(-z) and -log sigmoid(-z) = softplus(z).
    positive, positive_lo = softplus(xp, xp.where(has_positive, -z, zero), accurate)
    negative, negative_lo = softplus(xp, xp.where(has_negative, z, zero), accurate)
    return _combine(xp, y, positive, negative, pos_weight, has_positive, has_negative, positive_lo, negative_lo)


def _two_sum(xp, a, b):
    """a + b = s + e exactly (Knuth). Under jax.jit and tf.function the sum passes a barrier, or
    the compiler's algebra would fold the error terms to zero."""
    s = _float64.barrier(xp, a + b)
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_product(xp, a, b, factor):
    """a * b = p + e exactly (Dekker; no FMA in the array API), away from overflow."""

    def split(v):
        c = _float64.barrier(xp, factor * v)
        high = c - (c - v)
        return high, v - high

    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _combine(xp, y, positive, negative, pos_weight, has_positive, has_negative, positive_lo=None, negative_lo=None):
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
    split = 134217729.0 if info.bits == 64 else 4097.0  # 2^ceil(mantissa/2) + 1
    limit = float(info.max) / 2**30  # no overflow inside the splitting
    # Every finite term takes the exact path: a hard label with a correction (lo) or a pos_weight
    # rounds once too. Each factor must stay below the limit, not just the sum: (1 - y) * 1e300
    # can be small while splitting 1e300 overflows.
    soft = (plain < limit) & (positive < limit) & (negative < limit)
    if pos_weight is not None:
        soft = soft & (pos_weight < limit)
    ys = xp.where(soft, y, zero)
    p_term, p_error = _two_product(xp, ys, xp.where(soft, positive, zero), split)
    if positive_lo is not None:
        p_error = p_error + ys * xp.where(soft, positive_lo, zero)
    if pos_weight is not None:
        pw = xp.where(soft, pos_weight, zero)
        p_term, weighted_error = _two_product(xp, pw, p_term, split)
        p_error = weighted_error + pw * p_error
    one_minus_y = _float64.barrier(xp, 1 - ys)
    one_minus_y_error = (1 - one_minus_y) - ys  # exact (Fast2Sum): 1 - y = one_minus_y + this
    negative_s = xp.where(soft, negative, zero)
    n_term, n_error = _two_product(xp, one_minus_y, negative_s, split)
    n_error = n_error + one_minus_y_error * negative_s
    if negative_lo is not None:
        n_error = n_error + one_minus_y * xp.where(soft, negative_lo, zero)
    total, sum_error = _two_sum(xp, p_term, n_term)
    # (A barrier, or Grappler's AddOpsRewrite would add the small terms to total one by one.)
    return xp.where(soft, total + _float64.barrier(xp, sum_error + (p_error + n_error)), plain)


def sigmoid(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def grad_probabilities(xp, y, p, pw):
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    weight = y if pw is None else pw * y
    positive = xp.where(y == 0, zero, -weight / xp.where(y == 0, one, p))
    negative = xp.where(y == 1, zero, (1 - y) / (1 - xp.where(y == 1, zero, p)))
    return positive + negative


def hessian_probabilities(xp, y, p, pw):
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    weight = y if pw is None else pw * y
    ps = xp.where(y == 0, one, p)
    q = 1 - xp.where(y == 1, zero, p)
    return xp.where(y == 0, zero, weight / (ps * ps)) + xp.where(y == 1, zero, (1 - y) / (q * q))


def grad_logits(xp, y, z, pw):
    weight = y if pw is None else pw * y
    return (1 - y) * sigmoid(xp, z) - weight * sigmoid(xp, -z)


def hessian_logits(xp, y, z, pw):
    scale = 1 if pw is None else (1 - y) + pw * y
    return scale * (sigmoid(xp, z) * sigmoid(xp, -z))


# ---------------------------------------------------------------------------------------------
# Binary


def _prepare_binary(y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing, clip):
    ctx = _Context(y_pred, y_true, sample_weight, pos_weight)
    xp = ctx.xp
    y = ctx.asarray(y_true, "y_true")
    x = ctx.asarray(y_pred, "y_pred")
    _check_real(xp, "y_true", y)
    _check_real(xp, "y_pred", x)
    if _shape(y) != _shape(x):
        from ._validation import check_same_shape

        check_same_shape("y_true", np.empty(_shape(y)), "y_pred", np.empty(_shape(x)))
    smoothing = check_probability_scalar("label_smoothing", label_smoothing)
    bound = check_clip(clip)
    pw = ctx.asarray(pos_weight, "pos_weight")
    weight = ctx.asarray(sample_weight, "sample_weight")
    target = _shape(y)
    for name, value in (("pos_weight", pw), ("sample_weight", weight)):
        if value is None:
            continue
        _check_real(xp, name, value)
        # pos_weight only has to broadcast with the labels; sample_weight must broadcast to them.
        fits = _broadcast_ok(_shape(value), target, exact=name == "sample_weight")
        if not fits:
            from ._validation import check_pos_weight, check_sample_weight

            check = check_pos_weight if name == "pos_weight" else check_sample_weight
            check(np.ones(_shape(value)), target)

    output, work = _dtypes(xp, ctx.reference, x.dtype)
    yw = xp.astype(y, work)
    xw = xp.astype(x, work)
    pww = None if pw is None else xp.astype(pw, work)
    ww = None if weight is None else xp.astype(weight, work)

    if not ctx.traced:
        ok = _all(xp, (yw >= 0) & (yw <= 1))
        if from_logits:
            ok = ok & ~xp.any(xp.isnan(xw))
        else:
            ok = ok & _all(xp, (xw >= 0) & (xw <= 1))
        if pww is not None:
            ok = ok & _all(xp, (pww > 0) & xp.isfinite(pww))
        if ww is not None:
            ok = ok & _all(xp, (ww >= 0) & xp.isfinite(ww))

        def numpy_check():
            from ._binary import prepare_binary

            prepare_binary(
                to_numpy(y_true), to_numpy(y_pred), from_logits=from_logits,
                sample_weight=to_numpy(sample_weight), pos_weight=to_numpy(pos_weight),
                label_smoothing=label_smoothing, clip=clip,
            )

        ctx.check_values(ok, numpy_check)

    if smoothing:
        yw = yw * (1 - smoothing) + smoothing / 2
    if bound is not None:
        if from_logits:
            limit = math.log(bound) - math.log1p(-bound)
            xw = xp.clip(xw, limit, -limit)
        else:
            xw = xp.clip(xw, bound, 1 - bound)
    return ctx, yw, xw, pww, ww, output


def _apply_weight(xp, values, weight):
    if weight is None:
        return values
    zero = xp.zeros_like(values)
    # A zero weight removes the sample, even one whose loss is +inf (0 * inf would be NaN).
    return xp.where(weight == 0, zero, weight * xp.where(weight == 0, zero, values))


def _reduce(ctx, values, weight, reduction, axes):
    xp = ctx.xp
    weighted = _apply_weight(xp, values, weight)
    if reduction == "none":
        return weighted
    total = xp.sum(weighted, axis=axes)
    if reduction == "sum":
        return total
    shape = _shape(weighted)
    if weight is None:
        dims = shape if axes is None else [shape[a] for a in axes]
        count = math.prod(dims) if _known(dims) else xp.sum(xp.ones_like(weighted), axis=axes)
        return total / count
    total_weight = xp.sum(_broadcast(xp, weight, weighted), axis=axes)
    if not ctx.traced and not bool(xp.all(total_weight > 0)):
        from ._validation import check_total_weight

        check_total_weight(to_numpy(total_weight), axes is not None)
    return total / total_weight


def _warn_if_infinite(ctx, weighted, result, stacklevel):
    if ctx.traced:
        return
    xp = ctx.xp
    if bool(xp.any(xp.isinf(result))):
        from ._reduction import warn_if_infinite

        warn_if_infinite(to_numpy(weighted), to_numpy(result), stacklevel=stacklevel + 1)


def binary_cross_entropy(
    y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing, reduction, axis, clip
):
    reduction = check_reduction(reduction)
    ctx, y, x, pw, weight, output = _prepare_binary(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
        pos_weight=pos_weight, label_smoothing=label_smoothing, clip=clip,
    )
    xp = ctx.xp
    shape = _shape(y)
    if reduction == "mean" and _known(shape) and math.prod(shape) == 0:
        from ._validation import check_nonempty

        check_nonempty("y_true", np.empty(shape), reduction)
    from ._reduction import normalize_axis

    axes = normalize_axis(axis, len(shape))
    if weight is not None:
        weight = _broadcast(xp, weight, y)
    # float64 results carry log and exp as double-doubles (_float64); float32 and narrower,
    # computed in float64 and rounded to the output, do not need it.
    per_element = functools.partial(bce_logits if from_logits else bce_probabilities, accurate=output == xp.float64)
    if pw is None:
        losses = run_elementwise(ctx, lambda xp_, y_, x_: per_element(xp_, y_, x_, None), y, x)
    else:
        losses = run_elementwise(ctx, per_element, y, x, _broadcast(xp, pw, y))
    result = _reduce(ctx, losses, weight, reduction, axes)
    _warn_if_infinite(ctx, _apply_weight(xp, losses, weight), result, stacklevel=3)
    return xp.astype(result, output)


def derivative(kind, y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing):
    ctx, y, x, pw, weight, output = _prepare_binary(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
        pos_weight=pos_weight, label_smoothing=label_smoothing, clip=None,
    )
    xp = ctx.xp
    functions = {
        ("grad", False): grad_probabilities,
        ("grad", True): grad_logits,
        ("hessian", False): hessian_probabilities,
        ("hessian", True): hessian_logits,
    }
    function = functions[kind, from_logits]
    if pw is None:
        values = run_elementwise(ctx, lambda xp_, y_, x_: function(xp_, y_, x_, None), y, x)
    else:
        values = run_elementwise(ctx, function, y, x, _broadcast(xp, pw, y))
    if weight is not None:
        values = _apply_weight(xp, values, _broadcast(xp, weight, y))
    return xp.astype(values, output)


# ---------------------------------------------------------------------------------------------
# Categorical


def categorical_cross_entropy(y_true, y_pred, *, from_logits, sample_weight, reduction, axis):
    reduction = check_reduction(reduction)
    ctx = _Context(y_pred, y_true, sample_weight)
    xp = ctx.xp
    p = ctx.asarray(y_pred, "y_pred")
    y = ctx.asarray(y_true, "y_true")
    _check_real(xp, "y_pred", p)
    _check_real(xp, "y_true", y)

    def numpy_call():
        from ._categorical import categorical_cross_entropy as numpy_cce

        numpy_cce(
            to_numpy(y_true), to_numpy(y_pred), from_logits=from_logits,
            sample_weight=to_numpy(sample_weight), reduction=reduction, axis=axis,
        )

    if p.ndim == 0:
        raise ValueError("`y_pred` must have a class axis; received a scalar.")
    from ._reduction import normalize_axis

    (class_axis,) = normalize_axis(axis, p.ndim)
    p = xp.moveaxis(p, class_axis, -1)
    shape = _shape(p)
    n_classes, sample_shape = shape[-1], shape[:-1]
    integer = y.ndim == p.ndim - 1 and _kind(xp, y.dtype) == "i"
    if integer:
        if _shape(y) != sample_shape:
            raise ValueError(
                "Integer class labels must have the shape of `y_pred` without its class axis. "
                f"Expected y_true.shape={sample_shape}, received {_shape(y)}."
            )
    elif y.ndim == p.ndim:
        y = xp.moveaxis(y, class_axis, -1)
        if _shape(y) != shape:
            raise ValueError(
                "`y_true` (one-hot or soft labels) must have the shape of `y_pred`. "
                f"Received y_true.shape={_shape(ctx.asarray(y_true, 'y_true'))} and "
                f"y_pred.shape={_shape(ctx.asarray(y_pred, 'y_pred'))}."
            )
    else:
        raise ValueError(
            "`y_true` must be one-hot labels shaped like `y_pred` "
            f"{_shape(ctx.asarray(y_pred, 'y_pred'))}, or integer class labels shaped {sample_shape}. "
            f"Received y_true.shape={_shape(y)} with dtype {_dtype_name(y.dtype)}."
        )
    weight = ctx.asarray(sample_weight, "sample_weight")
    if weight is not None:
        _check_real(xp, "sample_weight", weight)
        if not _broadcast_ok(_shape(weight), sample_shape):
            from ._validation import check_sample_weight

            check_sample_weight(np.ones(_shape(weight)), sample_shape)
    if reduction == "mean" and _known(sample_shape) and math.prod(sample_shape) == 0:
        from ._validation import check_nonempty

        check_nonempty("y_pred", np.empty(sample_shape), reduction)

    output, work = _dtypes(xp, ctx.reference, p.dtype)
    pw = xp.astype(p, work)
    if integer:
        labels = y  # compared with arange(n_classes) cast to its dtype: no int64 needed (JAX x32)
        yw = None
    else:
        yw = xp.astype(y, work)
    ww = None if weight is None else xp.astype(weight, work)

    if not ctx.traced:
        if integer:
            ok = _all(xp, (labels >= 0) & (labels < n_classes))
        else:
            ok = _all(xp, (yw >= 0) & (yw <= 1))
            ok = ok & _all(xp, xp.abs(xp.sum(xp.astype(yw, xp.float64 if work == xp.float64 else work), axis=-1) - 1) <= _row_tolerance(xp, y.dtype))
        if from_logits:
            ok = ok & ~xp.any(xp.isnan(pw) | (pw == math.inf))
            ok = ok & _all(xp, xp.any(pw > -math.inf, axis=-1))
        else:
            ok = ok & _all(xp, (pw >= 0) & (pw <= 1))
            ok = ok & _all(xp, xp.abs(xp.sum(pw, axis=-1) - 1) <= _row_tolerance(xp, p.dtype))
        if ww is not None:
            ok = ok & _all(xp, (ww >= 0) & xp.isfinite(ww))
        ctx.check_values(ok, numpy_call)

    target = xp.expand_dims(labels, axis=-1) if integer else yw
    losses = run_elementwise(ctx, _cce_per_sample(from_logits, integer, n_classes), pw, target, reduce_last=True)
    if ww is not None:
        ww = _broadcast(xp, ww, losses)
    result = _reduce(ctx, losses, ww, reduction, None)
    _warn_if_infinite(ctx, _apply_weight(xp, losses, ww), result, stacklevel=3)
    return xp.astype(result, output)


def _cce_per_sample(from_logits, integer, n_classes):
    def per_sample(xp, pw, target):
        classes = xp.arange(n_classes)
        if getattr(xp, "__name__", "") not in ("numpy", "logloss._tensorflow"):
            import array_api_compat

            classes = xp.arange(n_classes, device=array_api_compat.device(pw))
        zero = xp.zeros_like(pw)
        if integer:
            selected = target == xp.astype(classes, target.dtype)  # target: labels[..., None]
        else:
            selected = target != 0
        if from_logits:
            top = xp.argmax(pw, axis=-1, keepdims=True)
            is_top = xp.astype(classes, top.dtype) == top
            # The top logit, taken so that its gradient reaches that one entry only.
            m = xp.sum(xp.where(is_top, pw, zero), axis=-1, keepdims=True)
            rest = xp.where(is_top, zero, xp.exp(xp.where(is_top, zero, pw - m)))
            # logsumexp(z) = m + log1p(sum over the other classes of e^(z_j - m)): leaving the
            # top class out keeps a tiny loss (a confident, correct prediction) accurate.
            per_class = (m - xp.where(selected, pw, m)) + log1p(xp, xp.sum(rest, axis=-1, keepdims=True))
        else:
            per_class = -xp.log(xp.where(selected, pw, xp.ones_like(pw)))
        if integer:
            return xp.sum(xp.where(selected, per_class, zero), axis=-1)
        return xp.sum(xp.where(selected, target * per_class, zero), axis=-1)

    return per_sample


def _is_dask(xp) -> bool:
    return getattr(xp, "__name__", "").startswith("array_api_compat.dask")


def run_elementwise(ctx, function, *arrays, reduce_last=False):
    """``function(xp, *arrays)``, without NumPy's floating-point warnings on NumPy-backed
    libraries (log 0 = -inf is a result here); on Dask, block by block (``map_blocks``)."""
    if _is_dask(ctx.xp):
        from . import _dask

        return _dask.map_elementwise(function, *arrays, reduce_last=reduce_last)
    with np.errstate(all="ignore"):
        return function(ctx.xp, *arrays)


def _row_tolerance(xp, dtype) -> float:
    if _kind(xp, dtype) != "f":
        return float(np.sqrt(np.finfo(np.float64).eps))
    return float(np.sqrt(xp.finfo(dtype).eps))
