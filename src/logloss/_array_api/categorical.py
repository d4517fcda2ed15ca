"""Categorical cross-entropy on any array library."""

from __future__ import annotations

import math

import numpy as np

from .._core.checks import check_nonempty, check_reduction, check_sample_weight
from .._core.inputs import label_shape_error, prepare_categorical
from .._core.reduction import apply_weight, broadcast, known, normalize_axis, shape_of
from .elementwise import log1p
from .namespace import (
    Context,
    all_true,
    broadcast_ok,
    check_real,
    dtype_name,
    dtypes,
    kind,
    run_elementwise,
    is_tensorflow_namespace,
    to_numpy,
)



def categorical_cross_entropy(y_true, y_pred, *, from_logits, sample_weight, reduction, axis):
    reduction = check_reduction(reduction)
    ctx = Context(y_pred, y_true, sample_weight)
    xp = ctx.xp
    p = ctx.asarray(y_pred, "y_pred")
    y = ctx.asarray(y_true, "y_true")
    check_real(xp, "y_pred", p)
    check_real(xp, "y_true", y)

    def numpy_call():
        prepare_categorical(
            to_numpy(y_true), to_numpy(y_pred), from_logits=from_logits,
            sample_weight=to_numpy(sample_weight), reduction=reduction, axis=axis,
        )

    if p.ndim == 0:
        raise ValueError("`y_pred` must have a class axis; received a scalar.")
    (class_axis,) = normalize_axis(axis, p.ndim)
    p = xp.moveaxis(p, class_axis, -1)
    shape = shape_of(p)
    n_classes, sample_shape = shape[-1], shape[:-1]
    integer = y.ndim == p.ndim - 1 and kind(xp, y.dtype) == "i"
    if integer:
        if shape_of(y) != sample_shape:
            raise label_shape_error("integer", y_shape=shape_of(y), sample_shape=sample_shape)
    elif y.ndim == p.ndim:
        y = xp.moveaxis(y, class_axis, -1)
        if shape_of(y) != shape:
            raise label_shape_error("one-hot", y_shape=shape_of(ctx.asarray(y_true, "y_true")),
                                    p_shape=shape_of(ctx.asarray(y_pred, "y_pred")))
    else:
        raise label_shape_error("neither", y_shape=shape_of(y), p_shape=shape_of(ctx.asarray(y_pred, "y_pred")),
                                sample_shape=sample_shape, y_dtype=dtype_name(y.dtype))
    weight = ctx.asarray(sample_weight, "sample_weight")
    if weight is not None:
        check_real(xp, "sample_weight", weight)
        if not broadcast_ok(shape_of(weight), sample_shape):
            check_sample_weight(np.ones(shape_of(weight)), sample_shape)
    if reduction == "mean" and known(sample_shape) and math.prod(sample_shape) == 0:
        check_nonempty("y_pred", np.empty(sample_shape), reduction)

    output, work = dtypes(xp, ctx.reference, p.dtype)
    pw = xp.astype(p, work)
    if integer:
        labels = y  # compared with arange(n_classes) cast to its dtype: no int64 needed (JAX x32)
        yw = None
    else:
        yw = xp.astype(y, work)
    ww = None if weight is None else xp.astype(weight, work)

    if not ctx.traced:
        if integer:
            ok = all_true(xp, (labels >= 0) & (labels < n_classes))
        else:
            ok = all_true(xp, (yw >= 0) & (yw <= 1))
            ok = ok & all_true(xp, xp.abs(xp.sum(xp.astype(yw, xp.float64 if work == xp.float64 else work), axis=-1) - 1) <= row_tolerance(xp, y.dtype))
        if from_logits:
            ok = ok & ~xp.any(xp.isnan(pw) | (pw == math.inf))
            ok = ok & all_true(xp, xp.any(pw > -math.inf, axis=-1))
        else:
            ok = ok & all_true(xp, (pw >= 0) & (pw <= 1))
            ok = ok & all_true(xp, xp.abs(xp.sum(pw, axis=-1) - 1) <= row_tolerance(xp, p.dtype))
        if ww is not None:
            ok = ok & all_true(xp, (ww >= 0) & xp.isfinite(ww))
        ctx.check_values(ok, numpy_call)

    target = xp.expand_dims(labels, axis=-1) if integer else yw
    losses = run_elementwise(ctx, _cce_per_sample(from_logits, integer, n_classes), pw, target, reduce_last=True)
    if ww is not None:
        ww = broadcast(xp, ww, losses)
    result = ctx.reduce(losses, ww, reduction, None)
    ctx.warn_if_infinite(apply_weight(xp, losses, ww), result, stacklevel=3)
    return xp.astype(result, output)


def _cce_per_sample(from_logits, integer, n_classes):
    def per_sample(xp, pw, target):
        classes = xp.arange(n_classes)
        if getattr(xp, "__name__", "") != "numpy" and not is_tensorflow_namespace(xp):
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


def row_tolerance(xp, dtype) -> float:
    if kind(xp, dtype) != "f":
        return float(np.sqrt(np.finfo(np.float64).eps))
    return float(np.sqrt(xp.finfo(dtype).eps))

