"""logloss.conventions against the real frameworks, on adversarial data.

Each framework runs inside the test on the same arrays. Per element the tolerance is 1 ulp
in float64. In float32 it is 2 ulp: each library's float32 ``log`` is within 1 ulp of the
exact value but not always the same ulp (Sleef in PyTorch, Eigen in TensorFlow, NumPy's own
SIMD log here). Means are compared within a few ulp, since each library sums in its own order.
TorchRec, H2O and R's yardstick are not installed in CI; they are checked against formulas
written here from their cited sources, in a different form from the module's. tf.keras 2 is
checked by running its four TensorFlow ops, as its source writes them, in TensorFlow.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

from logloss import conventions as C

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPECIAL = np.array([0, 1, 1e-300, 1e-50, 1e-20, 1e-16, 1e-15, 1e-12, 1e-8, 1e-7, 1.2e-7, 1e-6,
                    0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 1 - 1e-7, 1 - 1e-8, 1 - 1e-12, 1 - 1e-16])
LOGITS = np.array([-1e308, -1e4, -800, -100, -40, -36.9, -20, -17, -16, -10, -1e-20, 0, 1e-20,
                   3, 10, 16, 17, 20, 36.9, 40, 100, 800, 1e4, 1e308])
DTYPES = [np.float64, np.float32]


def probability_data(dtype, seed=0, n=64):
    """Every special probability with both labels (confident mistakes included), plus random ones."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([SPECIAL, SPECIAL, rng.uniform(size=n)]).astype(dtype)
    y = np.concatenate([np.ones(len(SPECIAL)), np.zeros(len(SPECIAL)),
                        rng.uniform(size=n) < 0.4]).astype(dtype)
    w = rng.uniform(0.1, 3, size=len(p))
    return y, p, w


def logit_data(dtype, seed=1, n=40):
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        z = np.concatenate([LOGITS, LOGITS, rng.normal(0, 6, n)]).astype(dtype)
    y = np.concatenate([np.ones(len(LOGITS)), np.zeros(len(LOGITS)),
                        rng.uniform(size=n) < 0.5]).astype(dtype)
    w = rng.uniform(0.1, 3, size=len(z))
    return y, z, w


def ulps(ours, theirs, dtype) -> float:
    a = np.asarray(ours, dtype=np.float64).ravel()
    b = np.asarray(theirs, dtype=np.float64).ravel()
    assert a.shape == b.shape
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(dtype)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        distance = np.where(same, 0.0, np.abs(a - b) / scale)
    return float(np.max(distance)) if distance.size else 0.0


def elements_ulp(dtype) -> int:
    return 1 if dtype == np.float64 else 2


def flush_subnormals(values, dtype):
    """TensorFlow flushes subnormal float32 results to zero on CPU."""
    values = np.array(values, dtype=dtype)
    values[np.abs(values) < np.finfo(dtype).tiny] = 0
    return values


def assert_mean_close(ours, theirs, dtype, ulp=8):
    ours, theirs = float(ours), float(theirs)
    if math.isnan(ours) and math.isnan(theirs):
        return
    assert ours == theirs or abs(ours - theirs) <= ulp * float(np.spacing(dtype(abs(theirs)))), (
        ours, theirs)


# -- scikit-learn --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sklearn_matches_log_loss(dtype):
    from sklearn.metrics import log_loss

    y, p, w = probability_data(dtype)
    assert C.sklearn(y, p) == log_loss(y, p)  # the same NumPy reduction: bit for bit
    assert C.sklearn(y, p, sample_weight=w) == log_loss(y, p, sample_weight=w)
    assert C.sklearn(y, p, reduction="sum") == log_loss(y, p, normalize=False)
    ours = C.sklearn(y, p, reduction="none")
    for i in range(len(p)):  # per element: a one-hot weight picks one sample's loss exactly
        picked = np.zeros(len(p))
        picked[i] = 1
        assert ours[i] == log_loss(y, p, sample_weight=picked, normalize=False), i


def test_sklearn_refuses_soft_labels():
    with pytest.raises(ValueError, match=r"`sklearn` convention .* class labels .* 0.3 at index 1"):
        C.sklearn([1.0, 0.3], [0.5, 0.5])


