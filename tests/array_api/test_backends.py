"""The core API on every installed array library: same numbers, same library, dtype and errors.

Every test takes the ``backend`` fixture (conftest.py), so it runs once per library: NumPy,
array-api-strict (the array-API reference, which also stands in for CuPy here), PyTorch,
JAX, TensorFlow and Dask.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import logloss

bce = logloss.binary_cross_entropy
grad = logloss.binary_cross_entropy_gradient
hess = logloss.binary_cross_entropy_hessian
cce = logloss.categorical_cross_entropy
rng = np.random.default_rng(4)
N = 2000  # per regime: ~8,000 values per case


def _regimes(flushes_subnormals: bool):
    near_one = 1 - rng.integers(1, 400, N) * 2.0**-53
    probabilities = np.concatenate(
        [rng.uniform(0, 1, N), 10.0 ** rng.uniform(-300, -1, N), near_one, 0.5 + rng.uniform(-1e-9, 1e-9, N)]
    )
    if not flushes_subnormals:
        probabilities = np.concatenate([probabilities, [5e-324, 1e-320, 2.2e-310]])
    logits = np.concatenate(
        [
            rng.uniform(-50, 50, N),
            np.sign(rng.uniform(-1, 1, N)) * 10.0 ** rng.uniform(-12, 308, N),
            rng.uniform(-1e-10, 1e-10, N),
            rng.uniform(30, 45, N) * np.sign(rng.uniform(-1, 1, N)),
            [1e308, -1e308, np.inf, -np.inf, 0.0],
        ]
    )
    return probabilities, logits


def ulps(computed, expected, flushes_subnormals=False) -> np.ndarray:
    """|computed - expected| in units of the last place of `expected` (float64)."""
    computed = np.asarray(computed, dtype=np.float64).ravel()
    expected = np.asarray(expected, dtype=np.float64).ravel()
    if flushes_subnormals:  # a subnormal result is 0 there; that is the library's arithmetic
        keep = ~((np.abs(expected) < 2.3e-308) & (expected != 0))
        computed, expected = computed[keep], expected[keep]
    same = (computed == expected) | (np.isnan(computed) & np.isnan(expected))
    with np.errstate(invalid="ignore"):
        error = np.abs(computed - expected) / np.spacing(np.abs(expected))
    return np.where(same, 0.0, np.nan_to_num(error, nan=np.inf))


def _both(backend, function, *arrays, **kwargs):
    """(result on the backend, result on NumPy); the backend's result must be its own array type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        result = function(*(backend.asarray(a) for a in arrays), **kwargs)
        expected = function(*arrays, **kwargs)
    assert isinstance(result, backend.array_type), type(result)
    return backend.to_numpy(result), np.asarray(expected)


# ---------------------------------------------------------------------------------------------
# Same numbers: float64 against the NumPy path (which is within 1 ulp of mpmath)


def _compiled(backend, function, **kwargs):
    """The same call under jax.jit or tf.function, where the compiler's algebra could fold the
    error terms away (XLA and Grappler rewrite (1 + x) - 1 to x); None elsewhere."""
    if backend.name == "jax":
        import jax

        return jax.jit(lambda y, x: function(y, x, **kwargs))
    if backend.name == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda y, x: function(y, x, **kwargs))
    return None


