"""Every framework's log loss, reproduced: its bound, its arithmetic and its weight normalization.

Each function takes ``(y_true, y_pred, *, sample_weight=None, reduction="mean")`` (and
``from_logits`` where the framework has a logits form) and returns the number that framework
returns for the same arrays: per element with ``reduction="none"`` (times the weight, as the
frameworks do), the weighted sum with ``"sum"``, and with ``"mean"`` the framework's own mean,
which divides by the total weight or, for Keras and PyTorch, by the element count.

Where a framework computes in float32 (XGBoost always; Keras, PyTorch and tf.keras in the
input's dtype) the elements are computed in float32 with the same operations in the same
order. Sums are taken in float64 and rounded once to the framework's dtype, so a float32 mean
can differ from the framework's own float32 sum in its last bits; everything else matches
element for element (the tests run each framework on adversarial data and compare).

NumPy only: no framework is imported here. ``logloss.compare`` puts all of them side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._compare import Column, CompareState
from ._core.checks import check_reduction, check_sample_weight
from ._core.inputs import check_labels_and_predictions

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class Convention:
    """What one framework does, for tables and error messages."""

    name: str
    framework: str  # as the framework spells the function
    source: str  # the file (and version) the implementation follows
    bound: str  # what it does to a confident mistake
    normalization: str  # "weight": sum(w*l)/sum(w); "count": sum(w*l)/n
    probabilities: bool  # accepts probabilities
    logits: bool  # accepts logits (from_logits=True)
    hard_labels_only: bool  # refuses soft labels (they are classes there)
    units: str = "nats"


def _float_dtype(x: np.ndarray) -> np.dtype:
    if x.dtype == np.float32 or x.dtype == np.float64:
        return x.dtype
    if x.dtype.kind == "f" and x.dtype.itemsize < 4:
        # Keras's Loss casts float16 to float32; scikit-learn and PyTorch keep it (see there)
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _torch_dtype(x: np.ndarray) -> np.dtype:
    # PyTorch keeps half on CPU: each op computes in float and rounds its result to half.
    return x.dtype if x.dtype == np.float16 else _float_dtype(x)


def _prepare(name: str, y_true, y_pred, sample_weight, from_logits: bool):
    info = CONVENTIONS[name]
    if from_logits and not info.logits:
        raise ValueError(
            f"The `{name}` convention ({info.framework}) has no logits form: it takes "
            "probabilities. Pass from_logits=False with probabilities."
        )
    if not from_logits and not info.probabilities:
        raise ValueError(
            f"The `{name}` convention ({info.framework}) takes logits only. Pass "
            "from_logits=True with logits"
            + (", or use `torch` for probabilities." if name == "torch_logits" else ".")
        )
    y, x = check_labels_and_predictions(y_true, y_pred, from_logits=from_logits)
    if info.hard_labels_only and y.dtype.kind == "f" and y.size:
        soft = (y != 0) & (y != 1)
        if soft.any():
            index = int(np.argmax(soft.ravel()))
            raise ValueError(
                f"The `{name}` convention ({info.framework}) takes class labels 0 and 1, not soft "
                f"labels. Received {y.ravel()[index].item()!r} at index {index}."
            )
    weight = check_sample_weight(sample_weight, y.shape)
    return y, x, weight


def _reduce(losses, weight, reduction: str, normalization: str, dtype, *, pre_weighted=False):
    """``none``: w*l; ``sum``: sum(w*l); ``mean``: divided by sum(w) or the count.

    Sums are float64 and rounded once to ``dtype``.
    """
    weighted = losses if (weight is None or pre_weighted) else losses * weight.astype(losses.dtype)
    if reduction == "none":
        return weighted
    total = np.sum(weighted, dtype=np.float64)
    if reduction == "sum":
        return dtype.type(total)
    if normalization == "count" or weight is None:
        divisor = float(losses.size)
    else:
        divisor = float(np.sum(weight, dtype=np.float64))
    if divisor == 0:
        raise ValueError(
            "The mean is undefined: "
            + ("the input is empty." if losses.size == 0 else "the total `sample_weight` is zero.")
        )
    return dtype.type(total / divisor)


# -- the frameworks, one per-element function each ------------------------------------------


def _sklearn(y, x, from_logits):
    # check_array keeps float16, so log_loss clips at float16's eps (9.8e-4) and logs in float16.
    d = x.dtype if x.dtype == np.float16 else _float_dtype(x)
    x = x.astype(d, copy=False)
    eps = np.finfo(d).eps
    # log_loss stacks [1 - p, p], clips both to [eps, 1 - eps], and takes -log of the label's column.
    q = np.where(y == 1, x, d.type(1) - x)
    with np.errstate(divide="ignore"):
        return -np.log(np.clip(q, eps, d.type(1) - eps))


def _keras_logits(y, z):
    # tf.nn.sigmoid_cross_entropy_with_logits: relu(z) - z*y + log1p(exp(-|z|)).
    y = y.astype(z.dtype, copy=False)
    relu = np.where(z >= 0, z, z.dtype.type(0))
    neg_abs = np.where(z >= 0, -z, z)
    return (relu - z * y) + np.log1p(np.exp(neg_abs))


def _keras(y, x, from_logits):
    d = _float_dtype(x)
    x = x.astype(d, copy=False)
    if from_logits:
        return _keras_logits(y, x)
    y = y.astype(d, copy=False)
    c = np.clip(x, d.type(1e-7), d.type(1.0 - 1e-7))
    bce = y * np.log(c)
    bce += (d.type(1) - y) * np.log(d.type(1) - c)
    return -bce


def _tf_keras_legacy(y, x, from_logits):
    d = _float_dtype(x)
    x = x.astype(d, copy=False)
    if from_logits:
        return _keras_logits(y, x)
    y = y.astype(d, copy=False)
    eps = d.type(1e-7)
    c = np.clip(x, eps, d.type(1) - eps)
    # Clipped, then epsilon added again inside each log.
    bce = y * np.log(c + eps)
    bce += (d.type(1) - y) * np.log(d.type(1) - c + eps)
    return -bce


def _torch_probabilities(y, p):
    d = p.dtype
    y = y.astype(d, copy=False)
    floor = d.type(-100)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), floor)
        log_q = np.maximum(np.log1p(-p), floor)
    return (y - d.type(1)) * log_q - y * log_p


def _torch(y, x, from_logits):
    d = _torch_dtype(x)
    x = x.astype(d, copy=False)
    if from_logits:
        w = x.astype(np.float32) if d == np.float16 else x  # half's sigmoid runs in float
        with np.errstate(over="ignore"):
            x = (w.dtype.type(1) / (w.dtype.type(1) + np.exp(-w))).astype(d, copy=False)
    return _torch_probabilities(y, x)  # torch.sigmoid, then BCELoss


def _torch_logits(y, z, from_logits):
    d = _torch_dtype(z)
    z = z.astype(d, copy=False)
    y = y.astype(d, copy=False)
    # (1 - y)*z - log_sigmoid(z), log_sigmoid(z) = min(z, 0) - log1p(exp(-|z|)).
    w = z.astype(np.float32) if d == np.float16 else z  # half's log_sigmoid runs in float
    log_sigmoid = np.minimum(w, w.dtype.type(0)) - np.log1p(np.exp(-np.abs(w)))
    return (d.type(1) - y) * z - log_sigmoid.astype(d, copy=False)


def _log32(x):
    # glibc's logf (what C++ std::log(float) calls) is correctly rounded; NumPy's SIMD float32
    # log is not always, so take the float64 log and round it once.
    return np.log(x.astype(np.float64)).astype(np.float32)


def _xgboost(y, x, from_logits):
    f = np.float32
    p = x.astype(f)
    t = y.astype(f)
    eps = f(1e-16)

    def xlogy(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a - f(0) == f(0), f(0), a * _log32(np.maximum(b, eps)))

    pneg = f(1) - p
    return xlogy(-t, p) + xlogy(-(f(1) - t), pneg)


_LIGHTGBM_EPS = float(np.float32(1e-15))  # kEpsilon is the float 1e-15f
_LIGHTGBM_CAP = float(np.float32(-math.log(_LIGHTGBM_EPS)))  # -std::log(kEpsilon): a float log


def _lightgbm(y, x, from_logits):
    label = y.astype(np.float32)
    prob = x.astype(np.float64)
    if from_logits:
        with np.errstate(over="ignore"):
            prob = 1.0 / (1.0 + np.exp(-prob))  # BinaryLogloss::ConvertOutput, sigmoid = 1
    negative = label <= 0
    q = np.where(negative, 1.0 - prob, prob)
    with np.errstate(divide="ignore"):
        return np.where(q > _LIGHTGBM_EPS, -np.log(q), _LIGHTGBM_CAP)


def _catboost(y, x, from_logits):
    target = (y.astype(np.float32) > np.float32(0.5)).astype(np.float64)  # Logloss: border 0.5
    x = x.astype(np.float64)
    if from_logits:
        f = x
    else:
        with np.errstate(divide="ignore"):
            f = np.log(x) - np.log1p(-x)  # the raw margin a model predicting x carries
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(f)
        tf = np.where(target == 0, 0.0, target * f)
        return np.where(np.isfinite(e), np.log(1 + e) - tf, np.where(target == 1, 0.0, f))


def _spark(y, x, from_logits):
    eps = 1e-15
    p = x.astype(np.float64)
    q = np.where(y == 1, p, 1.0 - p)  # probability(label), with probability = [1 - p, p]
    with np.errstate(divide="ignore"):
        return np.where(q < eps, -math.log(eps),
                        np.where(q > 1 - eps, -math.log1p(-eps), -np.log(q)))


def _h2o(y, x, from_logits):
    p = x.astype(np.float64)
    q = np.where(y == 1, p, 1.0 - p)  # ds[iact + 1], with ds = [label, 1 - p, p]
    err = 1.0 - q
    return -np.log(np.maximum(1e-15, 1.0 - err))


def _torchrec(y, x, from_logits):
    eta = 1e-12
    c = np.clip(x.astype(np.float64), eta, 1 - eta)
    t = y.astype(np.float64)
    return -t * np.log2(c) - (1.0 - t) * np.log2(1.0 - c)


def _yardstick(y, x, from_logits):
    eps = np.finfo(np.float64).eps
    p = x.astype(np.float64)
    q = np.where(y == 1, p, 1.0 - p)  # estimate = cbind(p, 1 - p), event first
    return -np.log(np.maximum(np.minimum(q, 1 - eps), eps))


def _article(y, x, from_logits):
    d = _float_dtype(x)
    x = x.astype(d, copy=False)
    epsilon = 1e-15
    y = y.astype(d, copy=False)
    ones = np.ones_like(y)
    return -(y * np.log(x + epsilon) + (ones - y) * np.log(ones - x + epsilon))


_ELEMENTS: dict[str, Callable] = {
    "sklearn": _sklearn, "keras": _keras, "tf_keras_legacy": _tf_keras_legacy, "torch": _torch,
    "torch_logits": _torch_logits, "xgboost": _xgboost, "lightgbm": _lightgbm,
    "catboost": _catboost, "spark": _spark, "h2o": _h2o, "torchrec": _torchrec,
    "yardstick": _yardstick, "article": _article,
}

CONVENTIONS: dict[str, Convention] = {c.name: c for c in [
    Convention("sklearn", "scikit-learn log_loss",
               "scikit-learn 1.9 sklearn/metrics/_classification.py (log_loss, _log_loss)",
               "clips p to [eps, 1 - eps], eps of the dtype (2.2e-16 float64, 1.2e-7 float32, "
               "9.8e-4 float16)",
               "weight", True, False, True),
    Convention("keras", "Keras 3 binary_crossentropy",
               "Keras 3.15 keras/src/backend/tensorflow/nn.py binary_crossentropy; "
               "keras/src/losses/loss.py reduce_values (sum_over_batch_size)",
               "clips p to [1e-7, 1 - 1e-7]; from logits, no clip (softplus form)", "count", True, True,
               False),
    Convention("tf_keras_legacy", "tf.keras 2 (tf_keras) binary_crossentropy",
               "tf_keras 2.21 tf_keras/src/backend.py binary_crossentropy",
               "clips p to [1e-7, 1 - 1e-7], then adds 1e-7 inside each log", "count", True, True,
               False),
    Convention("torch", "PyTorch BCELoss",
               "PyTorch 2.13 aten/src/ATen/native/Loss.cpp binary_cross_entropy_out_cpu",
               "clamps each log at -100 (from logits: BCELoss(sigmoid(z)))", "count", True, True,
               False),
    Convention("torch_logits", "PyTorch BCEWithLogitsLoss",
               "PyTorch 2.13 aten/src/ATen/native/Loss.cpp binary_cross_entropy_with_logits",
               "none: (1 - y)·z - log_sigmoid(z)", "count", False, True, False),
    Convention("xgboost", "XGBoost logloss metric",
               "XGBoost 3.2 src/metric/elementwise_metric.cu (EvalRowLogLoss, float32 rows)",
               "max(p, 1e-16) in float32; sums in double", "weight", True, False, False),
    Convention("lightgbm", "LightGBM binary_logloss",
               "LightGBM 4.7 src/metric/binary_metric.hpp (BinaryLoglossMetric::LossOnPoint)",
               "labels <= 0 are negative; -log(1e-15f) when q <= 1e-15f", "weight", True, True,
               False),
    Convention("catboost", "CatBoost Logloss",
               "CatBoost 1.2.10 catboost/libs/metrics/metric.cpp (TCrossEntropyMetric)",
               "none: log(1 + e^f) - t·f from the raw margin; target binarised at 0.5",
               "weight", True, True, False),
    Convention("spark", "Spark MulticlassMetrics.logLoss",
               "Spark 4.3 mllib/.../evaluation/MulticlassMetrics.scala logLoss(eps = 1e-15)",
               "-log(1e-15) when q < 1e-15", "weight", True, False, True),
    Convention("h2o", "H2O binomial logloss",
               "h2o-3 h2o-core/src/main/java/hex/ModelMetricsBinomial.java (perRow)",
               "max(1e-15, 1 - (1 - q)): caps at 34.54", "weight", True, False, True),
    Convention("torchrec", "TorchRec NE cross-entropy",
               "torchrec torchrec/metrics/ne.py (compute_cross_entropy, eta = 1e-12)",
               "clamps p to [1e-12, 1 - 1e-12]; log2 (bits)", "weight", True, False, False,
               units="bits"),
    Convention("yardstick", "R yardstick mn_log_loss",
               "yardstick R/prob-mn_log_loss.R (mn_log_loss_multiclass)",
               "clips to [double eps, 1 - double eps]", "weight", True, False, True),
    Convention("article", "the introductory articles' NumPy function",
               "the introductory articles' binary_cross_entropy_loss: "
               "-mean(y*log(p + 1e-15) + (1 - y)*log(1 - p + 1e-15))",
               "adds 1e-15 inside both logs", "weight", True, False, False),
]}


def names() -> tuple[str, ...]:
    """The known convention names, in the order ``compare`` lists them."""
    return tuple(CONVENTIONS)


def check_name(name: object) -> str:
    if name not in CONVENTIONS:
        known = ", ".join(repr(n) for n in CONVENTIONS)
        raise ValueError(
            f"Invalid value for argument `convention`. Expected one of {{{known}}}. "
            f"Received: convention={name!r}"
        )
    return name  # type: ignore[return-value]


def elementwise(name: str, y, x, *, from_logits: bool = False) -> np.ndarray:
    """Per-element losses of convention ``name`` on validated arrays, unweighted."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _ELEMENTS[name](y, x, from_logits)


