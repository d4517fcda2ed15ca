"""JAX: the per-element loss as one ``jax.custom_jvp`` whose tangent is the analytic gradient.

Imported only when a JAX array comes in. Autodiff never traces the forward formulas (nor the
double-double corrections of float64), so ``jax.grad`` costs one fused elementwise pass on top of
the loss, as optax's loss does; forward mode (``jax.jacfwd``, ``jax.jvp``) works too. Values are checked eagerly (one host read-back) unless
``validate=False``; under ``jit`` they cannot be and are not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import elementwise, fast


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _losses(y, x, pw, from_logits, exact):
    return _values(y, x, pw, from_logits, exact)


def _values(y, x, pw, from_logits, exact):
    losses, _ = fast.values(jnp, y, x, pw, from_logits=from_logits)
    if exact:
        # float64: the library's exp and log1p are up to 2 and 128 ulp off; double-doubles.
        if from_logits:
            losses = fast.exact_logits(jnp, y, x, pw)
        else:
            losses = elementwise.bce_probabilities(jnp, y, x, pw, accurate=True)
    return losses


# A custom_jvp, not a custom_vjp: JAX transposes the linear tangent below for reverse mode
# (grad, jacrev) and uses it as it is for forward mode, which a custom_vjp refused outright
# (jax.jacfwd, jax.jvp: "can't apply forward-mode autodiff (jvp) to a custom_vjp function").
# Zero tangents stay symbolic, so a gradient with respect to the predictions alone computes no
# label derivative.
def _jvp(from_logits, exact, primals, tangents):
    y, x, pw = primals
    dy, dx, dpw = tangents
    # The value through _losses itself: a second derivative then meets this rule again, never
    # the double-double corrections.
    losses = _losses(y, x, pw, from_logits, exact)
    terms = fast.values(jnp, y, x, pw, from_logits=from_logits)[1]
    tangent = None
    if not _zero(dx):
        tangent = fast.gradient(jnp, y, x, pw, terms, from_logits=from_logits) * dx
    if not (_zero(dy) and _zero(dpw)):
        grad_y, grad_pw = fast.label_gradients(jnp, y, x, pw, terms, from_logits=from_logits)
        for grad, dt in ((grad_y, dy), (grad_pw, dpw)):
            if not _zero(dt):
                tangent = grad * dt if tangent is None else tangent + grad * dt
    return losses, jnp.zeros_like(losses) if tangent is None else tangent


_losses.defjvp(_jvp, symbolic_zeros=True)


def _zero(tangent):
    return tangent is None or isinstance(tangent, jax.custom_derivatives.SymbolicZero)


def binary_losses(y, x, pw, *, from_logits, exact):
    """Per-element losses in the working dtype of ``x`` (labels and pos_weight already in it)."""
    return _losses(y, x, pw, from_logits, exact)
