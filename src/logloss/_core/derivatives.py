"""The derivatives of binary cross-entropy per element, written once for every array library.

Each ``where`` feeds its unselected branch a safe value ("double where"), so autodiff through
these formulas never meets ``0 * inf``, and a label that is exactly 0 or 1 drops the other term
instead of multiplying it by 0.
"""

from __future__ import annotations


def sigmoid(xp, x):
    # e^x / (1 + e^x) for x < 0 and 1 / (1 + e^-x) otherwise: e^(-|x|) never overflows.
    # -|x| as a where: autodiff takes d|x|/dx = 0 at x = 0, which made the second derivative
    # (create_graph=True) 0 there instead of 1/4.
    e = xp.exp(xp.where(x >= 0, -x, x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def grad_probabilities(xp, y, p, pw=None):
    """dL/dp = -pw*y/p + (1-y)/(1-p)."""
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    weight = y if pw is None else pw * y
    positive = xp.where(y == 0, zero, -weight / xp.where(y == 0, one, p))
    negative = xp.where(y == 1, zero, (1 - y) / (1 - xp.where(y == 1, zero, p)))
    return positive + negative


def hessian_probabilities(xp, y, p, pw=None):
    """d2L/dp2 = pw*y/p^2 + (1-y)/(1-p)^2: a sum of non-negative terms."""
    one, zero = xp.ones_like(p), xp.zeros_like(p)
    weight = y if pw is None else pw * y
    ps = xp.where(y == 0, one, p)
    q = 1 - xp.where(y == 1, zero, p)
    return xp.where(y == 0, zero, weight / (ps * ps)) + xp.where(y == 1, zero, (1 - y) / (q * q))


def grad_logits(xp, y, z, pw=None):
    """dL/dz = (1-y)*sigmoid(z) - pw*y*sigmoid(-z); with pw = 1 this is sigmoid(z) - y."""
    weight = y if pw is None else pw * y
    # Both sigmoids are computed directly, so neither 1 - sigmoid(z) cancels.
    return (1 - y) * sigmoid(xp, z) - weight * sigmoid(xp, -z)


def hessian_logits(xp, y, z, pw=None):
    """d2L/dz2 = (1 - y + pw*y) * sigmoid(z) * sigmoid(-z)."""
    scale = 1 if pw is None else (1 - y) + pw * y
    return scale * (sigmoid(xp, z) * sigmoid(xp, -z))