# -- PyTorch -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_matches_bce_loss(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    y, p, w = probability_data(dtype)
    w = w.astype(dtype)
    ty, tp, tw = (torch.from_numpy(a) for a in (y, p, w))
    assert ulps(C.torch(y, p, reduction="none"),
                F.binary_cross_entropy(tp, ty, reduction="none").numpy(), dtype) <= elements_ulp(dtype)
    assert ulps(C.torch(y, p, sample_weight=w, reduction="none"),
                F.binary_cross_entropy(tp, ty, weight=tw, reduction="none").numpy(),
                dtype) <= elements_ulp(dtype) + 1
    assert_mean_close(C.torch(y, p), F.binary_cross_entropy(tp, ty).item(), dtype)
    # mean divides by the element count even with weights
    assert_mean_close(C.torch(y, p, sample_weight=w),
                      F.binary_cross_entropy(tp, ty, weight=tw).item(), dtype)
    assert_mean_close(C.torch(y, p, sample_weight=w, reduction="sum"),
                      F.binary_cross_entropy(tp, ty, weight=tw, reduction="sum").item(), dtype)
    assert C.torch(y, p).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_logits_matches_bce_with_logits(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    y, z, w = logit_data(dtype)
    ty, tz, tw = torch.from_numpy(y), torch.from_numpy(z), torch.from_numpy(w.astype(dtype))
    theirs = F.binary_cross_entropy_with_logits(tz, ty, reduction="none").numpy()
    assert ulps(C.torch_logits(y, z, reduction="none"), theirs, dtype) <= elements_ulp(dtype)
    assert_mean_close(C.torch_logits(y, z, sample_weight=w.astype(dtype)),
                      F.binary_cross_entropy_with_logits(tz, ty, weight=tw).item(), dtype)
    # BCELoss after torch.sigmoid: compared on torch's own sigmoid output, so only the loss
    # arithmetic is compared (float32 sigmoid values near 1 differ by an ulp between libraries)
    p = torch.sigmoid(tz)
    theirs = F.binary_cross_entropy(p, ty, reduction="none").numpy()
    assert ulps(C.torch(y, p.numpy(), reduction="none"), theirs, dtype) <= elements_ulp(dtype)
    if dtype == np.float64:
        assert ulps(C.torch(y, z, from_logits=True, reduction="none"), theirs, dtype) <= 1


# -- Keras 3 and tf.keras ------------------------------------------------------------------


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_matches_binary_crossentropy(dtype):
    keras = _keras()
    y, p, w = probability_data(dtype)
    theirs = keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y[:, None], p[:, None]))
    assert ulps(C.keras(y, p, reduction="none"), theirs, dtype) <= elements_ulp(dtype)
    loss = keras.losses.BinaryCrossentropy(dtype=np.dtype(dtype).name)
    assert_mean_close(C.keras(y, p), float(loss(y[:, None], p[:, None])), dtype)
    # the Loss divides the weighted sum by the element count, not the total weight
    assert_mean_close(C.keras(y, p, sample_weight=w),
                      float(loss(y[:, None], p[:, None], sample_weight=w)), dtype)
    y, z, w = logit_data(dtype)
    theirs = keras.ops.convert_to_numpy(
        keras.losses.binary_crossentropy(y[:, None], z[:, None], from_logits=True))
    ours = flush_subnormals(C.keras(y, z, from_logits=True, reduction="none"), dtype)
    # TensorFlow's float64 exp and log1p are up to 2 ulp off themselves (see the README)
    assert ulps(ours, theirs, dtype) <= 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_keras_legacy_matches_its_source_in_tensorflow(dtype):
    # tf_keras 2.21 (tf.keras 2) depends on the `tensorflow` distribution, which would install a
    # second TensorFlow next to tensorflow-cpu; its binary_crossentropy is four TensorFlow ops
    # (tf_keras/src/backend.py), run here in TensorFlow as written there.
    _keras()
    tf = pytest.importorskip("tensorflow")
    y, p, w = probability_data(dtype)
    target, output = tf.constant(y[:, None]), tf.constant(p[:, None])
    epsilon_ = tf.constant(1e-7, dtype=output.dtype)
    output = tf.clip_by_value(output, epsilon_, 1.0 - epsilon_)
    bce = target * tf.math.log(output + 1e-7)
    bce += (1 - target) * tf.math.log(1 - output + 1e-7)
    theirs = (-bce).numpy()[:, 0]
    assert ulps(C.tf_keras_legacy(y, p, reduction="none"), theirs, dtype) <= elements_ulp(dtype)
    # SUM_OVER_BATCH_SIZE: the weighted sum over the element count
    assert_mean_close(C.tf_keras_legacy(y, p, sample_weight=w),
                      float(tf.reduce_sum(-bce[:, 0] * tf.constant(w, dtype=output.dtype))) / len(y),
                      dtype)
    # 1e-7 twice: a confident mistake costs -log(2e-7), not -log(1e-7)
    assert C.tf_keras_legacy([1.0], [0.0]) == pytest.approx(-math.log(2e-7), rel=1e-7)


