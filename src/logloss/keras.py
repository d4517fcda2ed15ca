"""Keras 3 adapter: an exact binary cross-entropy ``Loss`` and a streaming ``Metric``.

Works on every Keras backend (TensorFlow, JAX, PyTorch): Keras hands the backend's tensors to
:func:`logloss.binary_cross_entropy`, which returns the same kind. Importing this module
imports ``keras``; ``import logloss`` does not.

    import logloss.keras
    model.compile(optimizer="sgd",
                  loss=logloss.keras.BinaryCrossentropy(from_logits=True),
                  metrics=[logloss.keras.BinaryCrossentropyMetric(from_logits=True)])

Inside a compiled ``fit`` the tensors are symbolic, so values are not checked there (shapes
and dtypes are) and no ``InfiniteLossWarning`` is issued; eager calls check everything. The
metric's ``sample_weight`` is checked like the function's when eager (a negative, NaN or infinite
weight raises ValueError naming its index); in a compiled graph, where nothing can raise, such a
weight turns the metric's state, and so its result, into NaN for the rest of the epoch.
"""

from __future__ import annotations

import keras
from keras import ops

from ._array_api.namespace import barrier_for_array, is_traced, to_numpy
from ._core.checks import check_sample_weight
from ._binary import binary_cross_entropy
from ._core import compensated

__all__ = ["BinaryCrossentropy", "BinaryCrossentropyMetric"]


def _same_rank(y_true, y_pred):
    """Keras's convention: labels of shape (n,) go with predictions of shape (n, 1)."""
    if len(y_true.shape) == len(y_pred.shape) - 1 and y_pred.shape[-1] == 1:
        return ops.expand_dims(y_true, -1), y_pred
    if len(y_pred.shape) == len(y_true.shape) - 1 and y_true.shape[-1] == 1:
        return ops.squeeze(y_true, -1), y_pred
    return y_true, y_pred


def _options_config(adapter) -> dict:
    """The logloss options of a Loss or Metric, as JSON-friendly values for ``get_config``."""
    pos_weight = adapter.pos_weight
    if not (pos_weight is None or isinstance(pos_weight, (int, float))):
        pos_weight = [float(v) for v in ops.convert_to_numpy(pos_weight).ravel()]
    return dict(from_logits=adapter.from_logits, label_smoothing=adapter.label_smoothing,
                pos_weight=pos_weight, axis=adapter.axis, validate=adapter.validate)


