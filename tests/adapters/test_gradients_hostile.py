"""Hostile tests of the training-loop adapters' values and derivatives at the edges: every
reference is mpmath at 256 bits (tests/reference.py) or the derivative written differently
(e^z / (1 + e^z)^2 for the second derivative), never logloss."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import logloss
from tests.reference import bce_logit

torch = pytest.importorskip("torch")


def _bfloat16(value: mpmath.mpf) -> float:
    """value rounded to bfloat16 (through float64: none of the values below is near a tie)."""
    return float(torch.tensor(float(value), dtype=torch.float64).to(torch.bfloat16).double())


# bfloat16 reaches 3.39e38; its logits were clamped to +-1e30 inside the float32 working dtype,
# so a +-inf logit (an infinite loss) came back as 1e30 and a logit past 1e30 lost its size.
_BFLOAT16_LOGITS = [  # (label, logit)
    (0.0, float("inf")),
    (1.0, float("-inf")),
    (0.0, 3e38),
    (1.0, -1e31),
    (0.5, 2e30),
    (0.25, -3e38),
    (1.0, 1e30),  # a loss of e^-1e30: 0
]


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.0}, {"pos_weight": 1.0}])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bfloat16_logits_beyond_1e30_keep_their_loss(options, reduction):
    y = torch.tensor([label for label, _ in _BFLOAT16_LOGITS], dtype=torch.bfloat16)
    z = torch.tensor([logit for _, logit in _BFLOAT16_LOGITS], dtype=torch.bfloat16,
                     requires_grad=True)
    exact = [bce_logit(label, float(logit)) for label, logit in zip(y.tolist(), z.tolist())]
    with pytest.warns(logloss.InfiniteLossWarning, match="2 of 7"):
        got = logloss.bce(y, z, from_logits=True, reduction=reduction, **options)
    got.sum().backward()
    if reduction == "none":
        assert got.double().tolist() == [_bfloat16(v) for v in exact]
    else:
        assert float(got.detach()) == float("inf")
    # sigmoid(z) - y: the gradient was right already; kept so the clamp cannot move it.
    zs = z.detach().double().numpy()
    expected = (np.where(zs > 0, 1.0, 0.0) - y.double().numpy()) / (7 if reduction == "mean" else 1)
    assert z.grad.double().tolist() == [_bfloat16(mpmath.mpf(v)) for v in expected]


# An infinite logit in a narrower dtype than the working one became a finite stand-in whose loss
# only turned inf when rounded to the output: inf came back without the InfiniteLossWarning.
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["contiguous", "stepped"])
@pytest.mark.parametrize("label,logit", [(0.0, math.inf), (1.0, -math.inf), (0.5, math.inf)])
def test_infinite_logit_in_a_narrow_dtype_warns(dtype, reduction, layout, label, logit):
    z = torch.tensor([logit, 0.0, logit, 0.0], dtype=getattr(torch, dtype), requires_grad=True)
    y = torch.tensor([label, 1.0, label, 1.0], dtype=getattr(torch, dtype))
    if layout == "stepped":
        z, y = z[::2], y[::2]
    with pytest.warns(logloss.InfiniteLossWarning, match=f"of {z.numel()} samples"):
        got = logloss.bce(y, z, from_logits=True, reduction=reduction)
    assert float(got.detach().double().max()) == float("inf")


# The second derivative at z = 0 (a zero-initialized output layer's logits): d|z|/dz is 0 there
# in torch and TensorFlow, so a sigmoid built on e^-|z| has slope 0 and the curvature came out 0
# instead of (1 - y + pw*y) / 4.
_CURVATURE_LOGITS = [0.0, -0.0, 5e-324, -5e-324, 1e-300, 2.5, -2.5, 40.0]


def _curvature(y, z, pw=1.0):
    y, z = mpmath.mpf(y), mpmath.mpf(z)
    return float(((1 - y) + pw * y) * mpmath.exp(z) / (1 + mpmath.exp(z)) ** 2)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "stepped"])  # the C kernel, the torch Function
@pytest.mark.parametrize("label,pos_weight", [(0.0, None), (1.0, None), (0.3, None), (1.0, 2.0)])
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_torch_second_derivative_of_logits(dtype, layout, label, pos_weight, reduction):
    dt = getattr(torch, dtype)
    n = len(_CURVATURE_LOGITS)
    leaf = torch.tensor(np.repeat(_CURVATURE_LOGITS, 2), dtype=dt, requires_grad=True)
    z = leaf if layout == "contiguous" else leaf[::2]
    y = torch.full((2 * n,) if layout == "contiguous" else (n,), label, dtype=dt)
    options = {} if pos_weight is None else {"pos_weight": torch.tensor(pos_weight, dtype=dt)}
    loss = logloss.bce(y, z, from_logits=True, reduction=reduction, **options)
    (grad,) = torch.autograd.grad(loss.sum(), leaf, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), leaf)
    scale = 1 / z.numel() if reduction == "mean" else 1.0
    expected = np.repeat([_curvature(label, v, pos_weight or 1.0) * scale
                          for v in _CURVATURE_LOGITS], 2)
    if layout != "contiguous":
        expected[1::2] = 0.0
    np.testing.assert_allclose(second.double().numpy(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_torch_second_derivative_with_sample_weight_and_kernel_agree(label):
    """The weighted path differentiates the formulas themselves; at z = 0 all three agree."""
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    y = torch.full((3,), label, dtype=torch.float64)
    for options in ({}, {"sample_weight": torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)}):
        loss = logloss.bce(y, z, from_logits=True, reduction="sum", **options)
        (grad,) = torch.autograd.grad(loss, z, create_graph=True)
        (second,) = torch.autograd.grad(grad.sum(), z)
        weight = options.get("sample_weight", torch.ones(3, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(second.numpy(), 0.25 * weight, rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("label,pos_weight", [(0.0, None), (0.3, None), (1.0, 2.0)])
def test_tensorflow_nested_tapes_and_jax_hessian_at_zero_logit(dtype, reduction, label, pos_weight):
    """The same curvature through TensorFlow's nested tapes (which had 0 at z = 0, as torch did)
    and jax.hessian (right already: JAX takes d|z|/dz = 1 at 0)."""
    tf = pytest.importorskip("tensorflow")
    jax = pytest.importorskip("jax")
    values = [0.0, 1e-300 if dtype == "float64" else 1e-30, 2.5, -2.5]
    expected = np.array([_curvature(label, v, pos_weight or 1.0) for v in values])
    expected /= len(values) if reduction == "mean" else 1
    options = {} if pos_weight is None else {"pos_weight": pos_weight}
    z = tf.Variable(values, dtype=dtype)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_sum(logloss.bce(tf.constant([label] * 4, dtype), z, from_logits=True,
                                             reduction=reduction, **options))
        grad = inner.gradient(loss, z)
    second = outer.gradient(grad, z)
    np.testing.assert_allclose(second.numpy(), expected, rtol=1e-6, atol=0)
    if dtype == "float32":  # x64 is a process-wide switch: JAX's default float32 only
        def total(v):
            return logloss.bce(jax.numpy.full(4, label, dtype), v, from_logits=True,
                               reduction=reduction, **options).sum()

        hessian = jax.hessian(total)(jax.numpy.asarray(values, dtype))
        np.testing.assert_allclose(np.diag(np.asarray(hessian)), expected, rtol=1e-5, atol=0)



_MANTISSA = {"float32": (23, -126), "float16": (10, -14), "bfloat16": (7, -126)}


@pytest.mark.parametrize("name", list(_MANTISSA))
@pytest.mark.parametrize("strided", [True, False])
def test_a_mean_gradient_is_rounded_once(name, strided):
    # The gradient was rounded to the logits' dtype, then multiplied by 1/n rounded to it: up to
    # 1.64 ulp off in float32 (strided logits, the autograd Function's path) and 1.8 in float16.
    dtype = getattr(torch, name)
    mantissa, lowest = _MANTISSA[name]
    n = 1000
    rng = np.random.default_rng(3)
    wide = torch.tensor(rng.normal(0.0, 4.0, (n, 2))).to(dtype).requires_grad_(True)
    z = wide[:, 0] if strided else wide[:, 0].detach().clone().requires_grad_(True)
    y = torch.tensor(rng.integers(0, 2, n), dtype=torch.float32)
    logloss.binary_cross_entropy(y, z, from_logits=True).backward()
    grad = (wide.grad[:, 0] if strided else z.grad).double().tolist()
    for zi, yi, got in zip(z.detach().double().tolist(), y.tolist(), grad):
        exact = float((1 / (1 + mpmath.exp(-mpmath.mpf(zi))) - yi) / n)
        exponent = max(math.floor(math.log2(abs(exact))), lowest) if exact else lowest
        assert abs(got - exact) <= 2.0 ** (exponent - mantissa), (name, zi, yi, got, exact)
