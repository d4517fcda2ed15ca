"""Categorical cross-entropy: the K-class case, with one-hot, soft or integer labels."""

from __future__ import annotations

import numpy as np

from . import _array_api
from . import _elementwise as ew
from ._binary import _round_once
from ._precision import result_dtype, working_dtype
from ._reduction import normalize_axis, reduce_losses, warn_if_infinite
from ._validation import (
    check_nonempty,
    check_real_array,
    check_reduction,
    check_sample_weight,
    check_unit_interval,
    format_index,
)


def _check_rows_sum_to_one(name: str, values: np.ndarray, what: str) -> None:
    """Each distribution over the class axis (last here) must sum to 1."""
    if not values.size:
        return
    sums = np.sum(values, axis=-1, dtype=np.float64)
    tolerance = float(np.sqrt(np.finfo(values.dtype if values.dtype.kind == "f" else np.float64).eps))
    bad = np.abs(sums - 1) > tolerance
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            f"`{name}` must hold {what} that sum to 1 over the class axis. The one at "
            f"sample index {format_index(flat, sums.shape)} sums to {sums.ravel()[flat].item()!r}. "
            "Normalize first (y / y.sum(axis, keepdims=True)), or pass logits with from_logits=True."
        )


def _integer_labels(y: np.ndarray, n_classes: int, sample_shape: tuple[int, ...]) -> np.ndarray:
    if y.shape != sample_shape:
        raise ValueError(
            "Integer class labels must have the shape of `y_pred` without its class axis. "
            f"Expected y_true.shape={sample_shape}, received {y.shape}."
        )
    if y.size:
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            flat = int(np.argmax(bad.ravel()))
            raise ValueError(
                f"`y_true` holds integer class labels, which must be in [0, {n_classes - 1}] "
                f"for {n_classes} classes. Received {y.ravel()[flat].item()!r} at index "
                f"{format_index(flat, y.shape)}."
            )
    return y.astype(np.intp, copy=False)


def _losses_per_class_from_logits(z: np.ndarray) -> np.ndarray:
    """-log softmax(z) over the last axis, exactly where the correct class dominates."""
    bad = np.isnan(z) | np.isposinf(z)
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            "`y_pred` logits must be finite or -inf (an impossible class). "
            f"Received {z.ravel()[flat].item()!r} at index {format_index(flat, z.shape)}."
        )
    top = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, top, axis=-1)
    if z.size and np.isneginf(m).any():
        flat = int(np.argmax(np.isneginf(m).ravel()))
        raise ValueError(
            "`y_pred` has a sample whose logits are all -inf (no possible class), at "
            f"sample index {format_index(flat, m.shape[:-1])}."
        )
    rest = np.exp(z - m)
    # logsumexp(z) = m + log1p(sum over the other classes of e^(z_j - m)); leaving the top
    # class out of the sum keeps a tiny loss (a confident, correct prediction) accurate.
    np.put_along_axis(rest, top, 0, axis=-1)
    return (m - z) + np.log1p(np.sum(rest, axis=-1, keepdims=True))


def categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    sample_weight=None,
    reduction: str = "mean",
    axis: int = -1,
):
    """Exact categorical cross-entropy ``-sum_c y_c log p_c`` over the class ``axis``.

    ``y_true`` is either one-hot or soft labels of the shape of ``y_pred`` (each row
    summing to 1), or integer class labels of the shape of ``y_pred`` without the class
    axis. ``y_pred`` holds probabilities (each row summing to 1) or, with
    ``from_logits=True``, logits, whose log-softmax is computed without overflow or
    cancellation. With two classes this equals :func:`binary_cross_entropy`.
    ``sample_weight``, ``reduction`` and rounding follow :func:`binary_cross_entropy`.
    """
    if _array_api.is_foreign(y_pred, y_true, sample_weight):
        return _array_api.categorical_cross_entropy(
            y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
            reduction=reduction, axis=axis,
        )
    reduction = check_reduction(reduction)
    p = np.asarray(y_pred)
    y = np.asarray(y_true)
    check_real_array("y_pred", p)
    check_real_array("y_true", y)
    if p.ndim == 0:
        raise ValueError("`y_pred` must have a class axis; received a scalar.")
    (class_axis,) = normalize_axis(axis, p.ndim)
    p = np.moveaxis(p, class_axis, -1)
    n_classes = p.shape[-1]
    sample_shape = p.shape[:-1]

    if y.ndim == p.ndim - 1 and y.dtype.kind in "iu":
        labels = _integer_labels(y, n_classes, sample_shape)
        y = None
    elif y.ndim == p.ndim:
        y = np.moveaxis(y, class_axis, -1)
        if y.shape != p.shape:
            raise ValueError(
                "`y_true` (one-hot or soft labels) must have the shape of `y_pred`. "
                f"Received y_true.shape={np.asarray(y_true).shape} and "
                f"y_pred.shape={np.asarray(y_pred).shape}."
            )
        check_unit_interval("y_true", y, "labels")
        _check_rows_sum_to_one("y_true", y, "label distributions")
    else:
        raise ValueError(
            "`y_true` must be one-hot labels shaped like `y_pred` "
            f"{np.asarray(y_pred).shape}, or integer class labels shaped {sample_shape}. "
            f"Received y_true.shape={np.asarray(y_true).shape} with dtype {y.dtype}."
        )
    weight = check_sample_weight(sample_weight, sample_shape)
    check_nonempty("y_pred", np.empty(sample_shape), reduction)
    if not from_logits:
        check_unit_interval("y_pred", p, "probabilities (pass from_logits=True for logits)")
        _check_rows_sum_to_one("y_pred", p, "probabilities")

    output = result_dtype(p.dtype)
    work = working_dtype(output, needs_extended=True)
    pw = p.astype(work, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        per_class = _losses_per_class_from_logits(pw) if from_logits else -np.log(pw)
        if y is None:
            losses = np.take_along_axis(per_class, labels[..., None], axis=-1)[..., 0]
        else:
            losses = np.sum(ew.xlog_or_zero(np, y.astype(work), per_class), axis=-1)
    result = reduce_losses(losses, weight, reduction, None)
    warn_if_infinite(losses, result, weight=weight, stacklevel=2)
    return _round_once(result, output)