# -- XGBoost, LightGBM, CatBoost -----------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_xgboost_matches_logloss_metric(weighted):
    xgb = pytest.importorskip("xgboost")
    y, z, w = logit_data(np.float64)
    y[-40:] = np.random.default_rng(3).uniform(size=40)  # XGBoost takes soft labels too
    weight = w if weighted else None
    data = xgb.DMatrix(np.zeros((len(z), 1)), label=y, weight=weight, base_margin=z)
    booster = xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
                        data, num_boost_round=0)
    p = booster.predict(data)  # XGBoost's own float32 sigmoid: p = 1 and p < 1e-16 occur
    assert p.min() < 1e-16 and p.max() == 1
    theirs = float(booster.eval(data).split(":")[1])
    assert_mean_close(C.xgboost(y, p, sample_weight=weight), theirs, np.float64, ulp=2)
    per_row = C.xgboost(y, p, reduction="none")
    assert per_row.dtype == np.float32
    worst = np.argmin(np.where(y == 1, p, 1))
    assert per_row[worst] == np.float32(-math.log(np.float32(1e-16)))


@pytest.mark.parametrize("weighted", [False, True])
def test_lightgbm_matches_binary_logloss(weighted):
    lgb = pytest.importorskip("lightgbm")
    y, z, w = logit_data(np.float64)
    weight = w if weighted else None
    data = lgb.Dataset(np.random.default_rng(0).normal(size=(len(z), 1)), label=y, weight=weight,
                       init_score=z, params={"verbose": -1})
    booster = lgb.Booster(params={"objective": "binary", "metric": "binary_logloss",
                                  "verbose": -1, "num_threads": 1}, train_set=data)
    theirs = booster.eval_train()[0][2]  # the metric on init_score: LightGBM's own sigmoid
    assert_mean_close(C.lightgbm(y, z, sample_weight=weight, from_logits=True), theirs,
                      np.float64)


@pytest.mark.parametrize("weighted", [False, True])
def test_catboost_matches_logloss(weighted):
    pytest.importorskip("catboost")
    from catboost.utils import eval_metric

    y, z, w = logit_data(np.float64)
    z = np.clip(z, -1e4, 1e4)  # CatBoost refuses approxes it cannot exponentiate twice
    y[-10:] = [0.2, 0.4, 0.5, 0.6, 0.8, 0.2, 0.4, 0.5, 0.6, 0.8]  # binarised at 0.5
    weight = w if weighted else None
    theirs = eval_metric(y, z, "Logloss", weight=weight)[0]
    assert_mean_close(C.catboost(y, z, sample_weight=weight, from_logits=True), theirs,
                      np.float64)
    for i in range(len(z)):
        theirs = eval_metric(y[i:i + 1], z[i:i + 1], "Logloss")[0]
        ours = C.catboost(y[i:i + 1], z[i:i + 1], from_logits=True, reduction="none")[0]
        # log(1 + e^f) - t*f: CatBoost's exp differs from glibc's by an ulp now and then, which
        # moves 1 + e^f by up to an ulp, so they agree to an ulp of 1 + e^f and of the terms.
        e = math.exp(min(z[i], 700.0))
        term = math.log1p(e) if z[i] < 700 else z[i]
        tolerance = np.spacing(1.0 + e) / (1.0 + e) + 2 * np.spacing(max(term, abs(ours)))
        assert abs(ours - theirs) <= tolerance, (y[i], z[i], ours, theirs)


# -- Spark (one local session for the module) -----------------------------------------------


@pytest.fixture(scope="module")
def spark_session():
    pytest.importorskip("pyspark")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas >= 3 is not "fully supported"
        # Starting the JVM forks this process; JAX, when another test imported it, warns then.
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master("local[1]").appName("logloss-tests")
                   .config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")
