"""TensorFlow's training-step path: the per-element loss as one ``tf.custom_gradient`` whose
backward is the analytic gradient, compiled by XLA (kept apart from ``tensorflow.py``, the
namespace shim, which the namespace module imports)."""

from __future__ import annotations

import functools
import tensorflow as tf

from .tensorflow import namespace


# ---------------------------------------------------------------------------------------------
# The per-element loss as one tf.custom_gradient whose backward is the analytic gradient.


@functools.cache
def _compiled(from_logits, has_pw, exact):
    """(values, gradients) compiled by XLA: TensorFlow runs each operation as a kernel of its
    own otherwise (the float64 corrections are ~150 of them). float64 values carry the
    double-double corrections (TensorFlow's log and exp are up to 2 ulp off)."""
    from . import elementwise, fast

    xp = namespace()

    def values(y, x, pw=None):
        if not exact:
            return fast.values(xp, y, x, pw, from_logits=from_logits)[0]
        if from_logits:
            return fast.exact_logits(xp, y, x, pw)
        return elementwise.bce_probabilities(xp, y, x, pw, accurate=True)

    def gradients(g, y, x, pw=None):
        terms = fast.values(xp, y, x, pw, from_logits=from_logits)[1]
        grad_x = fast.gradient(xp, y, x, pw, terms, from_logits=from_logits)
        grad_y, grad_pw = fast.label_gradients(xp, y, x, pw, terms, from_logits=from_logits)
        return [g * grad_y, g * grad_x] + ([g * grad_pw] if has_pw else [])

    if not has_pw:
        values_, gradients_ = values, gradients
        values = lambda y, x: values_(y, x)  # noqa: E731 (a fixed signature for tf.function)
        gradients = lambda g, y, x: gradients_(g, y, x)  # noqa: E731
    # (Not reduce_retracing: a relaxed signature of unknown rank breaks the ensure_shape barriers.)
    compile_ = functools.partial(tf.function, jit_compile=True)
    return compile_(values), compile_(gradients)


def binary_losses(y, x, pw, *, from_logits, exact):
    """Per-element losses in the working dtype of ``x`` (labels and pos_weight already in it)."""
    values, gradients = _compiled(from_logits, pw is not None, exact)

    def forward(*arguments):
        def backward(g):
            return gradients(g, *arguments)

        return values(*arguments), backward

    arguments = (y, x) if pw is None else (y, x, pw)
    return tf.custom_gradient(forward)(*arguments)
