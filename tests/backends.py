"""One fixture for every installed array library (as array-api-extra does).

``backend`` is a :class:`Backend`: ``backend.asarray(numpy_array)`` makes that library's array,
``backend.to_numpy(result)`` brings a result back. Libraries are imported only when their
parameter runs; a library that is not installed is skipped, and CI installs them all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest


@dataclass
class Backend:
    name: str
    module: object
    asarray: Callable
    to_numpy: Callable
    array_type: tuple
    flushes_subnormals: bool = False  # XLA and TensorFlow run with flush-to-zero on CPU

    def __repr__(self) -> str:
        return self.name


def _numpy():
    return Backend("numpy", np, np.asarray, np.asarray, (np.ndarray, np.generic))


def _array_api_strict():
    import array_api_strict as xps

    from array_api_strict._array_object import Array

    return Backend("array_api_strict", xps, xps.asarray, lambda a: np.asarray(a._array), (Array,))


def _torch():
    import torch

    def to_numpy(a):
        a = a.detach().cpu()
        return (a.float() if a.dtype == torch.bfloat16 else a).numpy()

    def asarray(a, dtype=None):
        t = torch.asarray(np.asarray(a))
        return t if dtype is None else t.to(dtype)

    return Backend("torch", torch, asarray, to_numpy, (torch.Tensor,))


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def to_numpy(a):
        a = np.asarray(a)
        return a.astype(np.float32) if a.dtype.name == "bfloat16" else a

    return Backend("jax", jnp, jnp.asarray, to_numpy, (jax.Array,), flushes_subnormals=True)


def _tensorflow():
    import tensorflow as tf

    def to_numpy(a):
        if a.dtype == tf.bfloat16:
            a = tf.cast(a, tf.float32)
        return np.asarray(a.numpy())

    return Backend("tensorflow", tf, tf.constant, to_numpy, (tf.Tensor,), flushes_subnormals=True)


def _dask():
    import dask.array as da

    def asarray(a):
        a = np.asarray(a)
        return da.from_array(a, chunks=max(1, (a.shape[0] + 1) // 2) if a.ndim else ())

    return Backend("dask", da, asarray, lambda a: np.asarray(a.compute()), (da.Array,))


FACTORIES = {
    "numpy": (None, _numpy),
    "array_api_strict": ("array_api_strict", _array_api_strict),
    "torch": ("torch", _torch),
    "jax": ("jax", _jax),
    "tensorflow": ("tensorflow", _tensorflow),
    "dask": ("dask.array", _dask),
}
_CACHE: dict[str, Backend] = {}


def get(name: str) -> Backend:
    if name not in _CACHE:
        module, factory = FACTORIES[name]
        if module is not None:
            try:
                importlib.import_module(module)
            except ImportError:
                pytest.skip(f"{name} is not installed")
        _CACHE[name] = factory()
    return _CACHE[name]


NAMES = list(FACTORIES)
FOREIGN = [n for n in NAMES if n != "numpy"]
