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


@functools.cache
def clip_bounds(clip: float) -> tuple[float, float, float, float, float]:
    """``clip`` as the two losses it allows and the logit where it starts.

    ``clip`` bounds each prediction to ``[clip, 1 - clip]`` with ``1 - clip`` meant exactly (in
    float64 it rounds to 1 below ~1.1e-16): a clipped sample's two terms are those of a
    prediction of exactly ``clip`` (``-log clip`` and ``-log1p(-clip)``), swapped when the
    prediction was above ``1 - clip``. Every path (probabilities or logits, hard or soft labels,
    NumPy or another library) uses these numbers, so a sample's loss never depends on the
    other samples. Returns ``(-log clip, its remainder, -log1p(-clip), its remainder, logit)``,
    each remainder what an extended-precision value adds to the float64 one.
    """
    c = extended_dtype().type(clip)
    minus_log = -np.log(c)
    minus_log1p = -np.log1p(-c)
    hi, hi1p = float(minus_log), float(minus_log1p)
    return hi, float(minus_log - hi), hi1p, float(minus_log1p - hi1p), float(np.log(c) - np.log1p(-c))
