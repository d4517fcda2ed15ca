"""Binary cross-entropy on any array library: checks, per-element losses, reduction, one rounding."""

from __future__ import annotations

import functools
import math

import numpy as np

from .._core.checks import (
    check_clip,
    check_nonempty,
    check_pos_weight,
    check_probability_scalar,
    check_reduction,
    check_same_shape,
    check_sample_weight,
)
from .._core.inputs import prepare_binary
from .._core.reduction import apply_weight, broadcast, known, normalize_axis, shape_of
from .._core.derivatives import grad_logits, grad_probabilities, hessian_logits, hessian_probabilities
from .elementwise import bce_logits, bce_probabilities, smoothed_labels
from .fast import smoothing_correction
from .namespace import (
    Context,
    is_foreign,
    is_tensorflow,
    root_of,
    all_true,
    broadcast_ok,
    check_known_rank,
    check_real,
    dtypes,
    run_elementwise,
    to_numpy,
)



def _prepare_binary(y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing, clip, validate=True):
    ctx = Context(y_pred, y_true, sample_weight, pos_weight, validate=validate)
    xp = ctx.xp
    y = ctx.asarray(y_true, "y_true")
    x = ctx.asarray(y_pred, "y_pred")
    check_real(xp, "y_true", y)
    check_real(xp, "y_pred", x)
    if shape_of(y) != shape_of(x):
        check_same_shape("y_true", np.empty(shape_of(y)), "y_pred", np.empty(shape_of(x)))
    smoothing = check_probability_scalar("label_smoothing", label_smoothing)
    check_clip(clip)
    pw = ctx.asarray(pos_weight, "pos_weight")
    weight = ctx.asarray(sample_weight, "sample_weight")
    target = shape_of(y)
    for name, value in (("pos_weight", pw), ("sample_weight", weight)):
        if value is None:
            continue
        check_real(xp, name, value)
        # Both must broadcast TO the labels: a bigger broadcast shape would change the mean.
        fits = broadcast_ok(shape_of(value), target)
        if not fits:
            check = check_pos_weight if name == "pos_weight" else check_sample_weight
            check(np.ones(shape_of(value)), target)

    output, work = dtypes(xp, ctx.reference, x.dtype)
    if work == xp.float32 and y.dtype == xp.float64:
        # float64 labels beside half-precision predictions: a label 1 - 1e-9 became 1 in float32,
        # and its loss (1 - y) z at z = 1e4 (or inf) became 0
        work = xp.float64
    yw = xp.astype(y, work)
    xw = xp.astype(x, work)
    pww = None if pw is None else xp.astype(pw, work)
    ww = None if weight is None else xp.astype(weight, work)

    if ctx.inspect:
        # One reduction per bound (a NaN fails both comparisons).
        ok = within(xp, yw, 0, 1)
        if from_logits:
            ok = ok & ~xp.any(xp.isnan(xw))
        else:
            ok = ok & within(xp, xw, 0, 1)
        if pww is not None:
            ok = ok & all_true(xp, (pww > 0) & xp.isfinite(pww))
        if ww is not None:
            ok = ok & all_true(xp, (ww >= 0) & xp.isfinite(ww))

        def numpy_check():
            prepare_binary(
                to_numpy(y_true), to_numpy(y_pred), from_logits=from_logits,
                sample_weight=to_numpy(sample_weight), pos_weight=to_numpy(pos_weight),
                label_smoothing=label_smoothing, clip=clip,
            )

        ctx.check_values(ok, numpy_check)

    ctx.label_lo = None
    if smoothing:
        yw, ctx.label_lo = smoothed_labels(xp, yw, smoothing, work == xp.float64)
    return ctx, yw, xw, pww, ww, output




def within(xp, values, low, high):
    """min(values) >= low and max(values) <= high, on the device (True when empty)."""
    if known(shape_of(values)) and math.prod(shape_of(values)) == 0:
        return xp.asarray(True)
    return (xp.min(values) >= low) & (xp.max(values) <= high)


def _check_dense(**values):
    """Sparse and ragged tensors are refused by name: they reached operations (aminmax, XLA) that
    failed with messages about the library's internals, not about the argument."""
    for name, value in values.items():
        check_known_rank(name, value)
        kind = type(value).__name__
        if kind in ("RaggedTensor", "SparseTensor") and root_of(value) in ("tensorflow", "keras"):
            how = "value.to_tensor()" if kind == "RaggedTensor" else "tf.sparse.to_dense(value)"
            raise TypeError(f"`{name}` must be a dense tensor. Received a tf.{kind}. Convert it with {how} first.")
        layout = getattr(value, "layout", None)
        if root_of(value) == "torch" and layout is not None and str(layout) != "torch.strided":
            raise TypeError(f"`{name}` must be a dense tensor. Received a tensor of layout {layout}. "
                            "Convert it with .to_dense() first.")


def _framework(*values):
    """The module with the training-step path for these arrays (torch, jax, tensorflow), or None."""
    roots = {root_of(v) for v in values if is_foreign(v)}
    if roots == {"torch"}:
        from . import torch

        return torch
    if roots <= {"jax", "jaxlib"}:
        from . import jax

        return jax
    if roots <= {"tensorflow", "keras"} and is_tensorflow(next(v for v in values if is_foreign(v))):
        from . import tensorflow_training

        return tensorflow_training
    return None


