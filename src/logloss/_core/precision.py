"""Working precision: compute wider than the input, round once to the input's dtype.

float16 and float32 are computed in float64.  float64 is computed in the platform's
extended ``long double`` (64-bit significand on x86-64 Linux) wherever a float64
formula would accumulate more than one rounding: soft labels, logits, gradients.
A hard-label loss from probabilities is a single correctly-rounded libm call
(``log`` or ``log1p``) and stays in float64.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def extended_dtype() -> np.dtype:
    """``np.longdouble`` where it is wider than float64, else float64."""
    if np.finfo(np.longdouble).nmant >= 63:
        return np.dtype(np.longdouble)
    return np.dtype(np.float64)


def result_dtype(*dtypes: np.dtype) -> np.dtype:
    """The dtype a result is rounded to: the widest float input, float64 for ints and bools."""
    floats = [d for d in dtypes if d.kind == "f"]
    if not floats:
        return np.dtype(np.float64)
    return np.dtype(np.result_type(*floats))


def working_dtype(output: np.dtype, *, needs_extended: bool) -> np.dtype:
    if output.itemsize < 8:
        return np.dtype(np.float64)
    if output == np.float64 and needs_extended:
        return extended_dtype()
    return np.dtype(output)


def round_once(result, dtype: np.dtype):
    """The result in its output dtype, rounded once; a NumPy scalar for a 0-d result."""
    # A value beyond the output's range (1/p**2 at p = 1e-300) rounds to inf: that is the
    # correctly rounded result, not an accident to warn about.
    with np.errstate(over="ignore"):
        rounded = np.asarray(result).astype(dtype)
    return rounded[()] if rounded.ndim == 0 else rounded