def test_spark_matches_multiclass_log_loss(spark_session):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.linalg import Vectors

    y, p, w = probability_data(np.float64, n=16)
    rows = [(float(t), float(t), float(v), Vectors.dense([1.0 - q, q])) for t, q, v in zip(y, p, w)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frame = spark_session.createDataFrame(rows, ["label", "prediction", "weight", "probability"])
        plain = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(frame)
        weighted = MulticlassClassificationEvaluator(metricName="logLoss",
                                                     weightCol="weight").evaluate(frame)
    assert_mean_close(C.spark(y, p), plain, np.float64, ulp=2)
    assert_mean_close(C.spark(y, p, sample_weight=w), weighted, np.float64, ulp=2)


# -- formulas from the sources of TorchRec, H2O and yardstick -------------------------------


def test_torchrec_formula():
    # torchrec/metrics/ne.py: predictions.double().clamp_(eta, 1 - eta), log2, weights inside.
    y, p, w = probability_data(np.float64)
    eta = 1e-12
    expected = []
    for t, q, v in zip(y, p, w):
        q = min(max(float(q), eta), 1 - eta)
        expected.append(-v * t * math.log2(q) - v * (1 - t) * math.log2(1 - q))
    assert ulps(C.torchrec(y, p, sample_weight=w, reduction="none"), expected, np.float64) <= 1
    assert C.torchrec(y, p, sample_weight=w) == pytest.approx(math.fsum(expected) / math.fsum(w),
                                                              rel=1e-15)
    assert C.torchrec([1], [0.0]) == pytest.approx(-math.log2(1e-12), rel=1e-15)  # bits


def test_h2o_formula():
    # ModelMetricsBinomial.perRow: err = 1 - ds[iact + 1]; logloss -= w*log(max(1e-15, 1 - err)).
    y, p, w = probability_data(np.float64)
    expected = []
    for t, q, v in zip(y, p, w):
        ds = [0.0, 1.0 - float(q), float(q)]
        err = 1 - ds[int(t) + 1]
        expected.append(-math.log(max(1e-15, 1 - err)))
    assert ulps(C.h2o(y, p, reduction="none"), expected, np.float64) <= 1
    total = math.fsum(v * e for v, e in zip(w, expected))
    assert C.h2o(y, p, sample_weight=w) == pytest.approx(total / math.fsum(w), rel=1e-15)
    assert C.h2o([1], [1e-300]) == pytest.approx(34.538776394910684, rel=1e-15)


def test_yardstick_formula():
    # mn_log_loss_binary: estimate = cbind(p, 1 - p); pmax(pmin(estimate, 1 - eps), eps).
    y, p, w = probability_data(np.float64)
    eps = 2.0**-52
    expected = []
    for t, q in zip(y, p):
        column = float(q) if t == 1 else 1.0 - float(q)
        expected.append(-math.log(max(min(column, 1 - eps), eps)))
    assert ulps(C.yardstick(y, p, reduction="none"), expected, np.float64) <= 1
    total = math.fsum(v * e for v, e in zip(w, expected))
    assert C.yardstick(y, p, sample_weight=w) == pytest.approx(total / math.fsum(w), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_article_is_the_introductory_function(dtype):
    # The function of the introductory articles, as printed there.
    def binary_cross_entropy_loss(y_hat, y):
        epsilon = 1e-15
        ones = np.ones_like(y)
        return -np.mean(y * np.log(y_hat + epsilon) + (ones - y) * np.log(ones - y_hat + epsilon))

    y, p, _ = probability_data(dtype)
    assert C.article(y, p) == binary_cross_entropy_loss(p, y)


# -- bad input -----------------------------------------------------------------------------


def test_unknown_convention_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Expected one of \{'sklearn', 'keras'.*'article'\}. "
                                         r"Received: convention='tensorflow'"):
        C.loss("tensorflow", [1], [0.5])


@pytest.mark.parametrize("name", ["sklearn", "xgboost", "spark", "h2o", "torchrec", "yardstick",
                                  "article"])
def test_no_logits_form_says_so(name):
    with pytest.raises(ValueError, match=rf"`{name}` convention .* has no logits form"):
        C.loss(name, [1], [0.5], from_logits=True)


def test_torch_logits_needs_logits():
    with pytest.raises(ValueError, match="takes logits only.*use `torch` for probabilities"):
        C.torch_logits([1], [0.5], from_logits=False)


@pytest.mark.parametrize("name", C.names())
def test_every_convention_checks_its_input(name):
    logits = not C.CONVENTIONS[name].probabilities
    with pytest.raises(ValueError, match="same shape"):
        C.loss(name, [1, 0], [0.5], from_logits=logits)
    if not logits:
        with pytest.raises(ValueError, match=r"`y_pred` must contain probabilities .* 1.5 at index 1"):
            C.loss(name, [1, 0], [0.5, 1.5])
    with pytest.raises(ValueError, match="`y_true` must contain labels"):
        C.loss(name, [2, 0], [0.5, 0.5], from_logits=logits)
    with pytest.raises(ValueError, match="reduction"):
        C.loss(name, [1], [0.5], from_logits=logits, reduction="avg")


def test_every_convention_has_a_documented_source():
    for name in C.names():
        function = getattr(C, name)
        assert C.CONVENTIONS[name].source in function.__doc__


def test_import_conventions_pulls_in_no_framework():
    import subprocess
    import sys

    heavy = ["torch", "tensorflow", "keras", "sklearn", "xgboost", "lightgbm", "catboost",
             "pyspark", "scipy", "pandas"]
    code = ("import sys, logloss.conventions; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
