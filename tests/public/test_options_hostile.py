"""binary_cross_entropy's options in combination, held to mpmath by a hostile tester.

Each number is compared with the documented formula evaluated by mpmath (tests/reference.py,
256 bits) with clip, label smoothing, pos_weight and sample_weight applied exactly as the README
defines them, and must be within 1 ulp of it per element (float32 and narrower also for means
and sums; float64 means on the reference path too).
"""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logloss

from .. import backends
from .. import reference as ref


def _exact_element(y, x, *, logits, pw, smoothing, clip) -> mpmath.mpf:
    y = mpmath.mpf(float(y))
    if smoothing:
        s = mpmath.mpf(float(smoothing))
        y = y * (1 - s) + s / 2  # Keras's definition, exactly
    x = float(x)
    if clip is not None:
        c = mpmath.mpf(float(clip))
        if logits:  # sigmoid(z) < c  <=>  z < logit(c); logit(1 - c) = -logit(c)
            limit = mpmath.log(c) - mpmath.log(ref.one_minus(c))
            low, high = x < limit, x > -limit
        else:
            low, high = x < c, x > ref.one_minus(c)
        if low or high:
            return ref.bce_probability(y, c if low else ref.one_minus(c), pw)
    return ref.bce_logit(y, x, pw) if logits else ref.bce_probability(y, x, pw)


def exact(y, x, *, logits=False, pos_weight=None, label_smoothing=0.0, clip=None,
          sample_weight=None, reduction="mean", axis=None) -> np.ndarray:
    """The exact result (an object array of mpf) of binary_cross_entropy with these options."""
    y, x = np.asarray(y), np.asarray(x)
    pw = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight), x.shape)
    w = None if sample_weight is None else np.broadcast_to(np.asarray(sample_weight), x.shape)
    losses = np.empty(x.shape, dtype=object)
    for i in np.ndindex(x.shape):
        value = _exact_element(y[i], x[i], logits=logits, pw=float(pw[i]),
                               smoothing=label_smoothing, clip=clip)
        if w is not None:  # a zero weight removes the sample, even an infinite one
            value = mpmath.mpf(0) if w[i] == 0 else value * mpmath.mpf(float(w[i]))
        losses[i] = value
    if reduction == "none":
        return losses
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    axes = tuple(a % x.ndim for a in axes)
    keep = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(losses, keep + list(axes))
    out_shape = moved.shape[:len(keep)]
    moved = moved.reshape(out_shape + (-1,))
    if w is not None:
        weights = np.transpose(w, keep + list(axes)).reshape(out_shape + (-1,))
    out = np.empty(out_shape, dtype=object)
    for i in np.ndindex(out_shape):
        total = mpmath.fsum(moved[i])
        if reduction == "mean":
            total /= mpmath.fsum(mpmath.mpf(float(v)) for v in weights[i]) if w is not None \
                else moved[i].size
        out[i] = total
    return out


def ulp_errors(got, expected: np.ndarray, dtype) -> np.ndarray:
    """|got - exact| in ulps of the exact value rounded to ``dtype``; 0 where both round to the
    same infinity."""
    got = np.asarray(got)
    assert got.shape == expected.shape
    errors = np.zeros(got.shape)
    for i in np.ndindex(got.shape):
        e = expected[i]
        with np.errstate(over="ignore"):
            rounded = np.array(ref.to_float(e)).astype(dtype)
        if np.isinf(rounded) or np.isinf(got[i]):
            errors[i] = 0.0 if rounded == got[i] else math.inf
        else:
            errors[i] = ref.ulp_error(float(got[i]), e, np.dtype(dtype).type)
    return errors


# ------------------------------------------------------------------ NumPy: every option at once

_SHAPES = [(), (5,), (3, 4), (2, 3, 2), (4, 1)]


