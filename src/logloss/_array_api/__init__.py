"""Every array library other than NumPy: one implementation through the array API.

The public functions in ``_binary`` and ``_categorical`` send an input here when any array
argument is not a NumPy array or a Python value (:func:`is_foreign`). The namespace comes from
``array_api_compat`` (PyTorch, JAX, Dask, CuPy, array-api-strict) or from ``tensorflow.py`` (which
is not array-API compatible). Nothing here imports a framework at module level.

Precision: float16 and bfloat16 are computed in float32; float32 in float64 where the library
and device have it (JAX only with ``jax_enable_x64``); float64 in float64 (there is no long
double on a GPU), with log and exp carried as double-doubles (``doubledouble.py``) and products and
sums carried exactly, so the loss is rounded once: within 1 ulp of the NumPy path on every
library, under ``jax.jit`` and ``tf.function`` too. Results are rounded once to the input's
dtype, on the input's device.

Autodiff: every ``where`` feeds its unselected branch a safe value ("double where"), so a
gradient never meets ``0 * inf`` (``log 0`` in a branch that was not taken).

Validation: values are checked with one reduction and one host sync; only when that check
fails are the inputs copied to NumPy, where the NumPy path raises the same error it raises for
NumPy input. Under tracing (``jax.jit``/``grad``/``vmap``, ``tf.function``) values cannot be
inspected, so only shapes and dtypes are checked and no ``InfiniteLossWarning`` is issued.
"""

# Nothing is imported here: ``import logloss`` loads only ``namespace.is_foreign`` (to tell a
# foreign array from a NumPy one); the engine is imported when the first such array comes in.
