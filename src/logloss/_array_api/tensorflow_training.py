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


# ---------------------------------------------------------------------------------------------
# A whole float32 mean or sum without options as one custom gradient: TensorFlow would otherwise
# run the float64 casts and the reduction as kernels of their own, each a pass over the data.


def _log1p_unit(e):
    """log(1 + e) for 0 <= e <= 1 in float64 within 1 ulp, from + - * / only (kernels.c's
    log1p_unit: fdlibm's polynomial in s = f / (2 + f)): XLA's own float64 log1p and log are
    several times slower on CPU than its exp, since they do not vectorize."""
    big = e > 0.41421356237309503  # sqrt(2) - 1: then 1 + e = 2 (1 + f), f = (e - 1) / 2
    zero = tf.zeros_like(e)
    d = e - 1.0
    f = tf.where(big, d * 0.5, e)
    c = tf.where(big, (e - (d + 1.0)) * 0.5, zero)  # the rounding of e - 1, halved
    k = tf.where(big, zero + 1.0, zero)
    h = 0.5 * f * f
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s4 * (3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01))
    t2 = s2 * (6.666666666666735130e-01 + s4 * (2.857142874366239149e-01
               + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)))
    tail = s * (h + (t2 + t1))
    small = tail + (k * 1.90821492927058770002e-10 + c * (1.0 - f + f * f))
    return k * 6.93147180369123816490e-01 - ((h - small) - f)


@functools.cache
def _reduced(from_logits, mean):
    """(value, gradient with respect to the predictions, gradient with respect to the labels),
    each one XLA computation from the inputs as given: losses in float64 by the plain formulas
    (within a few float64 ulps, non-negative), their float64 sum rounded once to the output."""
    from . import fast

    xp = namespace()

    def prepared(y, x):
        return tf.cast(y, tf.float64), tf.cast(x, tf.float64), tf.cast(tf.size(x), tf.float64)

    def value(y, x):
        yw, xw, n = prepared(y, x)
        if from_logits:
            a = tf.abs(xw)
            # (1 - y)|z| (z > 0) or y|z| (z <= 0), plus log1p(e^-|z|): two non-negative terms
            factor = tf.where(xw > 0, 1 - yw, yw)
            finite = factor * a + _log1p_unit(tf.exp(-a))
            # |z| = inf: the linear term alone, 0 where its factor is 0 (0 * inf would be NaN)
            losses = tf.where(tf.math.is_inf(a), tf.where(factor == 0, tf.zeros_like(a), a), finite)
        else:
            losses = fast.values(xp, yw, xw, None, from_logits=False)[0]
        # Rows of 1024 summed, then the rows' sums: about 2000 roundings per term at most, not n.
        flat = tf.reshape(losses, [-1])
        rows = tf.reshape(tf.pad(flat, [[0, (-tf.size(flat)) % 1024]]), [-1, 1024])
        total = tf.reduce_sum(tf.reduce_sum(rows, axis=1))
        return tf.cast(total / n if mean else total, x.dtype)

    def grad_x(g, y, x):
        yw, xw, n = prepared(y, x)
        terms = fast.values(xp, yw, xw, None, from_logits=from_logits)[1]
        scale = tf.cast(g, tf.float64) / n if mean else tf.cast(g, tf.float64)
        return tf.cast(fast.gradient(xp, yw, xw, None, terms, from_logits=from_logits) * scale, x.dtype)

    def grad_y(g, y, x):
        yw, xw, n = prepared(y, x)
        terms = fast.values(xp, yw, xw, None, from_logits=from_logits)[1]
        scale = tf.cast(g, tf.float64) / n if mean else tf.cast(g, tf.float64)
        return tf.cast(fast.label_gradients(xp, yw, xw, None, terms, from_logits=from_logits)[0] * scale, y.dtype)

    compile_ = functools.partial(tf.function, jit_compile=True)
    return compile_(value), compile_(grad_x), compile_(grad_y)


def binary_reduction(y, x, *, from_logits, mean):
    """The mean (or sum) loss of float32 predictions, or float64 logits, ``x`` and real labels
    ``y`` (both as given, not cast), a scalar of ``x``'s dtype. A sum of non-negative terms each
    within a few float64 ulps is within a few ulps itself: float64 needs no per-element
    double-double here. The two gradients are separate computations: in a tf.function
    the one nobody asks for (usually the labels') is pruned."""
    value, grad_x, grad_y = _reduced(from_logits, mean)

    @tf.custom_gradient
    def forward(y_, x_):
        def backward(g):
            return (grad_y(g, y_, x_) if y_.dtype.is_floating else None), grad_x(g, y_, x_)

        return value(y_, x_), backward

    @tf.custom_gradient
    def forward_x(x_):
        return value(y, x_), lambda g: grad_x(g, y, x_)

    # Eagerly nothing is pruned: labels no tape watches are left out of the gradient, and with
    # no tape at all (inference) the custom gradient's own overhead is skipped. Not while tracing:
    # a tape outside the tf.function is not seen there, and value's own ops differentiated give
    # NaN where the loss is 0 (p = 1 with y = 1).
    if not tf.executing_eagerly() or _watched(y):
        return forward(y, x)
    return forward_x(x) if _watched(x) else value(y, x)


def _watched(tensor) -> bool:
    """Whether a gradient tape records this tensor (True when that cannot be told)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - older TensorFlow
        return True
    if not isinstance(tensor, tf.Tensor):  # a tf.Variable: always watched
        return True
    return bool(record.should_record_backprop([tensor]))


@functools.cache
def _check(from_logits):
    """One XLA computation: whether labels and predictions are valid (NaN fails every test).

    Elementwise tests, all reduced: XLA's reduce_min and reduce_max skip NaN, so a NaN label
    beside valid ones passed a min/max test and the loss came back NaN instead of the error."""

    def ok(y, x):
        yw, xw = tf.cast(y, tf.float64), tf.cast(x, tf.float64)
        inside = (yw >= 0) & (yw <= 1)
        inside = inside & ~tf.math.is_nan(xw) if from_logits else inside & (xw >= 0) & (xw <= 1)
        return tf.reduce_all(inside)

    return tf.function(ok, jit_compile=True)


def whole_reduction(y, x, *, from_logits, mean, validate):
    """``binary_reduction`` for TensorFlow tensors of one known shape (float32 predictions, or
    float64 logits; real labels), with the value checks as one more XLA call and one read-back
    (with the infinity test) when eager; None for anything else, for invalid values and for an
    infinite result: the generic path then raises or warns, with the same messages as everywhere."""
    # (A tf.Variable is not a tf.Tensor: it takes the generic path, which reads it first.)
    if not (isinstance(y, tf.Tensor) and isinstance(x, tf.Tensor)) or not (
            x.dtype == tf.float32 or (from_logits and x.dtype == tf.float64)):
        return None
    if not (y.dtype.is_floating or y.dtype.is_integer or y.dtype.is_bool):
        return None
    if not x.shape.is_fully_defined() or x.shape != y.shape or x.shape.num_elements() == 0:
        return None
    result = binary_reduction(y, x, from_logits=from_logits, mean=mean)
    if validate and tf.executing_eagerly():
        # one read-back for both (an invalid input's result is discarded)
        if not bool(_check(from_logits)(y, x) & ~tf.math.is_inf(result)):
            return None
    return result
