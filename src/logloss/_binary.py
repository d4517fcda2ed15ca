"""Binary cross-entropy, its gradient and hessian: the public entry points.

Each call goes to one engine: the array-API engine for arrays of another library, else NumPy,
where a full reduction first tries the chunked fast path and otherwise (or when it cannot vouch
for its answer) the reference path, which owns every error and warning.
"""

from __future__ import annotations

import numpy as np

from ._array_api.namespace import is_foreign
from ._core.checks import check_flag, check_nonempty, check_reduction
from ._core.inputs import prepare_binary
from ._core.precision import round_once
from ._core.reduction import apply_weight, normalize_axis, warn_if_infinite
from ._numpy import chunked, summation, training
from ._numpy.reference import binary_derivative, binary_losses


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
    validate: bool = True,
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
        Off by default. When given, predictions are bounded to ``[clip, 1 - clip]``, with
        ``1 - clip`` exact (it would round to 1 in float64 below ~1.1e-16): a clipped sample's
        terms are those of a prediction of exactly ``clip`` or ``1 - clip``, capping each loss
        at ``-log(clip)``, the same on every path (probabilities or logits, any dtype, any library).
    validate : bool
        PyTorch, JAX and TensorFlow arrays: ``False`` skips the value checks (NaN, labels or
        probabilities outside [0, 1], bad weights) and the ``InfiniteLossWarning``, the only
        steps that read values back to the host; a bad value then gives NaN or a meaningless
        number instead of an error. Shapes, dtypes and options are still checked. NumPy input is
        always checked.

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
    if not isinstance(validate, (bool, np.bool_)):
        raise ValueError(f"Invalid value for argument `validate`. Expected True or False. Received: validate={validate!r}")
    from_logits = check_flag("from_logits", from_logits)
    if is_foreign(y_pred, y_true, sample_weight, pos_weight):
        from ._array_api import binary as array_api

        # The NumPy engine's kernels, for the engine to use on CPU arrays it can view as NumPy.
        return array_api.binary_cross_entropy(
            y_true, y_pred, from_logits=from_logits, sample_weight=sample_weight,
            pos_weight=pos_weight, label_smoothing=label_smoothing, reduction=reduction,
            axis=axis, clip=clip, validate=bool(validate), kernel=training.loss_and_gradient,
        )
    reduction = check_reduction(reduction)
    options = dict(from_logits=from_logits, sample_weight=sample_weight, pos_weight=pos_weight,
                   label_smoothing=label_smoothing, clip=clip)
    fast = chunked.binary_reduction(y_true, y_pred, reduction=reduction, axis=axis, **options)
    if fast is not None:
        return fast
    inputs = prepare_binary(y_true, y_pred, hard_probabilities_exact=True, summed=reduction != "none", **options)
    check_nonempty("y_true", inputs.y, reduction)
    axes = normalize_axis(axis, inputs.y.ndim)
    losses = binary_losses(inputs)
    result = summation.reduce(losses, inputs.sample_weight, reduction, axes)
    warn_if_infinite(losses, result, weight=inputs.sample_weight, stacklevel=2)
    return round_once(result, inputs.output_dtype)


def _derivative(kind: str, y_true, y_pred, from_logits, sample_weight, pos_weight, label_smoothing):
    from_logits = check_flag("from_logits", from_logits)
    if is_foreign(y_pred, y_true, sample_weight, pos_weight):
        from ._array_api import binary as array_api

        return array_api.derivative(
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
    values = binary_derivative(kind, inputs)
    return round_once(apply_weight(np, values, inputs.sample_weight), inputs.output_dtype)


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
