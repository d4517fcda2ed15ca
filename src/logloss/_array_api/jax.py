"""JAX: the per-element loss as one ``jax.custom_vjp`` whose backward is the analytic gradient.

Imported only when a JAX array comes in. Autodiff never traces the forward formulas (nor the
double-double corrections of float64), so ``jax.grad`` costs one fused elementwise pass on top of
the loss, as optax's loss does. Values are checked eagerly (one host read-back) unless
``validate=False``; under ``jit`` they cannot be and are not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import elementwise, fast


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _losses(y, x, pw, from_logits, exact):
    return _forward(y, x, pw, from_logits, exact)[0]


def _forward(y, x, pw, from_logits, exact):
    losses, terms = fast.values(jnp, y, x, pw, from_logits=from_logits)
    if exact:
        # float64: the library's exp and log1p are up to 2 and 128 ulp off; double-doubles.
        if from_logits:
            losses = fast.exact_logits(jnp, y, x, pw)
        else:
            losses = elementwise.bce_probabilities(jnp, y, x, pw, accurate=True)
    return losses, (y, x, pw, terms)


def _backward(from_logits, exact, residuals, g):
    y, x, pw, terms = residuals
    grad_x = fast.gradient(jnp, y, x, pw, terms, from_logits=from_logits)
    grad_y, grad_pw = fast.label_gradients(jnp, y, x, pw, terms, from_logits=from_logits)
    return g * grad_y, g * grad_x, None if pw is None else g * grad_pw


_losses.defvjp(_forward, _backward)


def binary_losses(y, x, pw, *, from_logits, exact):
    """Per-element losses in the working dtype of ``x`` (labels and pos_weight already in it)."""
    return _losses(y, x, pw, from_logits, exact)
