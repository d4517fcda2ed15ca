"""The training-step path: per-element loss and its analytic derivatives in few operations.

Shared by the PyTorch, JAX and TensorFlow modules, which wrap it in their own custom-gradient
mechanism (``torch.autograd.Function``, ``jax.custom_jvp``, ``tf.custom_gradient``), so autodiff
never traces the formulas below: ``where`` needs no safe-value twin ("double where") here.

Precision (measured against mpmath and the NumPy path, see tests/array_api/test_fast.py):
float32 is computed in float64 by the plain formulas and rounded once, which is within 1 ulp of
the exact value (relative error a few float64 eps, 2^-29 of a float32 ulp). float64 values come
from ``elementwise`` (exact combination of the two terms; double-double log/exp where the
library's own are not accurate enough), see ``float64_values``.
"""

from __future__ import annotations

from .._core import compensated
from .._core.precision import clip_bounds
from . import doubledouble, elementwise
from .namespace import barrier_for, stop_gradient


def logit_terms(xp, z):
    """(|z|, e^-|z|, log1p(e^-|z|)): everything both terms and the gradient need, one exp, one log1p."""
    a = xp.abs(z)
    # -|z| as a where: differentiating the gradient (nested tapes) took d|z|/dz = 0 at z = 0.
    e = xp.exp(xp.where(z >= 0, -z, z))
    return a, e, xp.log1p(e)


def loss_logits(xp, y, z, pw, a, shared):
    # -log sigmoid(z) = relu(-z) + log1p(e^-|z|) and -log sigmoid(-z) = relu(z) + log1p(e^-|z|):
    # the loss is c * shared + t * |z| with c = (1 - y) + pw*y, t = 1 - y (z >= 0) or pw*y (z < 0),
    # a sum of two non-negative terms (no cancellation).
    zero = xp.zeros_like(z)
    positive = z >= 0
    one_minus_y = 1 - y
    weighted_y = y if pw is None else pw * y
    t = xp.where(positive, one_minus_y, weighted_y)
    linear = xp.where(t == 0, zero, t * a)  # an absent term is 0 even at |z| = inf
    if pw is None:
        return shared + linear
    return (one_minus_y + weighted_y) * shared + linear


def grad_logits(xp, y, z, pw, e):
    """(1 - y) sigmoid(z) - pw y sigmoid(-z), each sigmoid from e = e^-|z| without cancellation."""
    r = 1 / (1 + e)
    small = e * r  # sigmoid(-|z|)
    positive = z >= 0
    sigmoid_z = xp.where(positive, r, small)
    sigmoid_minus_z = xp.where(positive, small, r)
    weighted_y = y if pw is None else pw * y
    return (1 - y) * sigmoid_z - weighted_y * sigmoid_minus_z


def label_terms_logits(xp, z, a, shared):
    """(-log sigmoid(z), -log sigmoid(-z)): the derivatives with respect to pw*y and 1 - y."""
    zero = xp.zeros_like(z)
    return xp.where(z < 0, a, zero) + shared, xp.where(z > 0, a, zero) + shared


def probability_terms(xp, p):
    """(log p, log(1 - p))."""
    return xp.log(p), xp.log1p(-p)


def loss_probabilities(xp, y, pw, log_p, log_q):
    zero = xp.zeros_like(log_p)
    weighted_y = y if pw is None else pw * y
    # 0 * log 0 = 0: an absent term is exactly 0.
    positive = xp.where(y == 0, zero, weighted_y * log_p)
    negative = xp.where(y == 1, zero, (1 - y) * log_q)
    return -(positive + negative)


def grad_probabilities(xp, y, p, pw):
    zero = xp.zeros_like(p)
    one = xp.ones_like(p)
    weighted_y = y if pw is None else pw * y
    positive = xp.where(y == 0, zero, weighted_y / xp.where(y == 0, one, p))
    negative = xp.where(y == 1, zero, (1 - y) / xp.where(y == 1, one, 1 - p))
    return negative - positive


