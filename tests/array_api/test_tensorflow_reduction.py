"""TensorFlow's float32 mean and sum without options: one custom gradient (XLA), from the inputs as
given. Exact against mpmath at adversarial logits, eager and in a tf.function; its gradients."""

from __future__ import annotations

import os

import mpmath
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

import logloss  # noqa: E402

from ..reference import bce_logit, bce_probability, ulp_error  # noqa: E402

LOGITS = [0.0, 1e-30, 1e-8, 0.5, 1.0, 17.0, 36.0, 88.0, 103.0, 300.0, 745.0, 1e30, 1e36, np.inf]


def _cases(labels, dtype):
    z = np.array([s * v for v in LOGITS for s in (1, -1)], dtype=dtype)
    y = np.repeat(np.array(labels, dtype=dtype), z.size)
    return y, np.tile(z, len(labels))


def _sigmoid_minus_label(y, z):
    y, z = mpmath.mpf(float(y)), mpmath.mpf(float(z))
    if mpmath.isinf(z):
        return (1 - y) * (1 if z > 0 else 0) - y * (0 if z > 0 else 1)
    return (1 - y) / (1 + mpmath.exp(-z)) - y / (1 + mpmath.exp(z))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_reduction_within_1_ulp_of_mpmath(graph, reduction, dtype):
    # float32: within 1 ulp (float64 terms rounded once); float64: a sum of non-negative terms each
    # within a few ulps, so within a few ulps itself. Finite losses only (an infinite one makes
    # the whole result inf): drop the pairs whose loss is.
    ulps = 1 if dtype == np.float32 else 4
    y, z = _cases([0.0, 1.0, 0.25, 0.9], dtype)
    exact = [bce_logit(a, b) for a, b in zip(y.tolist(), z.tolist())]
    keep = np.array([mpmath.isfinite(e) for e in exact])
    y, z, exact = y[keep], z[keep], [e for e, k in zip(exact, keep) if k]
    total = mpmath.fsum(exact)
    expected = total / len(exact) if reduction == "mean" else total

    def call(y_, z_):
        with tf.GradientTape() as tape:
            tape.watch(z_)
            loss = logloss.bce(y_, z_, from_logits=True, reduction=reduction)
        return loss, tape.gradient(loss, z_)

    run = tf.function(call) if graph else call
    loss, grad = run(tf.constant(y), tf.constant(z))
    assert loss.dtype == dtype and grad.dtype == dtype
    assert ulp_error(loss.numpy(), expected, dtype) <= ulps
    scale = len(exact) if reduction == "mean" else 1
    tiny = float(np.finfo(dtype).tiny)
    for g, a, b in zip(grad.numpy(), y.tolist(), z.tolist()):
        exact_grad = _sigmoid_minus_label(a, b) / scale
        # TensorFlow's CPU threads flush subnormal results to zero (its own losses' too).
        if abs(exact_grad) < tiny and g == 0:
            continue
        if a in (0.0, 1.0) or dtype == np.float32:
            assert ulp_error(g, exact_grad, dtype) <= ulps, (a, b, g)
        else:
            # float64, soft label: (1 - y) sigmoid(z) - y sigmoid(-z) cancels; a few ulps of the terms
            terms = abs(_sigmoid_minus_label(0.0, b)) * (1 - a) + abs(_sigmoid_minus_label(1.0, b)) * a
            assert abs(g - exact_grad) <= ulps * np.finfo(dtype).eps * terms / scale, (a, b, g)


def test_float32_probabilities_mean_within_1_ulp_and_label_gradient():
    p = np.array([1e-30, 1e-8, 0.25, 0.5, 0.75, 1 - 2.0**-24], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 0.9], dtype=np.float32)
    exact = mpmath.fsum(bce_probability(a, b) for a, b in zip(y.tolist(), p.tolist())) / len(p)
    y_, p_ = tf.constant(y), tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch([y_, p_])
        loss = logloss.bce(y_, p_)
    grad_y, grad_p = tape.gradient(loss, [y_, p_])
    assert ulp_error(loss.numpy(), exact, np.float32) <= 1
    # d/dy = log(1 - p) - log p = -log(p / (1 - p)), over n; d/dp = (p - y) / (p (1 - p)), over n
    for a, b, gy, gp in zip(y.tolist(), p.tolist(), grad_y.numpy(), grad_p.numpy()):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        assert ulp_error(gy, (mpmath.log1p(-b) - mpmath.log(b)) / len(p), np.float32) <= 1
        assert ulp_error(gp, (b - a) / (b * (1 - b)) / len(p), np.float32) <= 1


def test_infinite_loss_warns_and_nan_is_refused_eagerly():
    y = tf.constant([1.0, 0.0])
    with pytest.warns(logloss.InfiniteLossWarning):
        assert np.isinf(logloss.bce(y, tf.constant([-np.inf, 0.5]), from_logits=True).numpy())
    with pytest.raises(ValueError, match="NaN"):
        logloss.bce(y, tf.constant([np.nan, 0.5]), from_logits=True)
    with pytest.raises(ValueError) as numpy_error:
        logloss.bce(np.array([1.0, 2.0]), np.array([0.5, 0.5], dtype=np.float32), from_logits=True)
    with pytest.raises(ValueError) as tf_error:
        logloss.bce(tf.constant([1.0, 2.0]), tf.constant([0.5, 0.5]), from_logits=True)
    assert str(tf_error.value) == str(numpy_error.value)