@pytest.mark.parametrize("pos_weight", [None, 2.5])
@pytest.mark.parametrize("label", ["hard", "soft"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["probabilities", "logits"])
def test_float64_agrees_with_numpy_within_1_ulp(backend, from_logits, label, pos_weight):
    # Every library, JAX's and TensorFlow's too (their own float64 exp and log are up to 2 ulp
    # off), carries log and exp as double-doubles and the soft label's two products and sum
    # exactly, rounding once: the NumPy path (within 1 ulp of mpmath) is at most 1 ulp away.
    p, z = _regimes(backend.flushes_subnormals)
    x = z if from_logits else p
    y = (rng.uniform(size=x.shape) < 0.5) * 1.0 if label == "hard" else rng.uniform(size=x.shape)
    kwargs = {"from_logits": from_logits, "pos_weight": pos_weight, "reduction": "none"}
    result, expected = _both(backend, bce, y, x, **kwargs)
    assert result.dtype == np.float64
    assert ulps(result, expected, backend.flushes_subnormals).max() <= 1
    compiled = _compiled(backend, bce, **kwargs)
    if compiled is not None:
        traced = backend.to_numpy(compiled(backend.asarray(y), backend.asarray(x)))
        assert ulps(traced, expected, backend.flushes_subnormals).max() <= 1


def test_soft_label_with_a_huge_logit_is_not_nan(backend):
    # The loss (1 - y) * 1.78e300 is below the splitting limit but 1.78e300 itself is not.
    y, z = np.array([0.97, 0.03]), np.array([1.78e300, -2.45e300])
    result, expected = _both(backend, bce, y, z, from_logits=True, reduction="none")
    assert ulps(result, expected).max() <= 1


def test_float64_derivatives_agree_with_numpy(backend):
    p, z = _regimes(backend.flushes_subnormals)
    p = p[p >= 1e-300]  # (NumPy's path warns when y/p overflows float64 on its final cast)
    yp, yz = rng.uniform(size=p.shape), rng.uniform(size=z.shape)
    yp[::2], yz[::2] = 1.0 * (yp[::2] < 0.5), 1.0 * (yz[::2] < 0.5)
    # Gradients are differences of two terms; relative to the larger term the float64 formula
    # is within a few eps (NumPy's long double resolves the cancellation further).
    g, g_np = _both(backend, grad, yp, p)
    with np.errstate(over="ignore"):
        scale = np.abs(yp / p) + np.abs((1 - yp) / (1 - p))
    ok = np.isfinite(g_np)
    np.testing.assert_array_equal(g[~ok], g_np[~ok])
    assert np.all(np.abs(g - g_np)[ok] <= 4 * np.finfo(np.float64).eps * scale[ok])
    g, g_np = _both(backend, grad, yz, z, from_logits=True)
    assert np.all(np.abs(g - g_np) <= 4 * np.finfo(np.float64).eps)
    # (Past p = 1e-154 the hessian 1/p^2 overflows float64: both give inf.)
    keep = p > 1e-150
    for x, y, logits in ((p[keep], yp[keep], False), (z, yz, True)):
        h, h_np = _both(backend, hess, y, x, from_logits=logits)
        assert ulps(h, h_np, backend.flushes_subnormals).max() <= 4


def test_reductions_and_options_agree_with_numpy(backend):
    y = (rng.uniform(size=(40, 3)) < 0.4) * 1.0
    p = rng.uniform(0.001, 0.999, (40, 3))
    z = rng.normal(0, 4, (40, 3))
    w = rng.uniform(0, 2, (40, 3))
    for x, logits in ((p, False), (z, True)):
        for kwargs in (
            {},
            {"reduction": "sum"},
            {"axis": 0},
            {"axis": (0, 1), "reduction": "sum"},
            {"pos_weight": 2.5},
            {"label_smoothing": 0.1},
            {"clip": 1e-3},
        ):
            result, expected = _both(backend, bce, y, x, from_logits=logits, **kwargs)
            np.testing.assert_allclose(result, expected, rtol=1e-14)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            weighted = bce(backend.asarray(y), backend.asarray(x), from_logits=logits, sample_weight=backend.asarray(w))
            pos = bce(backend.asarray(y), backend.asarray(x), from_logits=logits, pos_weight=backend.asarray(np.array([1.0, 2.0, 3.0])))
        np.testing.assert_allclose(backend.to_numpy(weighted), bce(y, x, from_logits=logits, sample_weight=w), rtol=1e-14)
        np.testing.assert_allclose(backend.to_numpy(pos), bce(y, x, from_logits=logits, pos_weight=[1.0, 2.0, 3.0]), rtol=1e-14)


def test_categorical_agrees_with_numpy(backend):
    z = rng.normal(0, 3, (30, 4))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 30)
    onehot = np.eye(4)[labels]
    soft = rng.dirichlet(np.ones(4), 30)
    for y in (labels, onehot, soft):
        for x, logits in ((p, False), (z, True)):
            for kwargs in ({}, {"reduction": "none"}, {"reduction": "sum"}):
                result, expected = _both(backend, cce, y, x, from_logits=logits, **kwargs)
                np.testing.assert_allclose(result, expected, rtol=1e-13)
    result, expected = _both(backend, cce, onehot.T, p.T, axis=0, reduction="none")
    np.testing.assert_allclose(result, expected, rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Same library, same dtype


def _dtypes(backend):
    names = ["float64", "float32", "float16", "bfloat16"]
    found = []
    for name in names:
        dtype = getattr(backend.module, name, None)
        if dtype is None and backend.name == "jax":
            import jax.numpy as jnp

            dtype = getattr(jnp, name, None)
        if dtype is not None:
            found.append((name, dtype))
    return found


def _cast(backend, array, dtype):
    if backend.name == "numpy":
        return array.astype(dtype)
    if backend.name == "torch":
        return backend.asarray(array).to(dtype)
    if backend.name == "tensorflow":
        import tensorflow as tf

        return tf.cast(backend.asarray(array), dtype)
    if backend.name == "dask":
        return backend.asarray(array).astype(dtype)
    return backend.module.astype(backend.asarray(array), dtype)


def test_result_has_the_input_library_and_dtype(backend):
    y = (rng.uniform(size=64) < 0.5) * 1.0
    p = rng.uniform(0.01, 0.99, 64)
    z = rng.normal(0, 3, 64)
    for name, dtype in _dtypes(backend):
        if backend.name == "numpy" and name == "bfloat16":
            continue
        narrow_p, narrow_z = _cast(backend, p, dtype), _cast(backend, z, dtype)
        host_p = backend.to_numpy(narrow_p).astype(np.float64)
        host_z = backend.to_numpy(narrow_z).astype(np.float64)
        for function, x, host, logits in (
            (bce, narrow_p, host_p, False),
            (bce, narrow_z, host_z, True),
            (grad, narrow_z, host_z, True),
            (hess, narrow_p, host_p, False),
        ):
            kwargs = {"reduction": "none"} if function is bce else {}
            result = function(backend.asarray(y), x, from_logits=logits, **kwargs)
            assert isinstance(result, backend.array_type)
            assert result.dtype == dtype, (name, result.dtype)
            # Computed wide and rounded once: the float64 value rounded to this dtype, within 1 ulp.
            exact = np.asarray(function(y, host, from_logits=logits, **kwargs))
            values = backend.to_numpy(result).astype(np.float64)
            # (float64: the derivatives are a few float64 operations, measured within 4 ulp.)
            eps = {"float64": 2.0**-50, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}[name]
            tiny = {"float64": 0, "float32": 1e-45, "float16": 6e-8, "bfloat16": 1e-40}[name]
            assert np.all(np.abs(values - exact) <= eps * np.abs(exact) + tiny), name
        full = bce(backend.asarray(y), narrow_p)
        assert isinstance(full, backend.array_type) and full.dtype == dtype and full.ndim == 0


def test_integer_and_bool_predictions_give_float64(backend):
    result = bce(backend.asarray(np.array([1, 0])), backend.asarray(np.array([1, 0])), reduction="none")
    assert backend.to_numpy(result).dtype == np.float64


def test_lists_mixed_with_arrays_follow_the_array(backend):
    result = bce([1, 0, 1], backend.asarray(np.array([0.9, 0.1, 0.8])))
    assert isinstance(result, backend.array_type)
    assert float(backend.to_numpy(result)) == pytest.approx(float(bce([1, 0, 1], [0.9, 0.1, 0.8])), rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Same errors and warnings

Y = np.array([1, 0, 1, 0])
P = np.array([0.9, 0.2, 0.6, 0.4])
BAD = [
    ("nan-pred", bce, (Y, np.array([0.9, np.nan, 0.6, 0.4])), {}, ValueError, ["`y_pred`", "NaN", "index 1"]),
    ("nan-label", bce, (np.array([1, 0, np.nan, 0.0]), P), {}, ValueError, ["`y_true`", "NaN", "index 2"]),
    ("nan-logit", bce, (Y, np.array([0, 0, 0, np.nan])), {"from_logits": True}, ValueError, ["`y_pred`", "NaN", "index 3"]),
    ("prob-above-one", bce, (Y, np.array([0.9, 0.2, 1.5, 0.4])), {}, ValueError, ["`y_pred`", "[0, 1]", "1.5", "index 2", "from_logits=True"]),
    ("label-two", bce, (np.array([1, 2, 1, 0]), P), {}, ValueError, ["`y_true`", "labels in [0, 1]", "2", "index 1"]),
    ("label-2d", bce, (np.array([[1, 0], [0, -1]]), np.full((2, 2), 0.5)), {}, ValueError, ["`y_true`", "index (1, 1)"]),
    ("shape", bce, (Y, P[:, None]), {}, ValueError, ["same shape", "(4,)", "(4, 1)"]),
    ("empty-mean", bce, (np.zeros(0), np.zeros(0)), {}, ValueError, ["empty", "reduction='sum'"]),
    ("negative-weight", bce, (Y, P), {"sample_weight": np.array([1.0, 1, -2, 1])}, ValueError, ["`sample_weight`", "non-negative", "-2.0", "index 2"]),
    ("weight-shape", bce, (Y, P), {"sample_weight": np.array([1.0, 2, 3])}, ValueError, ["`sample_weight`", "broadcastable", "(4,)", "(3,)"]),
    ("zero-total-weight", bce, (Y, P), {"sample_weight": np.zeros(4)}, ValueError, ["total `sample_weight` is zero"]),
    ("pos-weight-negative", bce, (Y, P), {"pos_weight": np.array([1.0, -1.0, 1.0, 1.0])}, ValueError, ["`pos_weight`", "-1.0", "index 1"]),
    ("smoothing", bce, (Y, P), {"label_smoothing": 1.5}, ValueError, ["`label_smoothing`", "1.5"]),
    ("reduction", bce, (Y, P), {"reduction": "avg"}, ValueError, ["`reduction`", "reduction='avg'"]),
    ("axis", bce, (Y, P), {"axis": 3}, ValueError, ["`axis`", "axis=3"]),
    ("grad-nan", grad, (Y, np.array([0.1, 0.2, np.nan, 0.5])), {}, ValueError, ["`y_pred`", "NaN", "index 2"]),
    ("cce-label-range", cce, (np.array([0, 3]), np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])), {}, ValueError, ["`y_true`", "[0, 2]", "3", "index 1"]),
    ("cce-not-normalized", cce, (np.array([0, 1]), np.array([[0.5, 0.6], [0.2, 0.8]])), {}, ValueError, ["`y_pred`", "sum to 1", "sample index 0"]),
    ("cce-shape", cce, (np.array([[1, 0, 0]]), np.array([[0.5, 0.5]])), {}, ValueError, ["`y_true`", "(1, 3)", "(1, 2)"]),
    ("cce-logit-nan", cce, (np.array([0]), np.array([[np.nan, 1.0]])), {"from_logits": True}, ValueError, ["`y_pred`", "nan", "index (0, 0)"]),
]


