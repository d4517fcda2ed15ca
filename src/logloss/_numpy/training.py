"""A training step's loss and gradient in one pass of the compiled kernels (``kernels.c``:
``train``), for the framework adapters: they hand over zero-copy NumPy views of their CPU
tensors. The public layer passes ``loss_and_gradient`` down to the array-API engine, which must
not import this one.

Only calls without options (no weight, clip, smoothing or pos_weight) come here. The kernels
vouch for hard labels (float64 results) and soft ones (float32 results); anything else (invalid
input, an infinite loss) returns None and the caller's own path computes or reports it.
"""

from __future__ import annotations

import math

import numpy as np

from .chunked import _F32, _F64, _code, compiled_kernels, run_in_ranges


def loss_and_gradient(y: np.ndarray, x: np.ndarray, *, from_logits: bool, reduction: str, grad, losses):
    """Flat C-contiguous ``y`` (any real dtype) and ``x`` (float32 or float64). ``grad``: None or
    an array like ``x`` that receives d(result)/dx, rounded once; ``losses``: for
    ``reduction="none"``, an array like ``x`` that receives the losses, rounded once. Returns the
    mean or sum as a Python float (0.0 for "none"), or None when the kernels are missing or
    cannot vouch for the input (nothing is then promised about ``grad`` and ``losses``)."""
    kernels = compiled_kernels()
    n = x.size
    if kernels is None or n == 0 or y.size != n:
        return None
    yt, xt = _code(y), _code(x)
    if yt is None or xt not in (_F32, _F64):
        return None
    # mean: each gradient is d/dx / n, scaled in float64 before its one rounding
    scale = 1.0 / n if reduction == "mean" else 1.0

    def run(lo, hi):
        return kernels.train(y, yt, x, xt, grad, losses, scale, lo, hi, from_logits)

    parts = run_in_ranges(run, n, kernels.CHUNK)
    if any(status != kernels.OK for status, _, _ in parts):
        return None
    total = math.fsum(v for _, hi, lo in parts for v in (hi, lo))
    return total / n if reduction == "mean" else total
