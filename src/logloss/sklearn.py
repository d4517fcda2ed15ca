"""scikit-learn drop-in: ``log_loss`` with scikit-learn's signature, and scorers for model selection.

``log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None)`` takes what
``sklearn.metrics.log_loss`` takes — class labels of any kind (strings too), ``predict_proba``'s
``(n, k)`` output or the positive class's ``(n,)`` probabilities, ``labels=`` — and returns the
exact value: no clipping to the dtype's eps, ``log1p`` for ``1 - p``. ``pos_label`` (not in
scikit-learn's ``log_loss``) names the positive class of ``(n,)`` probabilities; by default it is
the greater of the two classes, as there.

Scorers, for ``scoring=`` in ``cross_val_score`` / ``GridSearchCV`` (greater is better):

* ``neg_log_loss``: the exact negative log loss.
* ``scorer(clip=c)``: the same with each loss bounded at ``-log(c)``.

A deliberate choice for models that predict probabilities of exactly 0 or 1 (a decision tree, a
k-NN classifier): when such a model assigns 0 to something that happens, its exact log loss is
+inf and ``neg_log_loss`` scores it -inf, with an ``InfiniteLossWarning``. That ranks it below
every model that never does, which is the truth about it: its probabilities cannot be used as
probabilities. Two such models tie at -inf; to compare them anyway, bound the loss explicitly
with ``scorer(clip=1e-15)`` (scikit-learn's ``neg_log_loss`` clips at the dtype's eps, 2.2e-16,
without saying so).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import make_scorer

from ._binary import binary_cross_entropy
from ._core.checks import check_real_array


def _missing(value) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _check_labels(y: np.ndarray, y_true) -> None:
    """Missing labels (NaN, None, pandas' NA) and numbers mixed with strings are refused by index:
    np.unique made a NaN one more class (its column of predict_proba was read as its probability,
    a plausible number came back) and turned [1, "a"] into strings, silently choosing "a" as the
    positive class, where scikit-learn refuses both."""
    if y.dtype.kind in "US" and not hasattr(y_true, "dtype"):
        # A list of numbers and strings arrives as strings: look at the elements as given.
        y = np.array(list(y_true), dtype=object)
    if y.dtype.kind == "f":
        missing = np.flatnonzero(np.isnan(y))
    elif y.dtype.kind == "O":
        missing = np.flatnonzero([_missing(v) for v in y])
    else:
        return
    if missing.size:
        raise ValueError(
            f"`y_true` must not contain missing labels (NaN, None or NA). Received {_plain(y[missing[0]])!r} "
            f"at index {int(missing[0])}.")
    if y.dtype.kind == "O" and y.size:
        is_string = np.array([isinstance(v, (str, bytes)) for v in y])
        if is_string.any() and not is_string.all():
            k = int(np.flatnonzero(is_string != is_string[0])[0])
            raise ValueError(
                f"`y_true` mixes strings and numbers: {_plain(y[0])!r} at index 0 and {_plain(y[k])!r} at index {k}. "
                "Give every label the same type (as scikit-learn requires).")


def _classes(y: np.ndarray, labels) -> np.ndarray:
    if labels is not None:
        classes = np.unique(np.asarray(labels))
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(
                f"`y_true` contains labels not in `labels`: {unknown[:5].tolist()}. "
                f"Received labels={classes.tolist()}.")
    else:
        classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"`y_true` contains only one label ({classes.tolist()}). Pass all the classes "
            "through the `labels` argument, e.g. labels=[0, 1].")
    return classes


def log_loss(y_true, y_proba=None, *, normalize: bool = True, sample_weight=None, labels=None,
             pos_label=None, clip: float | None = None, y_pred=None) -> float:
    """The exact log loss, with ``sklearn.metrics.log_loss``'s arguments.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Class labels (numbers, strings, bools).
    y_proba : array-like of shape (n,) or (n, k)
        ``predict_proba``'s output, columns in sorted class order; or the positive class's
        probability (then there must be two classes). ``y_pred`` is accepted as its older name.
    normalize : bool
        The (weighted) mean when true, else the (weighted) sum.
    sample_weight : array-like of shape (n,), optional
    labels : array-like, optional
        All the classes, when ``y_true`` does not show them all.
    pos_label : optional
        The positive class for ``(n,)`` probabilities; default: the greater of the two classes.
    clip : float, optional
        Bound each loss at ``-log(clip)``; off by default (scikit-learn clips at the dtype's eps).

    Returns the loss as a float; +inf with an ``InfiniteLossWarning`` when a sample's class was
    given probability 0.
    """
    if y_pred is not None:
        if y_proba is not None:
            raise ValueError("Pass the probabilities once: as `y_proba` (or its old name `y_pred`).")
        y_proba = y_pred
    if y_proba is None:
        raise TypeError("log_loss() needs the predicted probabilities, `y_proba`.")
    y = np.asarray(y_true)
    proba = np.asarray(y_proba)
    check_real_array("y_proba", proba)
    if y.ndim != 1:
        raise ValueError(
            f"`y_true` must be 1-D class labels. Received y_true.shape={y.shape}. For one-hot or "
            "soft labels use logloss.categorical_cross_entropy.")
    _check_labels(y, y_true)
    if proba.ndim == 2 and proba.shape[1] == 1:
        proba = proba[:, 0]
    if proba.ndim not in (1, 2) or proba.shape[0] != y.shape[0]:
        raise ValueError(
            "`y_proba` must have shape (n,) or (n, n_classes) with n = len(y_true). "
            f"Received y_true.shape={y.shape} and y_proba.shape={proba.shape}.")
    classes = _classes(y, labels)
    reduction = "mean" if normalize else "sum"
    if proba.ndim == 1:
        if classes.size != 2:
            raise ValueError(
                f"`y_proba` of shape (n,) is the positive class's probability, so there must be "
                f"two classes. Received {classes.size}: {classes[:10].tolist()}. Pass "
                "predict_proba's (n, n_classes) output.")
        positive = classes[1] if pos_label is None else pos_label
        if positive not in classes:
            raise ValueError(
                f"Invalid value for argument `pos_label`. Expected one of {classes.tolist()}. "
                f"Received: pos_label={pos_label!r}")
        target = (y == positive).astype(np.int8)
        result = binary_cross_entropy(target, proba, sample_weight=sample_weight,
                                      reduction=reduction, clip=clip)
        return float(result)
    if proba.shape[1] != classes.size:
        raise ValueError(
            f"`y_proba` has {proba.shape[1]} columns but there are {classes.size} classes "
            f"({classes[:10].tolist()}). Pass every class through `labels`.")
    sums = np.sum(proba, axis=1, dtype=np.float64)
    if not np.allclose(sums, 1, rtol=math.sqrt(np.finfo(proba.dtype).eps) if proba.dtype.kind == "f"
                       else 1e-8, atol=0):
        warnings.warn("The y_prob values do not sum to one. Make sure to pass probabilities.",
                      UserWarning, stacklevel=2)
    picked = proba[np.arange(y.size), np.searchsorted(classes, y)]
    # -log of the true class's probability: the binary loss with label 1, exactly
    result = binary_cross_entropy(np.ones(y.size, dtype=np.int8), picked,
                                  sample_weight=sample_weight, reduction=reduction, clip=clip)
    return float(result)


def scorer(*, clip: float | None = None):
    """A ``scoring=`` object: the negative log loss (greater is better), exact unless ``clip``."""
    return make_scorer(log_loss, greater_is_better=False, response_method="predict_proba",
                       clip=clip)


neg_log_loss = scorer()

__all__ = ["log_loss", "neg_log_loss", "scorer"]