@st.composite
def _cases(draw):
    shape = draw(st.sampled_from(_SHAPES))
    ndim = len(shape)
    dtype = np.dtype(draw(st.sampled_from(["float16", "float32", "float64"])))
    logits = draw(st.booleans())
    label_dtype = np.dtype(draw(st.sampled_from(["bool", "int8", "int64", "float32", "float64"])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if label_dtype.kind == "f" and draw(st.booleans()):
        y = rng.random(shape).astype(label_dtype)
    else:
        y = np.asarray(rng.integers(0, 2, shape)).astype(label_dtype)
    if logits:
        x = rng.normal(0, draw(st.sampled_from([1.0, 40.0, 1e3])), shape)
    else:
        x = draw(st.sampled_from([
            lambda: rng.random(shape), lambda: 10.0 ** -rng.uniform(0, 300, shape),
            lambda: 1 - 10.0 ** -rng.uniform(0, 16, shape)]))()
    x = np.asarray(x).astype(dtype)
    options = {}
    clip = draw(st.sampled_from([None, 1e-300, 1e-7, 0.25]))
    if clip is not None:
        options["clip"] = clip
    smoothing = draw(st.sampled_from([0.0, 1e-3, 0.1, 1.0]))
    if smoothing:
        options["label_smoothing"] = smoothing
    pw = draw(st.sampled_from([None, 3.0, 1e-300, "column"]))
    if pw == "column":
        pw = np.arange(1.0, shape[-1] + 1) if ndim else 2.0
    if pw is not None:
        options["pos_weight"] = pw
    weight_shape = draw(st.sampled_from([None, shape, shape[-1:], ()]))
    if weight_shape is not None:
        w = np.asarray(rng.integers(0, 3, weight_shape))
        w = w.astype(draw(st.sampled_from(["int64", "float32", "float64", "bool", "uint8"])))
        if not w.any():
            w = np.ones(weight_shape, dtype=w.dtype)
        options["sample_weight"] = w
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    axis = None
    if ndim and draw(st.booleans()):
        axis = draw(st.sampled_from([0, -1, tuple(range(ndim)), (-1, 0) if ndim > 1 else 0]))
    engine = draw(st.sampled_from(["auto", "numpy"]))
    return y, x, logits, options, reduction, axis, engine


@settings(max_examples=200, deadline=None)
@given(_cases())
def test_every_option_combination_within_one_ulp_of_mpmath(case):
    y, x, logits, options, reduction, axis, engine = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", logloss.InfiniteLossWarning)
        with logloss.config_context(engine=engine):
            try:
                got = logloss.bce(y, x, from_logits=logits, reduction=reduction, axis=axis,
                                  **options)
            except ValueError as error:
                # a weight of 0 on every sample of an output; soft labels against predictions
                # that are all 0 or 1 (swapped arguments), refused only without clip
                swapped = "clip" not in options and "swapped" in str(error)
                assert swapped or "total `sample_weight` is zero" in str(error)
                return
    expected = exact(y, x, logits=logits, reduction=reduction, axis=axis, **options)
    assert np.asarray(got).dtype == x.dtype
    assert np.shape(got) == expected.shape
    assert ulp_errors(got, expected, x.dtype).max(initial=0) <= 1


# ------------------------------------------------------------------ other libraries, same numbers

# (y, x, from_logits, options): clipped samples with smoothed (soft) labels, where a float64
# label's rounding error must be corrected with the clipped terms, not the prediction's.
_CLIP_AND_SMOOTHING = [
    ([1, 1, 0, 0], [127.44344807, -30.52021241, -75.55536453, 51.89454401], True,
     dict(clip=1e-3, label_smoothing=1e-3)),
    ([1, 1, 0, 0], [127.44344807, -30.52021241, -75.55536453, 51.89454401], True,
     dict(clip=1e-3, label_smoothing=1e-3, pos_weight=3.0)),
    ([1, 0, 1], [1.43766022e-16, 0.9999999999, 0.6], False, dict(clip=0.25, label_smoothing=1e-3)),
    ([1, 0, 1, 0], [0.0, 1.0, 1e-300, 1 - 2**-53], False, dict(clip=1e-7, label_smoothing=0.1)),
    ([1, 0, 1, 0], [-1e308, 1e308, -math.inf, math.inf], True,
     dict(clip=1e-7, label_smoothing=0.1, pos_weight=0.5)),
]


@pytest.mark.parametrize("name", ["torch", "jax", "tensorflow", "dask", "array_api_strict"])
@pytest.mark.parametrize("y, x, logits, options", _CLIP_AND_SMOOTHING)
def test_clip_with_label_smoothing_float64_within_one_ulp_on_every_library(name, y, x, logits,
                                                                            options):
    backend = backends.get(name)
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    expected = exact(y, x, logits=logits, reduction="none", **options)
    numpy_result = logloss.bce(y, x, from_logits=logits, reduction="none", **options)
    assert ulp_errors(numpy_result, expected, np.float64).max() <= 1
    got = backend.to_numpy(logloss.bce(backend.asarray(y), backend.asarray(x),
                                       from_logits=logits, reduction="none", **options))
    assert ulp_errors(got, expected, np.float64).max() <= 1, (got, numpy_result)


# ------------------------------------------------------------------ clip makes 0 and 1 legitimate

@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_soft_labels_against_zero_one_predictions_with_clip_are_computed(engine):
    # Without clip such a call looks like swapped arguments (every loss infinite) and is refused;
    # with clip every loss is finite, and the other libraries compute it: so must NumPy.
    y, p = np.array([0.3, 0.6]), np.array([0.0, 1.0])
    with logloss.config_context(engine=engine):
        got = logloss.bce(y, p, clip=1e-7)
        with pytest.raises(ValueError, match="swapped"):
            logloss.bce(y, p)
    expected = exact(y, p, clip=1e-7)
    assert ulp_errors(got, expected, np.float64).max() <= 1
    torch = pytest.importorskip("torch")
    assert float(logloss.bce(torch.tensor(y), torch.tensor(p), clip=1e-7)) == float(got)