def _sklearn_weight_dtype(sample_weight, dtype) -> np.dtype:
    # log_loss hands the weights as given to np.average / np.dot, which promote: float32 weights
    # keep a float32 loss float32; a list (float64) or int64 weights make it float64.
    return np.result_type(dtype, np.asarray(sample_weight).dtype)


def loss(name: str, y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
         reduction: str = "mean"):
    """The log loss of ``y_pred`` as convention ``name`` computes it (see :func:`names`)."""
    check_name(name)
    reduction = check_reduction(reduction)
    y, x, weight = _prepare(name, y_true, y_pred, sample_weight, from_logits)
    info = CONVENTIONS[name]
    losses = elementwise(name, y, x, from_logits=from_logits)
    if name in ("xgboost", "lightgbm", "catboost") and weight is not None:
        weight = weight.astype(np.float32).astype(np.float64)  # they store weights as float
    if name == "xgboost" and weight is not None:
        # Each row's loss times its float32 weight, in float32, then summed in double.
        losses = losses * weight.astype(np.float32)
        return _reduce(losses, weight, reduction, info.normalization, np.dtype(np.float64),
                       pre_weighted=True)
    if name in ("sklearn", "article"):
        # NumPy does the reduction there: np.average / np.mean / np.dot, in their dtypes.
        if name == "sklearn" and weight is not None:
            weight = weight.astype(_sklearn_weight_dtype(sample_weight, losses.dtype))
        if reduction == "none":
            return losses if weight is None else losses * weight
        if reduction == "sum":
            return np.sum(losses) if weight is None else np.dot(losses.ravel(), weight.ravel())
        if losses.size == 0 or (weight is not None and not np.sum(weight) > 0):
            return _reduce(losses, weight, reduction, "weight", losses.dtype)  # raises
        return np.mean(losses) if weight is None else np.average(losses, weights=weight)
    if name == "catboost" and reduction == "mean":
        # GetFinalError: sum(w*l) / (sum(w) + 1e-38).
        total = _reduce(losses, weight, "sum", "weight", np.dtype(np.float64))
        divisor = float(losses.size if weight is None else np.sum(weight, dtype=np.float64))
        return np.float64(total / (divisor + 1e-38))
    dtype = losses.dtype if info.normalization == "count" else np.dtype(np.float64)
    return _reduce(losses, weight, reduction, info.normalization, dtype)