def label_terms_probabilities(xp, log_p, log_q):
    """The derivatives with respect to pw*y and 1 - y: -log p and -log(1 - p)."""
    return -log_p, -log_q


def values(xp, y, x, pw, *, from_logits):
    """(per-element loss, terms the backward pass reuses) in the working dtype, plain formulas."""
    if from_logits:
        a, e, shared = logit_terms(xp, x)
        return loss_logits(xp, y, x, pw, a, shared), (a, e, shared)
    log_p, log_q = probability_terms(xp, x)
    return loss_probabilities(xp, y, pw, log_p, log_q), (log_p, log_q)


def gradient(xp, y, x, pw, terms, *, from_logits):
    if from_logits:
        return grad_logits(xp, y, x, pw, terms[1])
    return grad_probabilities(xp, y, x, pw)


def label_gradients(xp, y, x, pw, terms, *, from_logits):
    """(d loss / d y, d loss / d pw or None)."""
    if from_logits:
        positive, negative = label_terms_logits(xp, x, terms[0], terms[2])
    else:
        positive, negative = label_terms_probabilities(xp, *terms)
    d_y = (positive if pw is None else pw * positive) - negative
    return d_y, None if pw is None else y * positive


def exact_logits(xp, y, z, pw):
    """float64 loss from logits rounded once: log1p(e^-|z|) as a double-double (one
    ``doubledouble.exp`` and one ``log1p``, shared by both terms), each term relu(-+z) + it kept as
    hi + lo, and the two terms combined exactly (``elementwise.combine``). Values only: the
    callers' custom gradients never differentiate this."""
    zero = xp.zeros_like(z)
    fence = barrier_for(xp)
    a = xp.abs(z)
    u, u_lo = doubledouble.exp(xp, -a)
    shared, shared_lo = doubledouble.log1p(xp, u, u_lo)
    terms = []
    for relu in (xp.where(z < 0, a, zero), xp.where(z > 0, a, zero)):  # -log sigmoid(z), -log sigmoid(-z)
        hi, lo = compensated.two_sum(relu, shared, fence)
        # (At |z| = inf the error term is NaN; combine takes the plain formula there.)
        terms.extend((hi, lo + shared_lo))
    positive, positive_lo, negative, negative_lo = terms
    return elementwise.combine(xp, y, positive, negative, pw, y != 0, y != 1, positive_lo, negative_lo)


def smoothing_correction(xp, label_lo, y, x, pw, *, from_logits, clip=None):
    """label_lo · d(loss)/d(label) = label_lo · (pw·(-log σ(z)) + log σ(-z)) (or with log p, log(1 - p)):
    what the loss at hi + lo adds to the loss at hi, to first order (|lo| ≤ 2^-53 |hi|, so the
    second order is far below an ulp). Values only (no gradient); 0 where the loss is infinite.
    ``clip``: a clipped sample's slope is that of its clipped terms (those at x were up to 1e308
    at a huge logit: a loss thousands of ulp off, or negative)."""
    x = stop_gradient(xp, x)
    if clip is not None:
        if from_logits:
            limit = clip_bounds(clip)[4]
            low, high = x < limit, x > -limit
        else:
            low, high = elementwise.probability_clip(xp, x, clip)
        # A safe x for the clipped samples (p = 0 would warn of log 0 on NumPy-backed libraries).
        x = xp.where(low | high, xp.zeros_like(x) + (0.0 if from_logits else 0.5), x)
    if from_logits:
        a, _, shared = logit_terms(xp, x)
        positive, negative = label_terms_logits(xp, x, a, shared)
    else:
        log_p, log_q = probability_terms(xp, x)
        positive, negative = -log_p, -log_q
    if clip is not None:
        positive, negative, _, _ = elementwise.clipped(xp, clip, low, high, positive, negative,
                                                       None, None, False)
    slope = (positive if pw is None else stop_gradient(xp, pw) * positive) - negative
    finite = xp.isfinite(slope)
    return xp.where(finite, label_lo * xp.where(finite, slope, xp.zeros_like(slope)), xp.zeros_like(slope))
