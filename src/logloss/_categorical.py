"""Categorical cross-entropy: the K-class case, with one-hot, soft or integer labels."""

from __future__ import annotations


from ._array_api.namespace import is_foreign
from ._core.checks import check_flag, check_reduction
from ._core.inputs import prepare_categorical
from ._core.precision import round_once, working_dtype
from ._numpy import summation
from ._core.reduction import warn_if_infinite
from ._numpy.reference import categorical_losses


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
    from_logits = check_flag("from_logits", from_logits)
    if is_foreign(y_pred, y_true, sample_weight):
        from ._array_api import categorical as array_api

        return array_api.categorical_cross_entropy(
            y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
            reduction=reduction, axis=axis,
        )
    reduction = check_reduction(reduction)
    inputs = prepare_categorical(
        y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
        reduction=reduction, axis=axis,
    )
    work = working_dtype(inputs.output_dtype, needs_extended=True)
    losses = categorical_losses(inputs, work, from_logits)
    result = summation.reduce(losses, inputs.sample_weight, reduction, None)
    warn_if_infinite(losses, result, weight=inputs.sample_weight, stacklevel=2)
    return round_once(result, inputs.output_dtype)
