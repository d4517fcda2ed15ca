"""Inputs checked and prepared once, for both engines: the NumPy engine computes on them, and the
array-API engine calls them on host copies when its own one-sync check fails, so every library
gets the same error message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import (
    as_array,
    check_clip,
    check_no_nan,
    check_pos_weight,
    check_probability_scalar,
    check_real_array,
    check_same_shape,
    check_nonempty,
    check_sample_weight,
    check_unit_interval,
    format_index,
    raise_swapped_arguments,
)
from .precision import result_dtype, working_dtype
from .reduction import normalize_axis


@dataclass(frozen=True)
class BinaryInputs:
    """Validated inputs, cast to the working precision."""

    y: np.ndarray
    x: np.ndarray  # probabilities, or logits when from_logits
    pos_weight: np.ndarray | None
    sample_weight: np.ndarray | None
    output_dtype: np.dtype
    from_logits: bool
    clip: float | None = None


def is_hard(y: np.ndarray) -> bool:
    if y.dtype.kind in "biu":
        return True  # already checked to lie in [0, 1]
    return bool(np.all((y == 0) | (y == 1)))


def check_labels_and_predictions(y_true, y_pred, *, from_logits: bool, logits_allowed: bool = True):
    """(labels, predictions) as arrays, after the checks every binary entry point makes first:
    real numbers, one shape, labels in [0, 1], probabilities in [0, 1] or logits without NaN."""
    y = as_array("y_true", y_true)
    x = as_array("y_pred", y_pred)
    check_real_array("y_true", y)
    check_real_array("y_pred", x)
    check_same_shape("y_true", y, "y_pred", x)
    check_unit_interval("y_true", y, "labels")
    if from_logits:
        check_no_nan("y_pred", x)
    else:
        hint = " (pass from_logits=True for logits)" if logits_allowed else ""
        check_unit_interval("y_pred", x, "probabilities" + hint)
    return y, x


def prepare_binary(
    y_true,
    y_pred,
    *,
    from_logits: bool,
    sample_weight=None,
    pos_weight=None,
    label_smoothing: float = 0.0,
    clip: float | None = None,
    hard_probabilities_exact: bool = False,
    summed: bool = False,
) -> BinaryInputs:
    """Check every argument and convert to the working precision.

    ``hard_probabilities_exact`` says that a float64 computation is already within
    1 ulp for hard labels from probabilities (true of the loss, one libm call).
    ``summed``: the losses are only added up, where a weight's multiply (a second rounding of
    at most u per term) cannot move the sum by more than that relative.
    """
    y, x = check_labels_and_predictions(y_true, y_pred, from_logits=from_logits)
    smoothing = check_probability_scalar("label_smoothing", label_smoothing)
    bound = check_clip(clip)
    pw = check_pos_weight(pos_weight, y.shape)
    weight = check_sample_weight(sample_weight, y.shape)

    output = result_dtype(x.dtype)
    hard = smoothing == 0 and is_hard(y)
    # (With clip every loss is finite: 0/1 predictions are what clip is for, as on other libraries.)
    if not from_logits and smoothing == 0 and bound is None and x.size and not hard and is_hard(x):
        raise_swapped_arguments()
    # A pos_weight or sample_weight multiplies the loss: a second rounding in float64, which
    # would put a per-element loss 1.4 ulp off (not a sum: see `summed`).
    # (A weight of exactly 1 multiplies exactly: it must not change which precision is used.)
    weighted = any(w is not None and not bool(np.all(w == 1)) for w in (pw, weight))
    exact_in_output = hard and hard_probabilities_exact and not from_logits and (summed or not weighted)
    work = working_dtype(output, needs_extended=not exact_in_output)

    yw = y.astype(work, copy=False)
    if smoothing:
        # Keras's definition: y * (1 - s) + s / 2.
        yw = yw * (1 - work.type(smoothing)) + work.type(smoothing) / 2
    xw = x.astype(work, copy=False)
    pww = None if pw is None else pw.astype(work)
    # clip is applied to the loss terms (precision.clip_bounds), not to xw: 1 - clip rounds to 1
    # in float64 below ~1.1e-16.
    return BinaryInputs(yw, xw, pww, weight, output, from_logits, bound)


def check_rows_sum_to_one(name: str, values: np.ndarray, what: str) -> None:
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


def label_shape_error(kind: str, *, y_shape, p_shape=None, sample_shape=None, y_dtype=None) -> ValueError:
    """The one message for categorical labels of the wrong shape, for every engine."""
    if kind == "integer":
        return ValueError(
            "Integer class labels must have the shape of `y_pred` without its class axis. "
            f"Expected y_true.shape={tuple(sample_shape)}, received {tuple(y_shape)}."
        )
    if kind == "one-hot":
        return ValueError(
            "`y_true` (one-hot or soft labels) must have the shape of `y_pred`. "
            f"Received y_true.shape={tuple(y_shape)} and y_pred.shape={tuple(p_shape)}."
        )
    return ValueError(
        "`y_true` must be one-hot labels shaped like `y_pred` "
        f"{tuple(p_shape)}, or integer class labels shaped {tuple(sample_shape)}. "
        f"Received y_true.shape={tuple(y_shape)} with dtype {y_dtype}."
    )


def integer_labels(y: np.ndarray, n_classes: int, sample_shape: tuple[int, ...]) -> np.ndarray:
    if y.shape != sample_shape:
        raise label_shape_error("integer", y_shape=y.shape, sample_shape=sample_shape)
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


def check_logits(z: np.ndarray) -> None:
    """Logits of K classes: finite or -inf (an impossible class), and not all -inf in a sample."""
    bad = np.isnan(z) | np.isposinf(z)
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            "`y_pred` logits must be finite or -inf (an impossible class). "
            f"Received {z.ravel()[flat].item()!r} at index {format_index(flat, z.shape)}."
        )
    if z.size:
        impossible = np.all(np.isneginf(z), axis=-1)
        if impossible.any():
            flat = int(np.argmax(impossible.ravel()))
            raise ValueError(
                "`y_pred` has a sample whose logits are all -inf (no possible class), at "
                f"sample index {format_index(flat, impossible.shape)}."
            )


@dataclass(frozen=True)
class CategoricalInputs:
    """Validated inputs with the class axis last; exactly one of ``y`` and ``labels`` is set."""

    p: np.ndarray  # probabilities, or logits when from_logits
    y: np.ndarray | None  # one-hot or soft labels
    labels: np.ndarray | None  # integer class labels (intp), shaped like p without its class axis
    sample_weight: np.ndarray | None
    output_dtype: np.dtype


def prepare_categorical(y_true, y_pred, *, from_logits: bool, sample_weight, reduction: str, axis) -> CategoricalInputs:
    p = as_array("y_pred", y_pred)
    y = as_array("y_true", y_true)
    check_real_array("y_pred", p)
    check_real_array("y_true", y)
    if p.ndim == 0:
        raise ValueError("`y_pred` must have a class axis; received a scalar.")
    (class_axis,) = normalize_axis(axis, p.ndim)
    p = np.moveaxis(p, class_axis, -1)
    n_classes = p.shape[-1]
    sample_shape = p.shape[:-1]

    labels = None
    if y.ndim == p.ndim - 1 and y.dtype.kind in "iu":
        labels = integer_labels(y, n_classes, sample_shape)
        y = None
    elif y.ndim == p.ndim:
        y = np.moveaxis(y, class_axis, -1)
        if y.shape != p.shape:
            raise label_shape_error("one-hot", y_shape=np.shape(y_true), p_shape=np.shape(y_pred))
        check_unit_interval("y_true", y, "labels")
        check_rows_sum_to_one("y_true", y, "label distributions")
    else:
        raise label_shape_error("neither", y_shape=y.shape, p_shape=np.shape(y_pred),
                                sample_shape=sample_shape, y_dtype=str(y.dtype))
    weight = check_sample_weight(sample_weight, sample_shape)
    check_nonempty("y_pred", np.empty(sample_shape), reduction)
    if from_logits:
        check_logits(p)
    else:
        check_unit_interval("y_pred", p, "probabilities (pass from_logits=True for logits)")
        check_rows_sum_to_one("y_pred", p, "probabilities")
    return CategoricalInputs(p, y, labels, weight, result_dtype(p.dtype))
