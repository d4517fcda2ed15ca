"""float64 labels beside half-precision predictions, on every backend that has them: the labels
keep their digits. The working dtype of bfloat16/float16 predictions was float32 whatever the
labels, so a float64 label within 6e-8 of 1 was rounded to 1 before its loss was computed, and
(1 - y) z at a large or infinite logit became 0. References: mpmath at 256 bits
(tests/reference.py), rounded to the output dtype by the library's own cast."""

from __future__ import annotations

import math
from contextlib import nullcontext

import mpmath
import numpy as np
import pytest

import logloss
from tests.reference import bce_logit

CASES = [  # (label, logit): each logit exact in bfloat16 and float16
    (1 - 1e-9, math.inf),      # (1 - y) z: infinite, where a label rounded to 1 gave 0
    (1 - 1e-9, 9984.0),        # 9.984e-6, where a label rounded to 1 gave softplus(-9984) = 0
    (3e-10, -9984.0),          # the same from the other side (kept before too)
    (0.3, 2.0),
    (1 - 2.0**-30, 60000.0),   # near float16's largest logits
]


def _narrow(backend, values: np.ndarray, name: str):
    """float64 values in the backend's dtype ``name``, cast by the backend itself."""
    module = backend.module
    if backend.name == "torch":
        return backend.asarray(values).to(getattr(module, name))
    if backend.name == "tensorflow":
        return module.cast(module.constant(values, dtype=module.float64), getattr(module, name))
    if backend.name == "jax":
        return module.asarray(values).astype(getattr(module, name))
    return backend.asarray(values.astype(getattr(np, name)))  # NumPy, Dask: float16


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
@pytest.mark.parametrize("label, logit", CASES)
def test_float64_labels_keep_their_digits_beside_half_precision_logits(backend, name, label,
                                                                         logit):
    if backend.name == "array_api_strict":
        pytest.skip("the array API standard has no half-precision floats")
    if backend.name in ("numpy", "dask") and name == "bfloat16":
        pytest.skip(f"{backend.name} has no bfloat16")
    z = _narrow(backend, np.array([logit]), name)
    y = backend.asarray(np.array([label]))
    infinite = math.isinf(logit)
    with pytest.warns(logloss.InfiniteLossWarning) if infinite else nullcontext():
        got = logloss.binary_cross_entropy(y, z, from_logits=True, reduction="none")
    exact = mpmath.inf if infinite else bce_logit(label, logit)
    expected = backend.to_numpy(_narrow(backend, np.array([float(exact)]), name))
    assert backend.to_numpy(got).tolist() == expected.tolist(), (float(exact), got)