def test_integer_labels_and_a_jit_compiled_caller():
    y = tf.constant([0, 1, 1, 0], dtype=tf.int32)
    z = tf.constant([-2.0, 3.0, -0.5, 40.0])
    eager = logloss.bce(y, z, from_logits=True)
    compiled = tf.function(lambda a, b: logloss.bce(a, b, from_logits=True), jit_compile=True)(y, z)
    exact = mpmath.fsum(bce_logit(a, b) for a, b in zip([0, 1, 1, 0], z.numpy().tolist())) / 4
    assert ulp_error(eager.numpy(), exact, np.float32) <= 1
    assert ulp_error(compiled.numpy(), exact, np.float32) <= 1


def test_eager_calls_without_options_skip_the_generic_preparation(monkeypatch):
    from logloss._array_api import binary

    def generic(*args, **kwargs):
        raise AssertionError("the generic path ran")

    y = tf.constant([True, False, True])
    p = tf.constant([0.75, 0.25, 0.5])
    exact = mpmath.fsum(bce_probability(a, b) for a, b in zip([1.0, 0.0, 1.0], p.numpy().tolist())) / 3
    with monkeypatch.context() as patch:
        patch.setattr(binary, "_prepare_binary", generic)
        assert ulp_error(logloss.bce(y, p).numpy(), exact, np.float32) <= 1
        assert ulp_error(logloss.bce(tf.cast(y, tf.int64), p).numpy(), exact, np.float32) <= 1
        with pytest.raises(AssertionError, match="generic path"):  # invalid: the generic path reports
            logloss.bce(y, tf.constant([0.75, 1.5, 0.5]))
    for bad in ([0.75, 1.5, 0.5], [0.75, -0.1, 0.5], [np.nan, 0.2, 0.5]):
        with pytest.raises(ValueError) as numpy_error:
            logloss.bce(np.array([1.0, 0.0, 1.0]), np.array(bad, dtype=np.float32))
        with pytest.raises(ValueError) as tf_error:
            logloss.bce(y, tf.constant(bad, dtype=tf.float32))
        assert str(tf_error.value) == str(numpy_error.value)


@pytest.mark.parametrize("case", [
    # (labels, predictions, from_logits, dtype): saturated but correct probabilities (loss 0)
    ([1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.5, 0.25], False, np.float32),
    ([1.0, 0.0, 0.3, 0.0], [3.0, -2.0, 0.5, 80.0], True, np.float32),
    ([1.0, 0.0, 0.3, 0.0], [3.0, -2.0, 0.5, 800.0], True, np.float64),
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_tape_outside_a_tf_function_gets_the_analytic_gradient(case, reduction):
    # While tracing, a tape outside the tf.function is not seen: the eager shortcut that skips the
    # custom gradient for unwatched inputs left the loss's own ops to be differentiated, NaN at p = 1
    # with y = 1 (log1p(-p)'s -inf times 0).
    labels, predictions, from_logits, dtype = case
    y, x = tf.constant(labels, dtype), tf.constant(predictions, dtype)
    function = tf.function(lambda a, b: logloss.bce(a, b, from_logits=from_logits, reduction=reduction))
    with tf.GradientTape() as tape:
        tape.watch(x)
        traced = function(y, x)
    with tf.GradientTape() as eager_tape:
        eager_tape.watch(x)
        eager = logloss.bce(y, x, from_logits=from_logits, reduction=reduction)
    expected = eager_tape.gradient(eager, x).numpy()
    assert np.all(np.isfinite(expected))
    assert float(traced) == float(eager)
    np.testing.assert_array_equal(tape.gradient(traced, x).numpy(), expected)


@pytest.mark.parametrize("case", [
    ("ragged labels", lambda: (tf.ragged.constant([[1.0], [0.0, 1.0]]), tf.ragged.constant([[0.3], [0.6, 0.2]])),
     "`y_true`", "tf.RaggedTensor"),
    ("sparse labels", lambda: (tf.sparse.from_dense(tf.constant([1.0, 0.0])), tf.constant([0.3, 0.6])),
     "`y_true`", "tf.SparseTensor"),
    ("sparse predictions", lambda: (tf.constant([1.0, 0.0]), tf.sparse.from_dense(tf.constant([0.3, 0.6]))),
     "`y_pred`", "tf.SparseTensor"),
], ids=lambda case: case[0] if isinstance(case, tuple) else case)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_ragged_and_sparse_tensors_are_refused_by_name(case, reduction):
    # They used to fail inside XLA or TensorFlow's tracing, with messages about neither argument.
    _, make, name, kind = case
    y, x = make()
    with pytest.raises(TypeError, match=f"{name}.*{kind}"):
        logloss.bce(y, x, reduction=reduction)


@pytest.mark.parametrize("case", [
    # (labels, predictions, from_logits, dtype): one NaN label beside valid ones
    ([np.nan, 1.0, 0.0], [0.3, 0.6, 0.2], False, np.float32),
    ([1.0, np.nan, 0.0], [3.0, 0.6, 0.2], True, np.float32),
    ([1.0, 0.0, np.nan], [3.0, 0.6, 0.2], True, np.float64),
    ([1.0, 0.0, 1.0], [0.3, np.nan, 0.2], False, np.float32),
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_eager_fused_call_raises_the_numpy_error_for_a_nan(case, reduction):
    # The eager checks took XLA's reduce_min / reduce_max of the labels, which skip NaN: a NaN
    # label beside valid ones gave a NaN loss instead of the error.
    labels, predictions, from_logits, dtype = case
    y, x = np.array(labels, dtype), np.array(predictions, dtype)
    with pytest.raises(ValueError) as expected:
        logloss.bce(y, x, from_logits=from_logits, reduction=reduction)
    with pytest.raises(ValueError) as got:
        logloss.bce(tf.constant(y), tf.constant(x), from_logits=from_logits, reduction=reduction)
    assert str(got.value) == str(expected.value)
