"""Which array library an input belongs to, its namespace and device, the context every argument
is converted with, and what each library needs for exact arithmetic (barriers, bit casts) and
autodiff (stop_gradient). Frameworks are imported only inside the functions that need them."""

from __future__ import annotations

import sys

import numpy as np

from .._core.checks import check_real_array
from .._core.reduction import known, reduce_losses, warn_if_infinite

TENSORFLOW = "logloss._array_api.tensorflow"  # the __name__ of TensorFlow's namespace
_FRAMEWORKS = ("torch", "jax", "jaxlib", "tensorflow", "keras", "dask", "cupy", "array_api_strict")


# ---------------------------------------------------------------------------------------------
# Which library, which namespace


_ROOTS: dict = {}  # type -> top-level module name (a dict: torch.compile warns about lru_cache)


def root_of(value) -> str:
    kind = type(value)
    root = _ROOTS.get(kind)
    if root is None:
        root = _ROOTS[kind] = kind.__module__.partition(".")[0]
    return root


def is_foreign(*values) -> bool:
    """Whether any argument is an array of a library other than NumPy (checked without imports)."""
    for value in values:
        if value is None or isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)):
            continue
        if root_of(value) in _FRAMEWORKS or hasattr(value, "__array_namespace__"):
            return True
    return False


def is_tensorflow(value) -> bool:
    return root_of(value) in ("tensorflow", "keras") and "tensorflow" in sys.modules


def namespace(value):
    if is_tensorflow(value):
        from . import tensorflow

        return tensorflow.namespace()
    import array_api_compat

    return array_api_compat.array_namespace(value)


def device_of(xp, value):
    if is_tensorflow_namespace(xp):
        return None
    import array_api_compat

    return array_api_compat.device(value)


def is_traced(value) -> bool:
    """Values that cannot be inspected: JAX tracers, symbolic TensorFlow tensors."""
    root = root_of(value)
    if root in ("jax", "jaxlib"):
        import jax

        return isinstance(value, jax.core.Tracer)
    if root in ("tensorflow", "keras") and "tensorflow" in sys.modules:
        import tensorflow as tf

        return not tf.executing_eagerly() or not hasattr(value, "numpy")
    return False


def to_numpy(value):
    """A host copy, for error messages and for the NumPy check that writes them."""
    if value is None or isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)):
        return value
    root = root_of(value)
    if root == "torch":
        import torch

        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    if root == "dask":
        return np.asarray(value.compute())
    if root == "cupy":
        return value.get()
    if root in ("tensorflow", "keras"):
        import tensorflow as tf

        if value.dtype == tf.bfloat16:
            value = tf.cast(value, tf.float32)
        return np.asarray(value.numpy())
    if root == "array_api_strict":
        return np.asarray(value._array)
    array = np.asarray(value)
    if array.dtype.kind == "V" or str(array.dtype) == "bfloat16":
        array = array.astype(np.float32)
    return array


# ---------------------------------------------------------------------------------------------
# Dtypes


def kind(xp, dtype) -> str:
    """NumPy's dtype.kind letters for the kinds that matter: 'b', 'i', 'f', or '?' for the rest."""
    if dtype == xp.bool:
        return "b"
    if xp.isdtype(dtype, "integral"):
        return "i"
    if xp.isdtype(dtype, "real floating"):
        return "f"
    return "?"


def dtype_name(dtype) -> str:
    return str(dtype).rpartition(".")[2].replace("'>", "").replace("<dtype: '", "")


def check_real(xp, name: str, value) -> None:
    if kind(xp, value.dtype) == "?":
        complex_ = "complex" in str(value.dtype)
        hint = " Take the real part or the magnitude first." if complex_ else ""
        raise TypeError(
            f"`{name}` must be an array of real numbers (bool, int or float). "
            f"Received dtype {dtype_name(value.dtype)}.{hint}"
        )


def has_float64(xp, reference) -> bool:
    root = root_of(reference)
    if root in ("jax", "jaxlib"):
        import jax

        return bool(jax.config.jax_enable_x64)
    if root == "torch":
        return reference.device.type != "mps"
    return True


def dtypes(xp, reference, pred_dtype):
    """(output dtype, working dtype) for a prediction of ``pred_dtype``."""
    wide = xp.float64 if has_float64(xp, reference) else xp.float32
    output = pred_dtype if kind(xp, pred_dtype) == "f" else wide
    if output == xp.float64:
        return output, xp.float64
    if output == xp.float32:
        return output, wide
    return output, xp.float32  # float16, bfloat16


# ---------------------------------------------------------------------------------------------
# Shared pieces


