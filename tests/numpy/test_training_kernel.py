"""The compiled kernel ``train`` (loss and gradient in one pass, for the adapters' training step)
on every CPU path this machine runs, through ``_numpy.training.loss_and_gradient``: many blocks
and thread ranges, the product blocks and their per-element fallback, label dtypes, and the
inputs it must decline. References in 80-bit long double (independent of the kernels)."""

from __future__ import annotations

import numpy as np
import pytest

import logloss
from logloss._numpy import kernels as paths
from logloss._numpy.training import loss_and_gradient

if not paths.supported_paths():
    pytest.skip("the compiled kernels were not built (no C compiler at install)", allow_module_level=True)
if np.finfo(np.longdouble).nmant < 63:
    pytest.skip("needs an 80-bit long double for the reference", allow_module_level=True)


def _reference(y, x, from_logits):
    """(losses, d loss / dx) in long double."""
    y, x = y.astype(np.longdouble), x.astype(np.longdouble)
    if from_logits:
        e = np.exp(-np.abs(x))
        losses = np.log1p(e) + np.where(x > 0, 1 - y, y) * np.abs(x)
        sp, sn = 1 / (1 + e), e / (1 + e)
        return losses, (1 - y) * np.where(x >= 0, sp, sn) - y * np.where(x >= 0, sn, sp)
    return -(y * np.log(x) + (1 - y) * np.log1p(-x)), (x - y) / (x * (1 - x))


def _data(n, dtype, from_logits, soft, seed=4):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 6, n)
    z[::997] *= 200  # some blocks beyond the product's range (|z| > 708): computed per element
    y = rng.uniform(size=n) if soft else (rng.uniform(size=n) < 0.4).astype(np.float64)
    x = z if from_logits else 1 / (1 + np.exp(-np.clip(z, -15, 15)))  # no 1.0 in float32
    return y.astype(dtype), x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_mean_and_gradient_over_many_blocks_and_threads(K, dtype, from_logits):
    n = 300_001  # several chunks per thread range, a partial last block
    soft = dtype == np.float32
    y, x = _data(n, dtype, from_logits, soft)
    losses, grads = _reference(y, x, from_logits)
    grad = np.empty_like(x)
    with logloss.config_context(threads=2):
        mean = loss_and_gradient(y, x, from_logits=from_logits, reduction="mean", grad=grad, losses=None)
    assert mean is not None
    assert abs(mean - float(losses.mean())) <= 1e-14 * float(losses.mean())
    expected = (grads / n).astype(dtype)
    # float32: the float64 gradient rounded once (within 1 ulp of the reference); float64: 4 ulps
    ulps = np.abs(grad.astype(np.longdouble) - grads / n) / np.spacing(np.abs(expected)).astype(np.longdouble)
    assert ulps.max() <= (1 if dtype == np.float32 else 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduction_none_within_1_ulp_with_integer_labels(K, dtype):
    y, z = _data(70_000, dtype, True, soft=False, seed=9)
    out, grad = np.empty_like(z), np.empty_like(z)
    labels = y.astype(np.int8)
    assert loss_and_gradient(labels, z, from_logits=True, reduction="none", grad=grad, losses=out) == 0.0
    losses, grads = _reference(y, z, True)
    exact = losses.astype(dtype)
    assert np.all(np.abs(out.astype(np.longdouble) - losses) <= np.spacing(np.abs(exact)).astype(np.longdouble))
    total = loss_and_gradient(labels, z, from_logits=True, reduction="sum", grad=None, losses=None)
    assert abs(total - float(losses.sum())) <= 1e-14 * float(losses.sum())


@pytest.mark.parametrize("from_logits", [True, False])
def test_declines_what_the_reference_path_reports(K, from_logits):
    y, x = _data(5000, np.float64, from_logits, soft=False)
    grad = np.empty_like(x)

    def call(y_, x_, reduction="mean", losses=None):
        return loss_and_gradient(y_, x_, from_logits=from_logits, reduction=reduction, grad=grad, losses=losses)

    assert call(y, x) is not None
    spoiled = x.copy()
    spoiled[4321] = np.nan
    assert call(y, spoiled) is None
    labels = y.copy()
    labels[17] = 2.0
    assert call(labels, x) is None
    soft = np.full_like(y, 0.3)
    assert call(soft, x, "none", np.empty_like(x)) is None  # float64 soft labels per element
    if from_logits:
        infinite = x.copy()
        infinite[100] = -np.inf if y[100] == 1 else np.inf
        assert call(y, infinite) is None
    else:
        zero = x.copy()
        zero[100] = 0.0 if y[100] == 1 else 1.0  # an infinite loss
        assert call(y, zero) is None
    assert call(y[:0], x[:0]) is None
    with logloss.config_context(engine="numpy"):
        assert call(y, x) is None
