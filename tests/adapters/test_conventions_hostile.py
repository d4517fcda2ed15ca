"""logloss.conventions against the real frameworks, on inputs chosen to break the reproduction.

Each peer runs inside the test. Tolerances: scikit-learn is compared bit for bit (the same NumPy
operations, as the README promises). PyTorch within 2 ulp of the dtype per element (Sleef's log
and NumPy's log are each within 1 ulp, not always the same one). XGBoost and LightGBM within
2 ulp of the float32 / float64 result (their float32 log against a float64 log rounded once).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from logloss import conventions as C

from .test_conventions import ulps

# p at and next to the bounds: exact 0 and 1, within 1e-7 / 1e-15 of them, float32 subnormals
PROBABILITIES = [0.0, 1.0, 1e-45, 1e-40, 1e-38, 1e-20, 1e-16, 1e-15, 1e-7, 1.1e-7, 9e-8, 1e-5,
                 0.3, 0.5, 0.9995, 1 - 1e-7, 1 - 6e-8, 1 - 1e-15]


def _sk_log_loss(*args, **kwargs):
    from sklearn.metrics import log_loss

    with warnings.catch_warnings():
        # float16 rows of [1 - p, p] do not sum to one within sqrt(eps): sklearn warns
        warnings.filterwarnings("ignore", "The y_prob values do not sum", UserWarning)
        return log_loss(*args, **kwargs)


# -- scikit-learn: bit for bit, in the dtype scikit-learn computes in ------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("label", [0, 1])
def test_sklearn_each_special_probability(dtype, label):
    # scikit-learn keeps float16 (its eps is then 9.8e-4): one row's loss via a one-hot weight
    with np.errstate(under="ignore"):
        p = np.array(PROBABILITIES).astype(dtype)
    y = np.array([1 - label, label])
    for value in p:
        pair = np.array([0.5, value], dtype=dtype)
        theirs = _sk_log_loss(y, pair, sample_weight=[0, 1], normalize=False)
        ours = C.sklearn(y, pair, sample_weight=[0, 1], reduction="sum")
        assert ours == theirs, (value, ours, theirs)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("weights", [None, "float64", "float32", "float16", "int64", "list"])
def test_sklearn_reductions_keep_its_dtype(dtype, weights):
    # log_loss averages in result_type(loss, weights) when the weights are a float array
    rng = np.random.default_rng(7)
    n = 1001
    y = (rng.uniform(size=n) < 0.5).astype(int)
    p = rng.uniform(size=n).astype(dtype)
    p[:4] = [0, 1, 0, 1]
    w = rng.uniform(0, 3, size=n)
    w[:3] = [0, 1e-30, 1e4]
    if weights == "list":
        w = list(w)
    elif weights == "int64":
        w = (w * 10).astype(np.int64)
    elif weights is not None:
        w = w.astype(weights)
    else:
        w = None
    for reduction, normalize in [("mean", True), ("sum", False)]:
        theirs = _sk_log_loss(y, p, sample_weight=w, normalize=normalize)
        ours = C.sklearn(y, p, sample_weight=w, reduction=reduction)
        assert ours == theirs, (reduction, ours, theirs)


# -- PyTorch -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_torch_bce_loss_each_special_probability(dtype, label):
    torch = pytest.importorskip("torch")
    with np.errstate(under="ignore"):
        p = np.array(PROBABILITIES + [1e-310, 5e-324]).astype(dtype)
    y = np.full(p.shape, label, dtype=dtype)
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.from_numpy(p), torch.from_numpy(y), reduction="none").numpy()
    assert ulps(C.torch(y, p, reduction="none"), theirs, dtype) <= 2


LOGITS = [0.0, 88.7, -88.7, 89.0, -103.0, -104.0, 709.0, -745.0, 710.0, -746.0, 1e4, -1e4,
          np.inf, -np.inf, 36.0, -36.0, 17.0, -17.0, 1e-45]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_torch_logits_at_the_exp_limits(dtype, label):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    with np.errstate(over="ignore", under="ignore"):
        z = np.array(LOGITS).astype(dtype)
    y = np.full(z.shape, label, dtype=dtype)
    tz, ty = torch.from_numpy(z), torch.from_numpy(y)
    theirs = F.binary_cross_entropy_with_logits(tz, ty, reduction="none").numpy()
    assert ulps(C.torch_logits(y, z, reduction="none"), theirs, dtype) <= 2
    theirs = F.binary_cross_entropy(torch.sigmoid(tz), ty, reduction="none").numpy()
    assert ulps(C.torch(y, z, from_logits=True, reduction="none"), theirs, dtype) <= 2


def test_torch_two_dimensional_int_labels_and_extreme_weights():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p = np.array([[0.2, 1.0], [0.0, 0.7]], dtype=np.float32)
    y = np.array([[1, 0], [1, 1]])
    w = np.array([[0.0, 1e-30], [1e30, 2.0]], dtype=np.float32)
    tp, ty, tw = torch.from_numpy(p), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(w)
    for reduction in ["none", "sum", "mean"]:
        theirs = F.binary_cross_entropy(tp, ty, weight=tw, reduction=reduction).numpy()
        ours = C.torch(y, p, sample_weight=w, reduction=reduction)
        assert ulps(ours, theirs, np.float32) <= 2, reduction


# -- XGBoost and LightGBM, evaluated on the probabilities themselves -------------------------


def _xgboost_logloss(y, p, w=None):
    xgb = pytest.importorskip("xgboost")
    # reg:squarederror with base_score 0 predicts the base margin itself: the metric sees p
    data = xgb.DMatrix(np.zeros((len(p), 1)), label=y, weight=w, base_margin=p)
    booster = xgb.train({"objective": "reg:squarederror", "base_score": 0.0,
                         "eval_metric": "logloss", "nthread": 1}, data, num_boost_round=0)
    assert np.array_equal(booster.predict(data), np.asarray(p, dtype=np.float32))
    return float(booster.eval(data).split(":")[1])


@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_xgboost_each_special_probability(label):
    with np.errstate(under="ignore"):
        p = np.array(PROBABILITIES).astype(np.float32)
    for value in p:
        theirs = _xgboost_logloss([label], [value])
        ours = float(C.xgboost([label], [value]))
        assert ulps(ours, theirs, np.float32) <= 2, (value, ours, theirs)


def _lightgbm_logloss(y, score, objective):
    lgb = pytest.importorskip("lightgbm")
    # "regression" leaves init_score as it is, so binary_logloss sees p; "binary" applies sigmoid
    data = lgb.Dataset(np.random.default_rng(0).normal(size=(len(score), 1)), label=y,
                       init_score=score, params={"verbose": -1})
    booster = lgb.Booster(params={"objective": objective, "metric": "binary_logloss",
                                  "verbose": -1, "num_threads": 1}, train_set=data)
    return booster.eval_train()[0][2]


@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_lightgbm_each_special_probability_and_logit(label):
    for value in PROBABILITIES + [1e-300, 5e-324, 1.0000001e-15, 9.99e-16, 1 - 9.99e-16]:
        theirs = _lightgbm_logloss([label, label], [value, value], "regression")
        ours = float(C.lightgbm([label], [value]))
        assert ulps(ours, theirs, np.float64) <= 2, (value, ours, theirs)
    for value in LOGITS[:12] + [34.5, -34.5, 34.6, -34.6]:
        theirs = _lightgbm_logloss([label, label], [value, value], "binary")
        ours = float(C.lightgbm([label], [value], from_logits=True))
        assert ulps(ours, theirs, np.float64) <= 2, (value, ours, theirs)


@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_torch_float16_rounds_each_op_to_half(label):
    # CPU BCELoss / sigmoid / BCEWithLogitsLoss on half: float results rounded to half per op
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(11)
    p = np.r_[0, 1, 6e-8, 1e-4, 0.999, 0.9995, rng.uniform(size=2000)].astype(np.float16)
    y = np.full(p.shape, label, dtype=np.float16)
    tp, ty = torch.from_numpy(p), torch.from_numpy(y)
    ours = C.torch(y, p, reduction="none")
    assert ours.dtype == np.float16
    assert np.array_equal(ours, F.binary_cross_entropy(tp, ty, reduction="none").numpy())
    assert C.torch(y, p) == F.binary_cross_entropy(tp, ty).item()
    with np.errstate(over="ignore"):
        z = np.r_[0, 11, -11, 12, -12, 17, -17, 1e4, -1e4, rng.normal(0, 5, 2000)]
        z = z.astype(np.float16)
    tz = torch.from_numpy(z)
    y = np.full(z.shape, label, dtype=np.float16)
    ty = torch.from_numpy(y)
    theirs = F.binary_cross_entropy(torch.sigmoid(tz), ty, reduction="none").numpy()
    assert np.array_equal(C.torch(y, z, from_logits=True, reduction="none"), theirs)
    theirs = F.binary_cross_entropy_with_logits(tz, ty, reduction="none").numpy()
    assert np.array_equal(C.torch_logits(y, z, reduction="none"), theirs)


# -- compare: the explanation table -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compare_zero_weight_on_an_infinite_row(dtype):
    # p = 0 with label 1 has an infinite exact loss; with weight 0 it counts for nothing, as in
    # binary_cross_entropy, so every value is the function's value and nothing is NaN.
    import logloss

    y = np.array([1, 0, 1, 0, 1], dtype=dtype)
    p = np.array([0.0, 0.2, 0.7, 1.0, 1e-20], dtype=dtype)
    w = np.array([0.0, 1.0, 1.0, 0.0, 2.0])
    rows = {r["convention"]: r for r in logloss.compare(y, p, sample_weight=w).to_dict()
            ["conventions"]}
    exact = logloss.binary_cross_entropy(y, p, sample_weight=w)
    assert rows["exact"]["value"] == pytest.approx(exact, rel=1e-12)
    for name in C.names():
        if name in ("torch_logits", "catboost"):  # no probabilities form / margin -inf: see below
            continue
        row = rows[name]
        ours = float(C.loss(name, y, p, sample_weight=w))  # torchrec: bits in both
        assert row["value"] == pytest.approx(ours, rel=1e-6), name
        assert np.isfinite(row["total_change"]), name
    # CatBoost's margin from p = 0 is -inf: its loss there is inf, and inf * 0 is NaN as in its
    # own C++ sum; the table shows that NaN rather than a made-up number
    assert rows["catboost"]["exact"] == pytest.approx(exact, rel=1e-12)


# -- Keras 3 (TensorFlow backend) ----------------------------------------------------------


def test_keras_loss_on_hostile_columns():
    # (n, 1) columns: Keras averages over the last axis, so each row is one sample. The Loss
    # casts to float32 (its default dtype), float16 included; means within 8 float32 ulp, since
    # TensorFlow sums in its own order.
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    with np.errstate(under="ignore"):
        p = np.array(PROBABILITIES * 3, dtype=np.float32)
    n = len(PROBABILITIES)
    y = np.r_[np.ones(n), np.zeros(n), np.linspace(0, 1, n)].astype(np.float32)  # soft labels too
    w = np.random.default_rng(2).uniform(0, 3, size=p.size).astype(np.float32)
    w[:4] = [0, 1e-30, 1e30, 0]
    loss = keras.losses.BinaryCrossentropy()
    for weight in [None, w, np.zeros_like(w)]:
        theirs = float(loss(y[:, None], p[:, None], sample_weight=weight))
        ours = float(C.keras(y, p, sample_weight=weight))
        assert abs(ours - theirs) <= 8 * np.spacing(np.float32(abs(theirs))), (ours, theirs)
    half = p.astype(np.float16)
    theirs = float(loss(y[:, None], half[:, None]))
    assert abs(float(C.keras(y, half)) - theirs) <= 8 * np.spacing(np.float32(theirs))
