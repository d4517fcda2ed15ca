"""The few array-API functions ``_array_api`` uses, spelled in TensorFlow (not array-API compatible).

Imported only when a TensorFlow tensor is passed in. Every function is a plain TensorFlow op,
so results stay on the input's device and are differentiable under ``tf.GradientTape``.
"""

from __future__ import annotations

import functools
import types

import numpy as np
import tensorflow as tf


def _axis(axis):
    return list(axis) if isinstance(axis, tuple) else axis


def _isdtype(dtype, kind) -> bool:
    dtype = tf.as_dtype(dtype)
    if kind == "integral":
        return dtype.is_integer
    if kind == "real floating":
        return dtype.is_floating
    raise NotImplementedError(kind)


def _asarray(value, dtype=None, device=None):
    return tf.convert_to_tensor(value, dtype=dtype)


def _where(condition, a, b):
    return tf.where(condition, a, b)


def _arange(n, device=None):
    return tf.range(n, dtype=tf.int64)


def _argmax(x, axis=-1, keepdims=False):
    result = tf.argmax(x, axis=axis, output_type=tf.int64)
    return tf.expand_dims(result, axis) if keepdims else result


def _moveaxis(x, source, destination):
    if source % x.shape.rank == destination % x.shape.rank:
        return x
    import tensorflow.experimental.numpy as tnp

    return tnp.moveaxis(x, source, destination)


class _Finfo:
    def __init__(self, dtype):
        dtype = tf.as_dtype(dtype)
        # bfloat16 has 8 significand bits; NumPy has no bfloat16 to ask.
        self.eps = 2.0**-7 if dtype == tf.bfloat16 else float(np.finfo(dtype.as_numpy_dtype).eps)
        self.bits = dtype.size * 8
        self.max = float(tf.as_dtype(dtype).max)


@functools.cache
def namespace() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        __name__=__name__,
        bool=tf.bool,
        float16=tf.float16,
        bfloat16=tf.bfloat16,
        float32=tf.float32,
        float64=tf.float64,
        int64=tf.int64,
        isdtype=_isdtype,
        finfo=_Finfo,
        asarray=_asarray,
        astype=lambda x, dtype: tf.cast(x, dtype),
        where=_where,
        log=tf.math.log,
        log1p=tf.math.log1p,
        exp=tf.math.exp,
        round=tf.math.round,
        abs=tf.math.abs,
        isnan=tf.math.is_nan,
        isinf=tf.math.is_inf,
        isfinite=tf.math.is_finite,
        zeros_like=tf.zeros_like,
        ones_like=tf.ones_like,
        clip=lambda x, low, high: tf.clip_by_value(x, tf.constant(low, x.dtype), tf.constant(high, x.dtype)),
        sum=lambda x, axis=None, keepdims=False: tf.reduce_sum(x, axis=_axis(axis), keepdims=keepdims),
        min=lambda x, axis=None, keepdims=False: tf.reduce_min(x, axis=_axis(axis), keepdims=keepdims),
        max=lambda x, axis=None, keepdims=False: tf.reduce_max(x, axis=_axis(axis), keepdims=keepdims),
        all=lambda x, axis=None: tf.reduce_all(x, axis=_axis(axis)),
        any=lambda x, axis=None: tf.reduce_any(x, axis=_axis(axis)),
        argmax=_argmax,
        arange=_arange,
        expand_dims=lambda x, axis: tf.expand_dims(x, axis),
        broadcast_to=lambda x, shape: tf.broadcast_to(x, shape),
        moveaxis=_moveaxis,
        # (tf.identity does not stop Grappler's algebra; ensure_shape does)
        barrier=lambda x: tf.ensure_shape(x, x.shape),
        stop_gradient=tf.stop_gradient,
        from_bits=lambda i: tf.bitcast(i, tf.float64),
    )