def _per_sample(y_true, y_pred, from_logits, label_smoothing, pos_weight, axis, validate=True):
    y_true, y_pred = _same_rank(y_true, y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    # One loss per sample: the mean over the label axis; 0-d and 1-d inputs are one label per sample.
    per_element = axis is None or len(y_pred.shape) <= 1
    return binary_cross_entropy(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing,
        pos_weight=pos_weight, axis=None if per_element else axis,
        reduction="none" if per_element else "mean", validate=validate,
    )


@keras.saving.register_keras_serializable(package="logloss")
class BinaryCrossentropy(keras.losses.Loss):
    """Exact binary cross-entropy, a drop-in for ``keras.losses.BinaryCrossentropy``.

    No ``epsilon`` clip: a prediction of exactly 0 for a positive label costs +inf (Keras
    clips at 1e-7, capping each sample at 16.1). ``call`` returns the mean over ``axis`` (the
    label axis, last by default) per sample (for 1-d input each element is a sample); Keras then applies ``sample_weight`` and
    ``reduction``. ``pos_weight`` multiplies the positive term (a scalar or one per label).
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        pos_weight=None,
        axis: int = -1,
        reduction: str = "sum_over_batch_size",
        name: str = "logloss_binary_crossentropy",
        dtype=None,
        *,
        validate: bool = True,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.pos_weight = pos_weight
        self.axis = axis
        self.validate = validate

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            # Keras multiplies call()'s losses by the weights: a zero weight on an infinite loss
            # (p = 0 for y = 1 at a padding position) made the whole loss NaN (0 * inf). The
            # masked predictions become safe values first ("double where": the gradient is 0).
            y_pred = ops.convert_to_tensor(y_pred)
            weight = ops.convert_to_tensor(sample_weight)
            if len(weight.shape) <= len(y_pred.shape):
                while len(weight.shape) < len(y_pred.shape):
                    weight = ops.expand_dims(weight, -1)
                safe = ops.zeros_like(y_pred) + (0.0 if self.from_logits else 0.5)
                y_pred = ops.where(weight == 0, safe, y_pred)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return _per_sample(y_true, y_pred, self.from_logits, self.label_smoothing, self.pos_weight, self.axis,
                           self.validate)

    def get_config(self):
        return {**super().get_config(), **_options_config(self)}


@keras.saving.register_keras_serializable(package="logloss")
class BinaryCrossentropyMetric(keras.metrics.Metric):
    """Streaming exact log loss: the weighted mean over everything seen since ``reset_state``.

    The state is two compensated sums (loss and weight), each kept as a float64 pair hi + lo
    updated with TwoSum, like :class:`logloss.Accumulator`; the state lives in Keras variables
    so it updates inside a compiled ``fit`` (an Accumulator's Python floats could not).
    Without float64 on the backend (JAX without ``jax_enable_x64``) the pairs are float32.
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        pos_weight=None,
        axis: int = -1,
        name: str = "logloss",
        dtype=None,
        *,
        validate: bool = True,
    ):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.pos_weight = pos_weight
        self.axis = axis
        self.validate = validate
        self._state_dtype = "float64" if _backend_has_float64() else "float32"
        self._sums = [
            self.add_variable(shape=(), initializer="zeros", dtype=self._state_dtype, name=n)
            for n in ("loss_hi", "loss_lo", "weight_hi", "weight_lo")
        ]

    def update_state(self, y_true, y_pred, sample_weight=None):
        wide = self._state_dtype
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), wide)
        y_true = ops.convert_to_tensor(y_true)
        losses = _per_sample(y_true, y_pred, self.from_logits, self.label_smoothing, self.pos_weight, self.axis,
                             self.validate)
        if sample_weight is None:
            weight = ops.ones_like(losses)
        else:
            weight = ops.convert_to_tensor(sample_weight)
            if not is_traced(weight):
                # Eagerly, the function's own check and message (index and value of the first bad weight).
                check_sample_weight(to_numpy(weight), tuple(to_numpy(weight).shape))
            weight = ops.cast(weight, wide)
            if len(weight.shape) > len(losses.shape):
                weight = ops.reshape(weight, ops.shape(losses))
            weight = ops.broadcast_to(weight, ops.shape(losses))
        zero = ops.zeros_like(losses)
        weighted = ops.where(weight == 0, zero, weight * losses)
        loss_sum, weight_sum = ops.sum(weighted), ops.sum(weight)
        if sample_weight is not None:
            # Inside a compiled graph nothing can raise: a negative, NaN or infinite weight makes
            # the state NaN (and so every later result), never a plausible wrong number.
            bad = ops.any(ops.logical_or(weight < 0, ops.logical_not(ops.isfinite(weight))))
            nan = ops.convert_to_tensor(float("nan"), dtype=wide)
            loss_sum = ops.where(bad, nan, loss_sum)
            weight_sum = ops.where(bad, nan, weight_sum)
        self._add(0, loss_sum)
        self._add(2, weight_sum)

    def _add(self, index, value):
        hi, lo = self._sums[index], self._sums[index + 1]
        # Inside a compiled fit the sum passes the backend's barrier, or XLA/Grappler would
        # fold the TwoSum error term to zero.
        total, error = compensated.two_sum(ops.convert_to_tensor(hi), value, _barrier(value))
        hi.assign(total)
        lo.assign(lo + error)

    def result(self):
        loss_hi, loss_lo, weight_hi, weight_lo = self._sums
        return (loss_hi + loss_lo) / (weight_hi + weight_lo)

    def reset_state(self):
        for variable in self._sums:
            variable.assign(ops.zeros((), dtype=self._state_dtype))

    def get_config(self):
        return {**super().get_config(), **_options_config(self)}


def _barrier(value):
    if keras.backend.backend() in ("jax", "tensorflow"):
        return barrier_for_array(value)
    return lambda x: x


def _backend_has_float64() -> bool:
    if keras.backend.backend() == "jax":
        import jax

        return bool(jax.config.jax_enable_x64)
    return True
