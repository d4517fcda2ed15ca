"""Binary cross-entropy: validate, compute per element in the working precision, reduce, round once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _array_api
from . import _elementwise as ew
from . import _fast
from ._precision import result_dtype, working_dtype
from ._reduction import apply_weight, normalize_axis, reduce_losses, warn_if_infinite
from ._validation import (
    check_clip,
    check_no_nan,
    check_nonempty,
    check_pos_weight,
    check_probability_scalar,
    check_real_array,
    check_reduction,
    check_same_shape,
    check_sample_weight,
    check_unit_interval,
    raise_swapped_arguments,
)


@dataclass(frozen=True)
class BinaryInputs:
    """Validated inputs, cast to the working precision."""

    y: np.ndarray
    x: np.ndarray  # probabilities, or logits when from_logits
    pos_weight: np.ndarray | None
    sample_weight: np.ndarray | None
    output_dtype: np.dtype
    from_logits: bool


def _is_hard(y: np.ndarray) -> bool:
    if y.dtype.kind in "biu":
        return True  # already checked to lie in [0, 1]
    return bool(np.all((y == 0) | (y == 1)))


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
) -> BinaryInputs:
    """Check every argument and convert to the working precision.

    ``hard_probabilities_exact`` says that a float64 computation is already within
    1 ulp for hard labels from probabilities (true of the loss, one libm call).
    """
    y = np.asarray(y_true)
    x = np.asarray(y_pred)
    check_real_array("y_true", y)
    check_real_array("y_pred", x)
    check_same_shape("y_true", y, "y_pred", x)
    check_unit_interval("y_true", y, "labels")
    if from_logits:
        check_no_nan("y_pred", x)
    else:
        check_unit_interval("y_pred", x, "probabilities (pass from_logits=True for logits)")
    smoothing = check_probability_scalar("label_smoothing", label_smoothing)
    bound = check_clip(clip)
    pw = check_pos_weight(pos_weight, y.shape)
    weight = check_sample_weight(sample_weight, y.shape)

    output = result_dtype(x.dtype)
    hard = smoothing == 0 and _is_hard(y)
    if not from_logits and smoothing == 0 and x.size and not hard and _is_hard(x):
        raise_swapped_arguments()
    exact_in_output = hard and hard_probabilities_exact and not from_logits
    work = working_dtype(output, needs_extended=not exact_in_output)

    yw = y.astype(work, copy=False)
    if smoothing:
        # Keras's definition: y * (1 - s) + s / 2.
        yw = yw * (1 - work.type(smoothing)) + work.type(smoothing) / 2
    xw = x.astype(work, copy=False)
    if bound is not None:
        if from_logits:
            # The logit of `bound`, so clipping means the same on both paths.
            limit = np.log(work.type(bound)) - np.log1p(-work.type(bound))
            xw = np.clip(xw, limit, -limit)
        else:
            xw = np.clip(xw, work.type(bound), 1 - work.type(bound))
    pww = None if pw is None else pw.astype(work)
    return BinaryInputs(yw, xw, pww, weight, output, from_logits)


def _per_element(inputs: BinaryInputs) -> np.ndarray:
    # Exact infinities (log 0) are results here, not floating-point accidents.
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if inputs.from_logits:
            return ew.bce_from_logits(np, inputs.y, inputs.x, inputs.pos_weight)
        return ew.bce_from_probabilities(np, inputs.y, inputs.x, inputs.pos_weight)


def binary_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    sample_weight=None,
    pos_weight=None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    axis=None,
    clip: float | None = None,
):
    """Exact binary cross-entropy (log loss).

    Per element, ``L = -[pw*y*log(p) + (1 - y)*log(1 - p)]`` for probabilities ``p``,
    or ``L = pw*y*softplus(-z) + (1 - y)*softplus(z)`` for logits ``z``
    (``from_logits=True``), with the convention ``0 * log 0 = 0``.

    Parameters
    ----------
    y_true : array_like
        Labels in [0, 1]: bool, int (0/1) or float (hard or soft).
    y_pred : array_like
        Probabilities in [0, 1], or logits (any real, ±inf included) with
        ``from_logits=True``. Same shape as ``y_true``.
    from_logits : bool
        Whether ``y_pred`` holds logits.
    sample_weight : array_like, optional
        Non-negative weights broadcastable to the label shape. ``"mean"`` then
        means ``sum(w * L) / sum(w)``.
    pos_weight : float or array_like, optional
        Multiplies the positive term (PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``);
        broadcastable to the label shape, e.g. one value per label column.
    label_smoothing : float
        ``s`` in [0, 1]: labels become ``y * (1 - s) + s / 2`` (Keras's definition).
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the (weighted) per-element losses.
    axis : int or tuple of int, optional
        Reduce over these axes only (e.g. ``axis=0`` gives one loss per label column).
    clip : float, optional
        Off by default. When given, predictions are bounded to ``[clip, 1 - clip]``
        (for logits, to the logits of those), capping each loss at ``-log(clip)``.

    Returns
    -------
    The loss in the dtype of ``y_pred`` (float64 for int or bool input): a NumPy
    scalar for a full reduction, else an array. Float16 and float32 are computed in
    float64 and float64 in extended precision where needed, then rounded once, so
    each element is within 1 ulp of the exact value.

    Warns
    -----
    InfiniteLossWarning
        When the exact loss is +inf (``p = 0`` for a positive label or ``p = 1`` for
        a negative one). The infinity is returned, not clipped.
    """
    if _array_api.is_foreign(y_pred, y_true, sample_weight, pos_weight):
        return _array_api.binary_cross_entropy(
            y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
            pos_weight=pos_weight, label_smoothing=label_smoothing, reduction=reduction,
            axis=axis, clip=clip,
        )
    reduction = check_reduction(reduction)
    options = dict(from_logits=from_logits, sample_weight=sample_weight, pos_weight=pos_weight,
                   label_smoothing=label_smoothing, clip=clip)
    fast = _fast.binary_reduction(y_true, y_pred, reduction=reduction, axis=axis, **options)
    if fast is not None:
        return fast
    inputs = prepare_binary(y_true, y_pred, hard_probabilities_exact=True, **options)
    check_nonempty("y_true", inputs.y, reduction)
    axes = normalize_axis(axis, inputs.y.ndim)
    losses = _per_element(inputs)
    result = reduce_losses(losses, inputs.sample_weight, reduction, axes)
    warn_if_infinite(losses, result, weight=inputs.sample_weight, stacklevel=2)
    return _round_once(result, inputs.output_dtype)


def _round_once(result: np.ndarray, dtype: np.dtype):
    # A value beyond the output's range (1/p**2 at p = 1e-300) rounds to inf: that is the
    # correctly rounded result, not an accident to warn about.
    with np.errstate(over="ignore"):
        rounded = np.asarray(result).astype(dtype)
    return rounded[()] if rounded.ndim == 0 else rounded


def _derivative(kind: str, y_true, y_pred, from_logits, sample_weight, pos_weight, label_smoothing):
    if _array_api.is_foreign(y_pred, y_true, sample_weight, pos_weight):
        return _array_api.derivative(
            kind, y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
            pos_weight=pos_weight, label_smoothing=label_smoothing,
        )
    inputs = prepare_binary(
        y_true,
        y_pred,
        from_logits=from_logits,
        sample_weight=sample_weight,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
    )
    functions = {
        ("grad", False): ew.bce_grad_probabilities,
        ("grad", True): ew.bce_grad_logits,
        ("hessian", False): ew.bce_hessian_probabilities,
        ("hessian", True): ew.bce_hessian_logits,
    }
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        values = functions[kind, from_logits](np, inputs.y, inputs.x, inputs.pos_weight)
    return _round_once(apply_weight(values, inputs.sample_weight), inputs.output_dtype)


def binary_cross_entropy_gradient(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    sample_weight=None,
    pos_weight=None,
    label_smoothing: float = 0.0,
):
    """Per-element derivative of the loss with respect to ``y_pred``.

    From logits: ``sigmoid(z) - y`` (``(1 - y)*sigmoid(z) - pw*y*sigmoid(-z)`` with
    ``pos_weight``); from probabilities: ``-pw*y/p + (1 - y)/(1 - p)``. Multiplied by
    ``sample_weight`` when given. For the gradient of the mean, divide by the total
    weight (or the count). Exact and finite wherever the true value is finite; the
    arguments mean what they mean in :func:`binary_cross_entropy`.
    """
    return _derivative("grad", y_true, y_pred, from_logits, sample_weight, pos_weight, label_smoothing)


def binary_cross_entropy_hessian(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    sample_weight=None,
    pos_weight=None,
    label_smoothing: float = 0.0,
):
    """Per-element second derivative of the loss with respect to ``y_pred``.

    From logits: ``sigmoid(z) * (1 - sigmoid(z))`` (times ``1 - y + pw*y``); from
    probabilities: ``pw*y/p**2 + (1 - y)/(1 - p)**2``. Together with
    :func:`binary_cross_entropy_gradient` this is a gradient-boosting objective
    (XGBoost, LightGBM custom ``obj``).
    """
    return _derivative("hessian", y_true, y_pred, from_logits, sample_weight, pos_weight, label_smoothing)