def check_known_rank(name: str, value) -> None:
    """A tf.function whose input_signature leaves the rank open (``TensorSpec(None)``) gives a
    shape of unknown rank: every shape check needs the rank, so refuse it by name (it failed deep
    inside with TensorFlow's "Cannot iterate over a shape with unknown rank")."""
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(shape, "rank", 0) is None:
        raise ValueError(
            f"`{name}` has an unknown rank (a tf.function traced with an input_signature of "
            "TensorSpec(shape=None)). Give it a rank, e.g. tf.TensorSpec([None], ...) or "
            "tf.TensorSpec([None, None], ...); the dimensions may stay unknown.")


class Context:
    """The namespace, device and reference array every argument is converted with."""

    def __init__(self, *values, validate=True):
        self.reference = next(v for v in values if is_foreign(v))
        self.xp = namespace(self.reference)
        self.device = device_of(self.xp, self.reference)
        self.traced = any(is_traced(v) for v in values if is_foreign(v))
        # validate=False: no value is read back to the host (checks, warning, zero total weight).
        self.inspect = validate and not self.traced

    def asarray(self, value, name: str):
        """``value`` as an array of this library on this device (its own arrays pass through)."""
        if value is None:
            return value
        if is_foreign(value):
            check_known_rank(name, value)
            return value
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            # Keep the NumPy path's message for strings, objects, complex and dates.
            check_real_array(name, value)
        if self.device is None:
            return self.xp.asarray(value)
        return self.xp.asarray(value, device=self.device)

    def reduce(self, values, weight, reduction: str, axes):
        return reduce_losses(self.xp, values, weight, reduction, axes, traced=not self.inspect, to_host=to_numpy)

    def warn_if_infinite(self, weighted, result, stacklevel: int) -> None:
        if self.inspect and bool(self.xp.any(self.xp.isinf(result))):
            warn_if_infinite(to_numpy(weighted), to_numpy(result), stacklevel=stacklevel + 1)

    def check_values(self, ok, numpy_call) -> None:
        """One host sync; on failure the NumPy path, given host copies, raises its own error."""
        if not self.inspect or ok is None or bool(ok):
            return
        numpy_call()


def all_true(xp, condition):
    return xp.all(condition)








def broadcast_ok(shape, target) -> bool:
    """Whether ``shape`` broadcasts to ``target`` itself (not to something bigger)."""
    if not (known(shape) and known(target)):
        return True  # checked by the library when it runs
    try:
        result = np.broadcast_shapes(shape, target)
    except ValueError:
        return False
    return result == tuple(target)


def is_dask(xp) -> bool:
    return getattr(xp, "__name__", "").startswith("array_api_compat.dask")


def run_elementwise(ctx, function, *arrays, reduce_last=False):
    """``function(xp, *arrays)``, without NumPy's floating-point warnings on NumPy-backed
    libraries (log 0 = -inf is a result here); on Dask, block by block (``map_blocks``)."""
    if is_dask(ctx.xp):
        from . import dask

        return dask.map_elementwise(function, *arrays, reduce_last=reduce_last)
    with np.errstate(all="ignore"):
        return function(ctx.xp, *arrays)


# ---------------------------------------------------------------------------------------------
# What each library needs for exact arithmetic and autodiff
# (TensorFlow's namespace carries its own; see tensorflow.py.)


def _is_jax(xp) -> bool:
    return getattr(xp, "__name__", "") == "jax.numpy"


def is_tensorflow_namespace(xp) -> bool:
    return getattr(xp, "__name__", "") == TENSORFLOW


def is_jax_or_tensorflow(xp) -> bool:
    return _is_jax(xp) or is_tensorflow_namespace(xp)


def stop_gradient(xp, x):
    if _is_jax(xp):
        import jax

        return jax.lax.stop_gradient(x)
    if hasattr(xp, "stop_gradient"):
        return xp.stop_gradient(x)
    if hasattr(x, "detach"):  # PyTorch
        return x.detach()
    return x  # no autodiff (NumPy blocks under Dask, array-api-strict, CuPy)


def _jax_barrier(x):
    import jax

    return jax.lax.optimization_barrier(x)


def _no_barrier(x):
    return x


def barrier_for(xp):
    """A function that hides a value from the compiler's algebra: XLA (``jax.jit``) and Grappler
    (``tf.function``) rewrite ``(1 + x) - 1`` to ``x``, which zeroes every error term."""
    if _is_jax(xp):
        return _jax_barrier
    return getattr(xp, "barrier", _no_barrier)


def barrier_for_array(value):
    """The compiler barrier for arrays like ``value``."""
    return barrier_for(namespace(value))


def barrier(xp, x):
    return barrier_for(xp)(x)


def from_bits(xp, i):
    """The float64 whose IEEE bits are the int64 ``i``, or None where the library cannot say."""
    if _is_jax(xp):
        import jax

        return jax.lax.bitcast_convert_type(i, xp.float64)
    if hasattr(xp, "from_bits"):
        return xp.from_bits(i)
    if getattr(xp, "__name__", "") != "array_api_strict" and hasattr(i, "view"):
        return i.view(xp.float64)  # PyTorch, NumPy (Dask blocks), CuPy
    return None
