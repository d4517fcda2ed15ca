"""Reduction: the one step that turns per-element losses into a number (or an array over ``axis``)."""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import InfiniteLossWarning, check_total_weight, first_index


def normalize_axis(axis: object, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)  # type: ignore[arg-type]
    normalized = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(
                f"`axis` must be None or integers in [-{ndim}, {ndim}) for inputs with "
                f"{ndim} dimension(s). Received axis={axis!r}."
            )
        normalized.append(int(a) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"`axis` must not repeat an axis. Received axis={axis!r}.")
    return tuple(normalized)


def apply_weight(losses: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    if weight is None:
        return losses
    # A zero weight removes the sample, even one whose loss is +inf (0 * inf would be NaN).
    weight = weight.astype(losses.dtype, copy=False)
    with np.errstate(invalid="ignore"):
        return np.where(weight == 0, 0, weight * losses)


def warn_if_infinite(
    losses: np.ndarray, result: np.ndarray, *, weight: np.ndarray | None = None, stacklevel: int
) -> None:
    if not np.isinf(result).any():
        return
    infinite = np.isinf(losses)
    if weight is not None:
        infinite &= weight != 0  # a zero weight removes the sample, infinite or not
    count = int(np.count_nonzero(infinite))
    warnings.warn(
        f"{count} of {losses.size} samples have infinite loss (first at index "
        f"{first_index(infinite)}): a prediction of exactly 0 for a positive label or "
        "exactly 1 for a negative one. This is the exact value, not an error. To bound "
        "each sample's loss at -log(c), pass clip=c (e.g. clip=1e-15, as XGBoost and "
        "LightGBM do implicitly).",
        InfiniteLossWarning,
        stacklevel=stacklevel + 1,
    )


def reduce_losses(
    losses: np.ndarray,
    weight: np.ndarray | None,
    reduction: str,
    axis: tuple[int, ...] | None,
) -> np.ndarray:
    """Weighted per-element losses -> 'none' | 'sum' | 'mean' (= sum(w*l) / sum(w))."""
    weighted = apply_weight(losses, weight)
    if reduction == "none":
        return weighted
    total = np.sum(weighted, axis=axis)
    if reduction == "sum":
        return total
    if weight is None:
        count = weighted.size if axis is None else int(np.prod([weighted.shape[a] for a in axis]))
        return total / count
    total_weight = np.sum(weight, axis=axis, dtype=np.float64)
    check_total_weight(total_weight, axis is not None)
    return total / total_weight.astype(total.dtype, copy=False)
