"""Differentiating through logloss in each framework gives the analytic gradients, finite at the extremes.

PyTorch's BCELoss clamps log(p) at -100 and its gradient at 1/1e-12, so at p = 1e-300 it is
off by 288 orders of magnitude; logloss's is exact. Each framework's gradient of the summed loss is compared with
``binary_cross_entropy_gradient`` (itself checked against mpmath in test_gradients.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import logloss

from .. import backends

grad = logloss.binary_cross_entropy_gradient
bce = logloss.binary_cross_entropy

# (labels, predictions, from_logits): ordinary values and the extremes named in the issue.
CASES = [
    ([1.0, 0.0, 0.3, 1.0, 0.0], [0.9, 0.2, 0.6, 1e-300, 1 - 1e-16], False),
    ([1.0, 0.0, 1.0, 0.0, 0.25, 1.0], [1e4, -1e4, -1e4, 1e4, 0.0, 2.0], True),
    ([0.0, 1.0], [0.0, 1.0], False),  # the impossible term is absent: gradient 1 and -1
]


def _expected(y, x, logits, **kwargs):
    return grad(np.array(y), np.array(x), from_logits=logits, **kwargs)


def _check(computed, y, x, logits, **kwargs):
    computed = np.asarray(computed, dtype=np.float64)
    expected = _expected(y, x, logits, **kwargs)
    assert np.all(np.isfinite(computed)), computed
    np.testing.assert_allclose(computed, expected, rtol=4e-16, atol=0)


@pytest.mark.parametrize(("y", "x", "logits"), CASES)
def test_torch_autograd(y, x, logits):
    torch = pytest.importorskip("torch")
    pred = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    bce(torch.tensor(y, dtype=torch.float64), pred, from_logits=logits, reduction="sum").backward()
    _check(pred.grad.numpy(), y, x, logits)
    pred.grad = None
    bce(torch.tensor(y, dtype=torch.float64), pred, from_logits=logits, pos_weight=2.0, reduction="sum").backward()
    _check(pred.grad.numpy(), y, x, logits, pos_weight=2.0)


def test_torch_bceloss_gradient_is_clamped_where_ours_is_exact():
    torch = pytest.importorskip("torch")
    p = torch.tensor([1e-300], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(p, torch.tensor([1.0], dtype=torch.float64)).backward()
    theirs = float(p.grad)
    p.grad = None
    bce(torch.tensor([1.0], dtype=torch.float64), p).backward()
    # PyTorch clamps both the log (at -100) and the gradient (at 1/1e-12).
    assert theirs == pytest.approx(-1e12, rel=1e-5)
    assert float(p.grad) == -1 / 1e-300 == float(grad([1.0], [1e-300])[0])


@pytest.mark.parametrize(("y", "x", "logits"), CASES)
def test_jax_grad_jit_vmap(y, x, logits):
    backends.get("jax")  # float64 on
    import jax
    import jax.numpy as jnp

    yj, xj = jnp.asarray(y), jnp.asarray(x)

    def loss(pred, labels):
        return bce(labels, pred, from_logits=logits, reduction="sum")

    _check(jax.grad(loss)(xj, yj), y, x, logits)
    _check(jax.jit(jax.grad(loss))(xj, yj), y, x, logits)
    # vmap over a batch of two copies: per-row gradients.
    rows = jax.vmap(jax.grad(loss))(jnp.stack([xj, xj]), jnp.stack([yj, yj]))
    for row in np.asarray(rows):
        _check(row, y, x, logits)


def test_jax_jit_gives_the_eager_value_and_skips_value_checks():
    backends.get("jax")
    import jax
    import jax.numpy as jnp

    y, p = jnp.asarray([1.0, 0.0, 1.0]), jnp.asarray([0.9, 0.2, 0.6])
    eager = bce(y, p)
    # XLA fuses the jitted computation, which may round differently by an ulp.
    assert float(jax.jit(lambda a, b: bce(a, b))(y, p)) == pytest.approx(float(eager), rel=4e-16)
    # Traced values cannot be inspected: a NaN passes through instead of raising.
    bad = jnp.asarray([0.9, jnp.nan, 0.6])
    assert np.isnan(float(jax.jit(lambda a, b: bce(a, b))(y, bad)))
    with pytest.raises(ValueError, match="NaN"):
        bce(y, bad)


@pytest.mark.parametrize(("y", "x", "logits"), CASES)
def test_tensorflow_gradient_tape(y, x, logits):
    tf = pytest.importorskip("tensorflow")
    pred = tf.Variable(np.array(x, dtype=np.float64))
    with tf.GradientTape() as tape:
        loss = bce(tf.constant(y, dtype=tf.float64), pred, from_logits=logits, reduction="sum")
    _check(tape.gradient(loss, pred).numpy(), y, x, logits)

    @tf.function
    def traced(labels, predictions):
        with tf.GradientTape() as inner:
            inner.watch(predictions)
            value = bce(labels, predictions, from_logits=logits, reduction="sum")
        return inner.gradient(value, predictions)

    _check(traced(tf.constant(y, dtype=tf.float64), tf.constant(x, dtype=tf.float64)).numpy(), y, x, logits)


def test_categorical_gradients_are_softmax_minus_onehot():
    torch = pytest.importorskip("torch")
    z = torch.tensor([[2.0, -1.0, 0.5], [1e4, -1e4, 0.0], [0.0, -float("inf"), 1.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    logloss.categorical_cross_entropy(labels, z, from_logits=True, reduction="sum").backward()
    expected = torch.softmax(z.detach(), dim=-1) - torch.nn.functional.one_hot(labels, 3)
    assert torch.all(torch.isfinite(z.grad))
    torch.testing.assert_close(z.grad, expected.double(), rtol=1e-15, atol=1e-300)


def test_jax_default_float32_mode_works_without_warnings():
    # The session's JAX runs with x64 on (backends.py); JAX's default is off: check it in a fresh process.
    pytest.importorskip("jax")
    code = """
import jax, jax.numpy as jnp, numpy as np, logloss
y, p = jnp.asarray([1.0, 0.0, 0.3]), jnp.asarray([0.9, 0.2, 0.6])
r = logloss.bce(y, p)
assert r.dtype == jnp.float32, r.dtype
assert abs(float(r) - float(logloss.bce([1, 0, 0.3], [0.9, 0.2, 0.6]))) < 1e-7
assert logloss.bce(jnp.asarray([1, 0]), jnp.asarray([1, 0]), reduction="none").dtype == jnp.float32
g = jax.jit(jax.grad(lambda q: logloss.bce(y, q, from_logits=True, reduction="sum")))(jnp.asarray([1e4, -1e4, 0.0]))
assert np.allclose(np.asarray(g), [0.0, 0.0, 0.2], rtol=1e-6), g
c = logloss.categorical_cross_entropy(jnp.asarray([0, 1]), jnp.asarray([[2.0, 1.0], [0.0, 3.0]]), from_logits=True)
assert c.dtype == jnp.float32
"""
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, env={**os.environ, "JAX_ENABLE_X64": "0"})
