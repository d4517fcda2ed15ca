"""logloss.keras on the TensorFlow backend: a Loss for model.compile, a streaming Metric, serialization."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import logloss  # noqa: E402
import logloss.keras as lk  # noqa: E402
from logloss.report.explain import ARTICLE_X, ARTICLE_Y  # noqa: E402

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="needs KERAS_BACKEND=tensorflow")
rng = np.random.default_rng(5)


def test_loss_matches_logloss_and_keras_away_from_the_clip():
    y = (rng.uniform(size=(16, 3)) < 0.5).astype("float32")
    p = rng.uniform(0.01, 0.99, (16, 3)).astype("float32")
    w = rng.uniform(0, 2, 16).astype("float32")
    for kwargs in ({}, {"label_smoothing": 0.1}):
        ours = lk.BinaryCrossentropy(**kwargs)(y, p, sample_weight=w)
        theirs = keras.losses.BinaryCrossentropy(**kwargs)(y, p, sample_weight=w)
        np.testing.assert_allclose(float(ours), float(theirs), rtol=2e-6)
    pos = lk.BinaryCrossentropy(pos_weight=[1.0, 2.0, 3.0])(y, p)
    per_sample = logloss.bce(y.astype(np.float64), p.astype(np.float64), pos_weight=[1.0, 2.0, 3.0], axis=-1)
    np.testing.assert_allclose(float(pos), per_sample.mean(), rtol=2e-6)


def test_loss_is_exact_where_keras_clips():
    y, p = np.array([[1.0], [0.0]], "float32"), np.array([[1e-30], [0.5]], "float32")
    ours = float(lk.BinaryCrossentropy()(y, p))
    assert ours == pytest.approx((-np.log(1e-30) + np.log(2)) / 2, rel=1e-6)
    assert float(keras.losses.BinaryCrossentropy()(y, p)) < ours / 3  # clipped at 1e-7


def test_serialization_round_trips():
    loss = lk.BinaryCrossentropy(from_logits=True, label_smoothing=0.05, pos_weight=2.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, lk.BinaryCrossentropy)
    assert restored.get_config() == loss.get_config()
    metric = lk.BinaryCrossentropyMetric(from_logits=True, pos_weight=[1.0, 2.0])
    restored_metric = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert restored_metric.get_config() == metric.get_config()


def test_metric_streams_exactly_over_batches():
    y = (rng.uniform(size=1000) < 0.3).astype("float32")
    z = rng.normal(0, 4, 1000).astype("float32")
    w = rng.uniform(0, 2, 1000).astype("float32")
    metric = lk.BinaryCrossentropyMetric(from_logits=True)
    for start in range(0, 1000, 128):
        metric.update_state(y[start:start + 128], z[start:start + 128], sample_weight=w[start:start + 128])
    expected = logloss.bce(y, z.astype(np.float64), from_logits=True, sample_weight=w)
    assert float(metric.result()) == pytest.approx(float(expected), rel=1e-14)
    metric.reset_state()
    metric.update_state(y[:10], z[:10])
    assert float(metric.result()) == pytest.approx(float(logloss.bce(y[:10], z[:10].astype(np.float64), from_logits=True)), rel=1e-14)


def test_fit_on_the_articles_data_decreases_the_loss_and_matches_logloss():
    keras.utils.set_random_seed(0)
    x = ARTICLE_X.astype("float32")
    y = ARTICLE_Y.astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.05),
        loss=lk.BinaryCrossentropy(from_logits=True),
        metrics=[lk.BinaryCrossentropyMetric(from_logits=True)],
    )
    history = model.fit(x, y, epochs=40, batch_size=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] / 2
    np.testing.assert_allclose(history.history["logloss"], losses, rtol=1e-5)
    logits = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    exact = float(logloss.bce(ARTICLE_Y, logits, from_logits=True))
    assert evaluated["loss"] == pytest.approx(exact, rel=1e-5)
    assert evaluated["logloss"] == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_metric_refuses_bad_weights_eagerly_as_the_function_does(bad):
    metric = lk.BinaryCrossentropyMetric()
    w = np.array([1.0, bad, 1.0], dtype="float32")
    with pytest.raises(ValueError, match=r"`sample_weight` must (be finite and non-negative|not contain NaN)"
                                         r".* at index 1"):
        metric.update_state(np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.5]), sample_weight=w)
    assert float(metric.result()) != float(metric.result())  # 0/0: nothing was added


def _identity_model(from_logits=True):
    """Predictions are the inputs exactly (a frozen Dense(1) with kernel 1 and bias 0), so a fit's
    metric can be compared with the exact loss of known logits."""
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=lk.BinaryCrossentropy(from_logits=from_logits),
                  metrics=[lk.BinaryCrossentropyMetric(from_logits=from_logits)])
    return model


def test_metric_is_exact_inside_a_compiled_fit():
    """One batch of loss 1e16, then 300 batches of log 2 each: a float64 running sum loses every
    log 2 (1e16 + 0.69 rounds back to 1e16: ~400 ulp of the mean), the compensated state none."""
    import mpmath

    from .. import reference as ref

    z = np.concatenate([[-1e16], np.zeros(300)]).astype("float32")
    y = np.ones(z.size, dtype="float32")
    model = _identity_model()
    assert model.run_eagerly is False  # compiled (tf.function)
    history = model.fit(z[:, None], y, epochs=1, batch_size=1, shuffle=False, verbose=0)
    exact = mpmath.fsum(ref.bce_logit(1.0, float(v)) for v in z) / z.size
    assert ref.ulp_error(history.history["logloss"][0], exact) <= 1
    naive = 0.0
    for v in z:
        naive += float(logloss.bce([1.0], [float(v)], from_logits=True))
    assert ref.ulp_error(naive / z.size, exact) > 100  # the case really defeats a plain float64 sum


def test_metric_in_a_compiled_fit_turns_bad_weights_into_nan():
    z = np.zeros((8, 1), dtype="float32")
    y = np.ones(8, dtype="float32")
    w = np.array([1, 1, 1, -1, 1, 1, 1, 1], dtype="float32")
    model = _identity_model()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=lk.BinaryCrossentropy(from_logits=True),
                  weighted_metrics=[lk.BinaryCrossentropyMetric(from_logits=True)])
    history = model.fit(z, y, sample_weight=w, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert np.isnan(history.history["logloss"][0])
