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
