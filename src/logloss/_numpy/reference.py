"""The reference path: every element in the working precision (long double where float64 would
round more than once), on inputs already checked by ``_core.inputs``."""

from __future__ import annotations

import numpy as np

from .._core import derivatives
from .._core.inputs import BinaryInputs, CategoricalInputs
from . import elementwise as ew

_DERIVATIVES = {
    ("grad", False): derivatives.grad_probabilities,
    ("grad", True): derivatives.grad_logits,
    ("hessian", False): derivatives.hessian_probabilities,
    ("hessian", True): derivatives.hessian_logits,
}


def binary_losses(inputs: BinaryInputs) -> np.ndarray:
    """Per-element binary cross-entropy, before weighting."""
    # Exact infinities (log 0) are results here, not floating-point accidents.
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        function = ew.bce_from_logits if inputs.from_logits else ew.bce_from_probabilities
        return function(np, inputs.y, inputs.x, inputs.pos_weight, inputs.clip)


def binary_derivative(kind: str, inputs: BinaryInputs) -> np.ndarray:
    """Per-element gradient (``kind="grad"``) or hessian, before weighting."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _DERIVATIVES[kind, inputs.from_logits](np, inputs.y, inputs.x, inputs.pos_weight)


def _losses_per_class_from_logits(z: np.ndarray) -> np.ndarray:
    """-log softmax(z) over the last axis, exactly where the correct class dominates."""
    top = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, top, axis=-1)
    rest = np.exp(z - m)
    # logsumexp(z) = m + log1p(sum over the other classes of e^(z_j - m)); leaving the top
    # class out of the sum keeps a tiny loss (a confident, correct prediction) accurate.
    np.put_along_axis(rest, top, 0, axis=-1)
    return (m - z) + np.log1p(np.sum(rest, axis=-1, keepdims=True))


def categorical_losses(inputs: CategoricalInputs, work: np.dtype, from_logits: bool) -> np.ndarray:
    """Per-sample categorical cross-entropy in ``work`` precision, before weighting."""
    pw = inputs.p.astype(work, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        per_class = _losses_per_class_from_logits(pw) if from_logits else -np.log(pw)
        if inputs.labels is not None:
            return np.take_along_axis(per_class, inputs.labels[..., None], axis=-1)[..., 0]
        return np.sum(ew.xlog_or_zero(np, inputs.y.astype(work), per_class), axis=-1)