def _doc(name: str) -> str:
    info = CONVENTIONS[name]
    norm = ("sum(w*l) / n (the element count, even with weights)" if info.normalization == "count"
            else "sum(w*l) / sum(w)")
    return (f"The log loss as {info.framework} computes it.\n\n"
            f"Follows {info.source}.\n"
            f"Confident mistakes: {info.bound}. Mean: {norm}.")


def sklearn(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("sklearn", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def keras(y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
          reduction: str = "mean"):
    return loss("keras", y_true, y_pred, sample_weight=sample_weight, from_logits=from_logits,
                reduction=reduction)


def tf_keras_legacy(y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
                    reduction: str = "mean"):
    return loss("tf_keras_legacy", y_true, y_pred, sample_weight=sample_weight,
                from_logits=from_logits, reduction=reduction)


def torch(y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
          reduction: str = "mean"):
    return loss("torch", y_true, y_pred, sample_weight=sample_weight, from_logits=from_logits,
                reduction=reduction)


def torch_logits(y_true, y_pred, *, sample_weight=None, from_logits: bool = True,
                 reduction: str = "mean"):
    return loss("torch_logits", y_true, y_pred, sample_weight=sample_weight,
                from_logits=from_logits, reduction=reduction)


def xgboost(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("xgboost", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def lightgbm(y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
             reduction: str = "mean"):
    return loss("lightgbm", y_true, y_pred, sample_weight=sample_weight,
                from_logits=from_logits, reduction=reduction)


def catboost(y_true, y_pred, *, sample_weight=None, from_logits: bool = False,
             reduction: str = "mean"):
    return loss("catboost", y_true, y_pred, sample_weight=sample_weight,
                from_logits=from_logits, reduction=reduction)


def spark(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("spark", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def h2o(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("h2o", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def torchrec(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("torchrec", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def yardstick(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("yardstick", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


def article(y_true, y_pred, *, sample_weight=None, reduction: str = "mean"):
    return loss("article", y_true, y_pred, sample_weight=sample_weight, reduction=reduction)


for _name in CONVENTIONS:
    globals()[_name].__doc__ = _doc(_name)
del _name

_EXTRA_DOCS = {
    "keras": "\n\nKeras computes in the dtype it is given: the functional "
             "keras.losses.binary_crossentropy keeps y_pred's dtype, the BinaryCrossentropy Loss "
             "casts to its dtype (float32 by default), so pass float32 to reproduce it. From "
             "logits this is the TensorFlow backend's formula (the default backend).",
    "torch": "\n\nfrom_logits=True reproduces BCELoss(torch.sigmoid(z)), the model that ends in "
             "nn.Sigmoid; `torch_logits` is BCEWithLogitsLoss.",
    "xgboost": "\n\nEvery row is float32 (bst_float): p is rounded to float32, then "
               "xlogy(-y, max(p, 1e-16f)) + xlogy(-(1 - y), max(1 - p, 1e-16f)).",
    "lightgbm": "\n\nfrom_logits=True takes raw scores and applies LightGBM's sigmoid in double.",
    "catboost": "\n\nFrom probabilities the margin is log(p) - log1p(-p), the raw value a model "
                "predicting p carries.",
    "sklearn": "\n\nFor scikit-learn's own signature (normalize, labels, (n, 2) input, string "
               "labels) with the exact value, see logloss.sklearn.log_loss.",
    "torchrec": "\n\nThe value is in bits (log2), as TorchRec's NE accumulates it.",
    "article": "\n\nThe function has no weights; with sample_weight this is sum(w*l) / sum(w).",
}
for _name, _text in _EXTRA_DOCS.items():
    globals()[_name].__doc__ += _text
del _name, _text



def compare_state(*, from_logits: bool = False, conventions=None) -> CompareState:
    """A streaming :class:`logloss._compare.CompareState` over ``conventions`` (default: all)."""
    chosen = names() if conventions is None else tuple(check_name(n) for n in conventions)
    columns = []
    for name in chosen:
        info = CONVENTIONS[name]
        available = info.logits if from_logits else info.probabilities
        note = None
        if not available:
            note = "no logits form" if from_logits else "takes logits"
        columns.append(Column(
            name=name, elementwise=_ELEMENTS[name], normalization=info.normalization,
            scale=1 / _LN2 if info.units == "bits" else 1.0, available=available, note=note,
            hard_labels_only=info.hard_labels_only,
            float32_weights=name in ("xgboost", "lightgbm", "catboost")))
    return CompareState(columns, from_logits=from_logits)


__all__ = [
    "CONVENTIONS",
    "Convention",
    "article",
    "catboost",
    "compare_state",
    "h2o",
    "keras",
    "lightgbm",
    "loss",
    "names",
    "sklearn",
    "spark",
    "tf_keras_legacy",
    "torch",
    "torch_logits",
    "torchrec",
    "xgboost",
    "yardstick",
]
