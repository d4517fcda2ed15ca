"""The training-step path (torch.autograd.Function, jax.custom_vjp, tf.custom_gradient): every
element within 1 ulp of mpmath in the input dtype, on the adversarial regimes, and gradients equal
to the analytic gradient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import logloss

from .. import backends
from ..reference import bce_logit, bce_probability, ulp_error

FRAMEWORKS = ["torch", "jax", "tensorflow"]
rng = np.random.default_rng(13)
M = 150  # per regime


def _logits():
    return np.concatenate([
        rng.uniform(-50, 50, M),
        np.sign(rng.uniform(-1, 1, M)) * 10.0 ** rng.uniform(-12, 0, M),  # +-1e-12 .. +-1
        np.sign(rng.uniform(-1, 1, M)) * rng.uniform(30, 45, M),  # where e^-|z| leaves the sum
        np.sign(rng.uniform(-1, 1, M)) * 10.0 ** rng.uniform(1.5, 2.85, M),  # up to +-700
        [700.0, -700.0, 1e300, -1e300, np.inf, -np.inf, 0.0, 1e-12, -1e-12],
    ])


def _probabilities(dtype):
    tiny = 10.0 ** rng.uniform(-300 if dtype == np.float64 else -37, -1, M)
    eps = np.finfo(dtype).eps / 2
    near_one = 1 - rng.integers(1, 400, M) * eps
    return np.concatenate([rng.uniform(0, 1, M), tiny, near_one, 0.5 + rng.uniform(-1e-6, 1e-6, M), [0.0, 1.0]])


def _labels(n, kind):
    if kind == "hard":
        return (rng.uniform(size=n) < 0.5) * 1.0
    return rng.uniform(size=n)


def _cast(backend, array, dtype):
    if backend.name == "torch":
        return backend.module.tensor(array, dtype=getattr(backend.module, np.dtype(dtype).name))
    if backend.name == "tensorflow":
        return backend.module.constant(array, dtype=getattr(backend.module, np.dtype(dtype).name))
    return backend.module.asarray(array, dtype=dtype)


def _exact(y, x, from_logits, pos_weight):
    function = bce_logit if from_logits else bce_probability
    return [function(a, b, pos_weight or 1.0) for a, b in zip(y, x)]


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    return backends.get(request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos_weight", [None, 2.5])
@pytest.mark.parametrize("label", ["hard", "soft"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_within_1_ulp_of_mpmath(framework, from_logits, label, pos_weight, dtype):
    x = _logits() if from_logits else _probabilities(dtype)
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        x = x.astype(dtype)  # the input as the framework holds it; the reference takes the same values
    y = _labels(x.size, label).astype(dtype)
    if framework.flushes_subnormals:
        keep = ~((np.abs(x) < np.finfo(dtype).tiny) & (x != 0))
        x, y = x[keep], y[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        result = logloss.bce(_cast(framework, y, dtype), _cast(framework, x, dtype), from_logits=from_logits,
                             pos_weight=pos_weight, reduction="none")
    computed = framework.to_numpy(result)
    assert computed.dtype == dtype
    exact = _exact(y, x, from_logits, pos_weight)
    errors = [ulp_error(c, e, dtype) for c, e in zip(computed, exact)]
    if framework.flushes_subnormals:  # a subnormal result is 0 there: the library's arithmetic
        errors = [0.0 if c == 0 and abs(float(e)) < np.finfo(dtype).tiny else u for c, e, u in zip(computed, exact, errors)]
    assert max(errors) <= 1, (max(errors), x[int(np.argmax(errors))], y[int(np.argmax(errors))])


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_torch_float64_with_integer_labels_within_1_ulp_of_mpmath(from_logits):
    # Labels 0/1 by their dtype, no pos_weight: the cheap path (one library value per element).
    torch = pytest.importorskip("torch")
    x = _logits() if from_logits else _probabilities(np.float64)
    y = (rng.uniform(size=x.size) < 0.5).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        computed = logloss.bce(torch.tensor(y), torch.tensor(x), from_logits=from_logits, reduction="none").numpy()
    errors = [ulp_error(c, e) for c, e in zip(computed, _exact(y, x, from_logits, None))]
    assert max(errors) <= 1, (max(errors), x[int(np.argmax(errors))])


def _gradient(framework, y, x, from_logits, pos_weight, reduction):
    name = framework.name
    if name == "torch":
        torch = framework.module
        xt = torch.tensor(x, requires_grad=True)
        logloss.bce(torch.tensor(y), xt, from_logits=from_logits, pos_weight=pos_weight, reduction=reduction).backward()
        return xt.grad.numpy()
    if name == "jax":
        import jax

        def loss(a, b):
            return logloss.bce(b, a, from_logits=from_logits, pos_weight=pos_weight, reduction=reduction)

        return np.asarray(jax.jit(jax.grad(loss))(framework.asarray(x), framework.asarray(y)))
    tf = framework.module
    xt = tf.constant(x)

    @tf.function
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch(a)
            value = logloss.bce(b, a, from_logits=from_logits, pos_weight=pos_weight, reduction=reduction)
        return tape.gradient(value, a)

    return step(xt, tf.constant(y)).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_gradient_is_the_analytic_gradient(framework, from_logits, dtype):
    x = (np.concatenate([_logits()[:-9], [40.0, -40.0, 1e4, -1e4, 0.0]]) if from_logits
         else np.concatenate([rng.uniform(0.001, 0.999, 200), [1e-30, 1 - 2**-20]]))
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    y = _labels(x.size, "soft").astype(dtype)
    y[::2] = np.round(y[::2])
    for pos_weight in (None, 3.0):
        for reduction, scale in (("sum", 1.0), ("mean", 1.0 / x.size)):
            computed = _gradient(framework, y, x, from_logits, pos_weight, reduction)
            assert computed.dtype == dtype
            expected = logloss.binary_cross_entropy_gradient(y.astype(np.float64), x.astype(np.float64),
                                                             from_logits=from_logits, pos_weight=pos_weight) * scale
            # The analytic gradient in float64 (within a few eps of its larger term), rounded once
            # to the input dtype; "mean" multiplies by 1/n in the input dtype, as the native losses do.
            wide, pw = x.astype(np.float64), pos_weight or 1.0
            with np.errstate(over="ignore", divide="ignore"):
                if from_logits:  # sigmoid(z) = 1 / (1 + e^-z), written independently of logloss
                    terms = (1 - y) / (1 + np.exp(-wide)) + pw * y / (1 + np.exp(wide))
                else:
                    terms = pw * y / wide + (1 - y) / (1 - wide)
            terms = terms * scale
            eps = np.finfo(dtype).eps
            tolerance = (1.5 if reduction == "sum" else 2.5) * eps * np.abs(expected) + 4 * np.finfo(np.float64).eps * terms
            # (XLA and TensorFlow flush subnormal results to 0 on CPU.)
            floor = np.finfo(dtype).tiny if framework.flushes_subnormals else np.finfo(dtype).smallest_subnormal
            bad = np.abs(computed - expected) > tolerance + floor
            assert not bad.any(), (reduction, pos_weight, x[bad][:3], y[bad][:3], computed[bad][:3], expected[bad][:3])


def test_second_derivative_through_torch():
    torch = pytest.importorskip("torch")
    z = torch.tensor([-3.0, 0.5, 20.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.3, 0.0], dtype=torch.float64)
    (g,) = torch.autograd.grad(logloss.bce(y, z, from_logits=True, reduction="sum"), z, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), z)
    expected = logloss.binary_cross_entropy_hessian(y.numpy(), z.detach().numpy(), from_logits=True)
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-14)


def test_label_and_pos_weight_gradients_through_torch():
    torch = pytest.importorskip("torch")
    z = torch.tensor([-3.0, 0.5, 2.0], dtype=torch.float64)
    p = torch.sigmoid(z)
    for x, logits in ((z, True), (p, False)):
        y = torch.tensor([1.0, 0.3, 0.0], dtype=torch.float64, requires_grad=True)
        pw = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        logloss.bce(y, x, from_logits=logits, pos_weight=pw, reduction="sum").backward()
        # loss = pw*y*(-log sigmoid(z)) + (1-y)*(-log sigmoid(-z)), written the other way round:
        log_p, log_q = torch.log(p), torch.log1p(-p)
        np.testing.assert_allclose(y.grad.numpy(), (-2.0 * log_p + log_q).numpy(), rtol=1e-14)
        np.testing.assert_allclose(float(pw.grad), float(-(y.detach() * log_p).sum()), rtol=1e-14)
