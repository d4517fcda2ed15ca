"""Dask: the array-API formulas run block by block, so nothing is materialized.

Imported only for Dask input. Each block is a NumPy array, computed under ``np.errstate`` in
the worker thread (``log 0 = -inf`` is a result, not an accident), and reductions are Dask's
per-block partial sums merged in a tree.
"""

from __future__ import annotations

import dask.array as da
import numpy as np


def map_elementwise(function, *arrays, reduce_last: bool = False):
    """``function(numpy, *blocks)`` on aligned blocks; ``reduce_last``: it sums away the last axis."""
    arrays = [da.asarray(a) for a in arrays]
    if reduce_last:
        # A sample's classes must sit in one block.
        arrays = [a.rechunk({a.ndim - 1: -1}) if a.ndim else a for a in arrays]
    base = arrays[0]
    arrays = [base] + [a.rechunk(base.chunks[: a.ndim - 1] + (a.chunks[-1],)) if reduce_last else a.rechunk(base.chunks) for a in arrays[1:]]
    dtype = np.result_type(*[a.dtype for a in arrays if a.dtype.kind == "f"])

    def block(*blocks):
        with np.errstate(all="ignore"):
            return function(np, *blocks)

    if reduce_last:
        return da.map_blocks(block, *arrays, dtype=dtype, drop_axis=arrays[0].ndim - 1)
    return da.map_blocks(block, *arrays, dtype=dtype)
