"""The information-theory view: cross-entropy = label entropy + KL divergence."""

from __future__ import annotations

import numpy as np

from ._core.checks import (
    as_array,
    check_nonempty,
    check_real_array,
    check_reduction,
    check_sample_weight,
    check_unit_interval,
)
from ._core.inputs import check_labels_and_predictions
from ._core.precision import result_dtype, round_once, working_dtype
from ._numpy import summation
from ._core.reduction import normalize_axis, warn_if_infinite
from ._numpy import elementwise as ew


def binary_entropy(p):
    """Binary entropy ``H(p) = -p log p - (1 - p) log(1 - p)`` in nats, per element.

    ``0 log 0 = 0``, so ``H(0) = H(1) = 0``; the maximum is ``log 2`` at ``p = 1/2``.
    It is the smallest binary cross-entropy any prediction can reach on soft label
    ``p``: ``BCE(y, p) = H(y) + KL(y || p)``.
    """
    values = as_array("p", p)
    check_real_array("p", values)
    check_unit_interval("p", values, "probabilities")
    output = result_dtype(values.dtype)
    work = working_dtype(output, needs_extended=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = ew.binary_entropy(np, values.astype(work))
    return round_once(entropy, output)


def binary_kl_divergence(y_true, y_pred, *, sample_weight=None, reduction="mean", axis=None):
    """``KL(y || p) = BCE(y, p) - H(y)``: the part of the loss a better prediction could remove.

    Non-negative, and exactly 0 where ``p == y``. Computed without subtracting the
    two large terms, so it stays accurate (to relative precision) as ``p`` approaches
    ``y``. Arguments mean what they mean in :func:`binary_cross_entropy`.
    """
    reduction = check_reduction(reduction)
    y, p = check_labels_and_predictions(y_true, y_pred, from_logits=False, logits_allowed=False)
    weight = check_sample_weight(sample_weight, y.shape)
    check_nonempty("y_true", y, reduction)
    axes = normalize_axis(axis, y.ndim)
    output = result_dtype(p.dtype)
    work = working_dtype(output, needs_extended=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        divergence = ew.binary_kl(np, y.astype(work), p.astype(work))
    result = summation.reduce(divergence, weight, reduction, axes)
    warn_if_infinite(divergence, result, weight=weight, stacklevel=2)
    return round_once(result, output)