@pytest.mark.parametrize(("function", "arrays", "kwargs", "exception", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_has_the_same_clear_error(backend, function, arrays, kwargs, exception, fragments):
    converted = {k: backend.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(exception) as info:
        function(*(backend.asarray(a) for a in arrays), **converted)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def test_complex_input_is_refused(backend):
    if backend.name == "array_api_strict" or backend.name == "dask":
        y_pred = backend.asarray(P + 0j)
    elif backend.name == "tensorflow":
        y_pred = backend.module.constant(P + 0j)
    else:
        y_pred = backend.asarray(P + 0j)
    with pytest.raises(TypeError, match="`y_pred` must be an array of real numbers.*complex128"):
        bce(backend.asarray(Y), y_pred)


def test_strings_mixed_with_arrays_name_the_argument(backend):
    with pytest.raises(TypeError, match="`y_true` must be an array of real numbers"):
        bce(np.array(["yes", "no", "yes", "no"]), backend.asarray(P))


def test_impossible_prediction_is_inf_with_the_same_warning(backend):
    y = backend.asarray(np.array([1, 0, 1, 0, 1]))
    p = backend.asarray(np.array([0.0, 1.0, 0.3, 0.3, 0.0]))
    with pytest.warns(logloss.InfiniteLossWarning, match=r"3 of 5 samples .*first at index 0.*clip="):
        result = bce(y, p)
    assert np.isposinf(backend.to_numpy(result))
    clipped = bce(y, p, clip=1e-7)
    assert np.isfinite(backend.to_numpy(clipped))


def test_dask_stays_lazy_and_chunked():
    da = pytest.importorskip("dask.array")
    y = (rng.uniform(size=10_000) < 0.5) * 1.0
    p = rng.uniform(0.01, 0.99, 10_000)
    result = bce(da.from_array(y, chunks=1000), da.from_array(p, chunks=1000))
    assert isinstance(result, da.Array)
    assert float(result.compute()) == pytest.approx(float(bce(y, p)), rel=1e-14)


def test_accumulator_takes_every_library(backend):
    y = (rng.uniform(size=200) < 0.5) * 1.0
    p = rng.uniform(0.01, 0.99, 200)
    accumulator = logloss.Accumulator()
    for start in range(0, 200, 64):
        accumulator.update(backend.asarray(y[start:start + 64]), backend.asarray(p[start:start + 64]))
    assert accumulator.result() == pytest.approx(float(bce(y, p)), rel=1e-14)