def _fits_labels(pos_weight, y_true) -> bool:
    if pos_weight is None:
        return True
    try:
        target = tuple(np.shape(y_true)) if not hasattr(y_true, "shape") else tuple(y_true.shape)
        return np.broadcast_shapes(tuple(np.shape(pos_weight)) if not hasattr(pos_weight, "shape")
                                   else tuple(pos_weight.shape), target) == target
    except (ValueError, TypeError):
        return False


def binary_cross_entropy(
    y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing, reduction, axis, clip,
    validate=True, kernel=None,
):
    _check_dense(y_true=y_true, y_pred=y_pred, sample_weight=sample_weight, pos_weight=pos_weight)
    framework = _framework(y_pred, y_true, sample_weight, pos_weight)
    # torch's whole-call path does not carry clip's term bounds, the weight scaling or the check
    # that pos_weight only broadcasts to the labels: those calls take the generic path below.
    if (framework is not None and hasattr(framework, "binary_cross_entropy") and clip is None
            and sample_weight is None and _fits_labels(pos_weight, y_true)):
        return framework.binary_cross_entropy(
            y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight, pos_weight=pos_weight,
            label_smoothing=label_smoothing, reduction=reduction, axis=axis, clip=clip, validate=validate,
            kernel=kernel,
        )
    reduction = check_reduction(reduction)
    if (framework is not None and hasattr(framework, "whole_reduction") and clip is None and sample_weight is None
            and pos_weight is None and not label_smoothing and axis is None and reduction != "none"):
        # TensorFlow without options: checks, loss and sum each one XLA call, one read-back eagerly.
        result = framework.whole_reduction(y_true, y_pred, from_logits=from_logits, mean=reduction == "mean",
                                           validate=validate)
        if result is not None:
            return result
    ctx, y, x, pw, weight, output = _prepare_binary(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
        pos_weight=pos_weight, label_smoothing=label_smoothing, clip=clip, validate=validate,
    )
    xp = ctx.xp
    shape = shape_of(y)
    if reduction == "mean" and known(shape) and math.prod(shape) == 0:
        check_nonempty("y_true", np.empty(shape), reduction)
    axes = normalize_axis(axis, len(shape))
    if weight is not None:
        weight = broadcast(xp, weight, y)
        # A zero weight removes the sample even at an infinite loss; its prediction becomes a safe
        # one ("double where"), or the gradient was 0 * inf = NaN through the where after the loss.
        x = xp.where(weight == 0, xp.zeros_like(x) + (0.0 if from_logits else 0.5), x)
    # float64 results carry log and exp as double-doubles (doubledouble.py); float32 and narrower,
    # computed in float64 and rounded to the output, do not need it.
    bound = check_clip(clip)
    if (framework is not None and hasattr(framework, "binary_reduction") and bound is None and weight is None
            and pw is None and not label_smoothing and reduction != "none" and axes is None
            and (output == xp.float32 or (output == xp.float64 and from_logits))):
        # TensorFlow, a float32 (or float64 logits) mean or sum without options: one custom
        # gradient from the inputs as given (the casts above go unused; a tf.function prunes them).
        y_raw, x_raw = ctx.asarray(y_true, "y_true"), ctx.asarray(y_pred, "y_pred")
        if x_raw.dtype == output:
            result = framework.binary_reduction(y_raw, x_raw, from_logits=from_logits, mean=reduction == "mean")
            if ctx.inspect and bool(xp.any(xp.isinf(result))):
                losses = framework.binary_losses(y, x, None, from_logits=from_logits, exact=False)
                ctx.warn_if_infinite(losses, result, stacklevel=3)
            return result
    if framework is not None and hasattr(framework, "binary_losses") and bound is None:
        # JAX, TensorFlow: one custom-gradient function with the analytic backward.
        losses = framework.binary_losses(y, x, None if pw is None else broadcast(xp, pw, y),
                                         from_logits=from_logits, exact=output == xp.float64)
    else:
        per_element = functools.partial(bce_logits if from_logits else bce_probabilities,
                                        accurate=output == xp.float64, clip=bound)
        if pw is None:
            losses = run_elementwise(ctx, lambda xp_, y_, x_: per_element(xp_, y_, x_, None), y, x)
        else:
            losses = run_elementwise(ctx, per_element, y, x, broadcast(xp, pw, y))
    if ctx.label_lo is not None:
        losses = losses + smoothing_correction(xp, ctx.label_lo, y, x, None if pw is None else broadcast(xp, pw, y),
                                               from_logits=from_logits, clip=bound)
    result = ctx.reduce(losses, weight, reduction, axes)
    ctx.warn_if_infinite(apply_weight(xp, losses, weight), result, stacklevel=3)
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
        values = run_elementwise(ctx, function, y, x, broadcast(xp, pw, y))
    if weight is not None:
        values = apply_weight(xp, values, broadcast(xp, weight, y))
    return xp.astype(values, output)


