"""PyTorch: binary cross-entropy as one ``torch.autograd.Function`` with the analytic backward.

Imported only when a torch tensor comes in. Written in plain torch operations (no
``array_api_compat``, no Python work per element), so ``torch.compile(..., fullgraph=True)``
captures it whole: values are read back to the host only for the checks and the
``InfiniteLossWarning``, once per call, and never with ``validate=False`` or while compiling.

Forward: float32 (and float16/bfloat16, in float32) by the plain formulas of ``fast.py`` in the
wider dtype, rounded once; float64 by ``elementwise`` (the two terms combined exactly), which
measures within 1 ulp on PyTorch without double-double log/exp (its log, log1p and exp are
within 1 ulp: tests/array_api/test_fast.py). The gradient is computed with the loss (it reuses
e^-|z|) when autograd will need it; backward is then one multiply. A second derivative
(``create_graph=True``) recomputes the gradient with differentiable operations.

Eager CPU calls without options take a shorter way when the public layer passes ``kernel`` (the
NumPy engine's one-pass loss and gradient, which this engine may not import): zero-copy NumPy
views of the tensors, one C pass, the gradient saved for the backward (``_KernelLoss``). Whatever
the kernel declines comes back here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._core.checks import (
    check_clip,
    check_real_array,
    check_nonempty,
    check_pos_weight,
    check_probability_scalar,
    check_reduction,
    check_same_shape,
    check_sample_weight,
    check_total_weight,
)
from .._core import derivatives
from .._core.inputs import prepare_binary
from .._core.reduction import normalize_axis, warn_if_infinite
from . import elementwise, fast


def _xp():
    """The array-API namespace of torch, for the double-double code shared with every library."""
    import array_api_compat.torch

    return array_api_compat.torch


def _to_numpy(value):
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    return (value.float() if value.dtype == torch.bfloat16 else value).numpy()


def _work_dtype(dtype, device):
    """(output dtype, working dtype)."""
    wide = torch.float32 if device.type == "mps" else torch.float64
    if not dtype.is_floating_point:
        return wide, wide
    if dtype == torch.float64:
        return dtype, dtype
    if dtype == torch.float32:
        return dtype, wide
    return dtype, torch.float32


def _tensor(value, name, like):
    if value is None or isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        check_real_array(name, array)
    return torch.as_tensor(array, device=like.device)


def _check_real(name, value):
    if value.dtype.is_complex:
        raise TypeError(
            f"`{name}` must be an array of real numbers (bool, int or float). "
            f"Received dtype {str(value.dtype).rpartition('.')[2]}. Take the real part or the magnitude first."
        )


def _logits(x, work):
    """(z, log1p(e^-|z|)) in the working dtype: -log sigmoid(+-z) = relu(-+z) + log1p(e^-|z|),
    one exp and one log1p for both terms (PyTorch's softplus costs two of each on CPU)."""
    z = x.to(work)
    if x.dtype != work:
        # Only +-inf lies beyond: it becomes a finite stand-in so that an absent term (0 * inf)
        # is 0 without a guard (_elementwise makes its loss inf again). Beyond every finite
        # input: bfloat16, widened to float32, reaches 3.39e38 (a cap of 1e30 cut its losses).
        big = 1e300 if work == torch.float64 else torch.finfo(torch.float32).max
        z = torch.clamp(z, -big, big)
    return z, torch.log1p(torch.exp(-torch.abs(z)))


_CHUNK = 1 << 16  # elements per block on CPU: the float64 temporaries stay in cache


def _elementwise(y, x, pw, from_logits, exact, need_x, need_labels, work):
    """(losses, d/dx, d/dy, d/dpw) for one block, all in the working dtype (the backward pass
    rounds each gradient to its input's dtype once, after the chain rule's product).

    ``exact``: "double-double" (float64: log and exp carried as double-doubles, the terms combined
    exactly), "hard" (float64, labels 0 or 1 by their dtype, no pos_weight: the loss is one
    library value, -log p, -log(1 - p) or softplus, within 1 ulp on CPU), "narrow labels"
    (computed wider than the result, labels narrower than the working dtype, no pos_weight) or
    None (computed wider than the result)."""
    y = y.to(work)
    weighted_y = y if pw is None else pw * y
    grad_x = positive = negative = None
    if from_logits:
        z, shared = _logits(x, work)
        if exact == "double-double":
            losses = fast.exact_logits(_xp(), y, z, pw)
        elif exact == "narrow labels":
            # y*relu(-z) + (1 - y)*relu(z) = relu(z) - y*z, and y*z is exact here (both factors
            # are narrower than half the working precision), so this rounds once. (log1p(e^-|z|)
            # is added last: relu(z) + it would round it away before y*z cancels.)
            losses = torch.addcmul(torch.relu(z), y, z, value=-1).add_(shared)
        else:
            positive, negative = torch.relu(-z).add_(shared), torch.relu(z).add_(shared)
            if exact == "hard":
                losses = torch.where(y != 0, positive, negative)
            else:
                # pw*y*(-log sigmoid(z)) + (1 - y)*(-log sigmoid(-z)): two non-negative terms.
                losses = torch.addcmul(weighted_y * positive, 1 - y, negative)
        if x.dtype != work:
            # An infinite logit's loss is 0 or +inf, not the stand-in's finite one: a sum or mean
            # of it rounded to a finite value in bfloat16, and nothing warned in any dtype.
            losses = torch.where(torch.isinf(x) & (losses != 0), math.inf, losses)
        if need_x:
            grad_x = torch.addcmul((1 - y) * torch.sigmoid(z), weighted_y, torch.sigmoid(-z), value=-1)
        if need_labels and positive is None:
            positive, negative = torch.relu(-z).add_(shared), torch.relu(z).add_(shared)
    else:
        p = x.to(work)
        if exact == "double-double":
            losses = elementwise.bce_probabilities(_xp(), y, p, pw, accurate=True)
        elif exact == "hard":
            losses = torch.where(y != 0, -torch.log(p), -torch.log1p(-p))
        else:
            losses = fast.loss_probabilities(torch, y, pw, torch.log(p), torch.log1p(-p))
        if need_x:
            grad_x = fast.grad_probabilities(torch, y, p, pw)
        if need_labels:
            positive, negative = -torch.log(p), -torch.log1p(-p)
    grad_y = grad_pw = None
    if need_labels:
        grad_y = (positive if pw is None else pw * positive) - negative
        grad_pw = None if pw is None else y * positive
    return losses, grad_x, grad_y, grad_pw


def _blocks(n, device):
    if device.type != "cpu" or n <= 2 * _CHUNK or torch.compiler.is_compiling():
        return [slice(0, n)]
    return [slice(start, min(start + _CHUNK, n)) for start in range(0, n, _CHUNK)]


class _Loss(torch.autograd.Function):
    """The per-element losses (``total=False``) or their sum (``total=True``) in the working
    dtype, from labels already in it and predictions in any float dtype; the gradient comes back
    in the predictions' dtype. On CPU, large inputs go block by block: each float64 temporary
    then stays in cache instead of being a fresh allocation of the whole size.

    The derivatives are computed with the loss when autograd will ask for them. (The old-style
    forward(ctx, ...): with setup_context, apply() inspects the signature on every call.)"""

    @staticmethod
    def forward(ctx, y, x, pw, from_logits, exact, total, work):
        need_x = ctx.needs_input_grad[1]
        need_labels = ctx.needs_input_grad[0] or ctx.needs_input_grad[2]
        shape = x.shape
        blocks = _blocks(x.numel(), x.device)
        if len(blocks) == 1:
            losses, grad_x, grad_y, grad_pw = _elementwise(y, x, pw, from_logits, exact, need_x, need_labels, work)
            result = torch.sum(losses) if total else losses
        else:
            flat = [None if v is None else v.reshape(-1) for v in (y, x, pw)]
            grad_x = torch.empty(shape, dtype=work, device=x.device) if need_x else None
            grad_y = torch.empty(shape, dtype=work, device=y.device) if need_labels else None
            grad_pw = torch.empty(shape, dtype=work, device=y.device) if need_labels and pw is not None else None
            outputs = [None if g is None else g.view(-1) for g in (grad_x, grad_y, grad_pw)]
            sums = torch.empty(len(blocks), dtype=work, device=y.device) if total else None
            result = sums if total else torch.empty(shape, dtype=work, device=y.device)
            flat_result = None if total else result.view(-1)
            for k, block in enumerate(blocks):
                parts = _elementwise(*(None if v is None else v[block] for v in flat), from_logits, exact,
                                     need_x, need_labels, work)
                if total:
                    sums[k] = torch.sum(parts[0])
                else:
                    flat_result[block] = parts[0]
                for out, part in zip(outputs, parts[1:]):
                    if out is not None:
                        out[block] = part
            if total:
                result = torch.sum(sums)
        ctx.from_logits, ctx.work = from_logits, work
        ctx.save_for_backward(y, x, pw, grad_x, grad_y, grad_pw)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        y, x, pw, grad_x, grad_y, grad_pw = ctx.saved_tensors
        result_x = result_y = result_pw = None
        if ctx.needs_input_grad[1]:
            if torch.is_grad_enabled():
                # create_graph=True: a gradient autograd can differentiate again.
                function = derivatives.grad_logits if ctx.from_logits else derivatives.grad_probabilities
                grad_x = function(torch, y.to(ctx.work), x.to(ctx.work), pw)
            # rounded once: a gradient rounded to x's dtype, times 1/n rounded to it, was up to
            # 1.6 ulp off in float32 and 1.8 in float16
            result_x = (grad_x * grad_output.to(ctx.work)).to(x.dtype)
        if ctx.needs_input_grad[0]:
            result_y = (grad_y * grad_output.to(ctx.work)).to(y.dtype)
        if ctx.needs_input_grad[2]:
            result_pw = (grad_pw * grad_output.to(ctx.work)).to(pw.dtype)
        return result_y, result_x, result_pw, None, None, None, None


def _apply(y, x, pw, from_logits, exact, total, work):
    return _Loss.apply(y, x, pw, from_logits, exact, total, work)


def _weighted(losses, weight):
    if weight is None:
        return losses
    # A zero weight removes the sample even if its loss is +inf (0 * inf would be NaN).
    return torch.where(weight == 0, torch.zeros_like(losses), weight * losses)


class _Declined(Exception):
    """The kernel cannot vouch for this input: the torch path computes or reports it."""


class _KernelLoss(torch.autograd.Function):
    """Loss and gradient from one pass of the caller's kernel over zero-copy NumPy views; the
    backward only scales the saved gradient.

    The saved gradient is handed out by the first backward (it is the caller's then: autograd may
    make it, or a view of it, a leaf's ``.grad`` and accumulate or zero into it), so it is kept
    out of ``save_for_backward`` (whose version check would then refuse a second backward) and a
    second backward (``retain_graph=True``) computes it afresh with the kernel."""

    @staticmethod
    def forward(ctx, x, y, kernel, from_logits, reduction):
        grad = torch.empty_like(x, memory_format=torch.contiguous_format)
        result = _run_kernel(kernel, y, x, grad, from_logits, reduction)
        ctx.from_logits, ctx.reduction, ctx.kernel, ctx.grad = from_logits, reduction, kernel, grad
        ctx.save_for_backward(x, y)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        grad, ctx.grad = ctx.grad, None
        if torch.is_grad_enabled():
            # create_graph=True: a gradient autograd can differentiate again.
            function = derivatives.grad_logits if ctx.from_logits else derivatives.grad_probabilities
            grad = function(torch, y.to(torch.float64), x.to(torch.float64), None)
            grad = (grad / x.numel() if ctx.reduction == "mean" else grad).to(x.dtype)
        elif grad is None:
            # A later backward of a retained graph: the first one gave its gradient away.
            grad = torch.empty_like(x, memory_format=torch.contiguous_format)
            _run_kernel(ctx.kernel, y, x, grad, ctx.from_logits, ctx.reduction)
        if not torch.is_grad_enabled() and grad_output.dim() == 0 and float(grad_output) == 1.0:
            return grad, None, None, None, None  # loss.backward(): the saved gradient as it is
        return grad * grad_output.to(grad.dtype), None, None, None, None


def _run_kernel(kernel, y, x, grad, from_logits, reduction):
    losses = torch.empty_like(x, memory_format=torch.contiguous_format) if reduction == "none" else None
    try:
        total = kernel(y.detach().reshape(-1).numpy(), x.detach().reshape(-1).numpy(), from_logits=from_logits,
                       reduction=reduction, grad=None if grad is None else grad.view(-1).numpy(),
                       losses=None if losses is None else losses.view(-1).numpy())
    except (RuntimeError, TypeError):  # a tensor NumPy cannot view (negative or conjugate bit)
        total = None
    if total is None:
        raise _Declined
    if losses is not None:
        return losses
    result = torch.tensor(total, dtype=x.dtype)
    if not torch.isfinite(result):
        raise _Declined  # a sum past the dtype's range: the torch path's inf, as everywhere
    return result


_KERNEL_LABELS = (torch.float32, torch.float64, torch.float16, torch.bool, torch.uint8, torch.int8, torch.int16,
                  torch.int32, torch.int64)


def _kernel_step(kernel, y, x, from_logits, reduction):
    """The loss through the NumPy engine's kernels (eager CPU, contiguous float32/float64
    predictions, labels needing no gradient), or None."""
    if (x.device.type != "cpu" or y.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64)
            or y.dtype not in _KERNEL_LABELS or y.requires_grad or not x.is_contiguous() or not y.is_contiguous()
            or torch.compiler.is_compiling()):
        return None
    try:
        if x.requires_grad and torch.is_grad_enabled():
            return _KernelLoss.apply(x, y, kernel, from_logits, reduction)
        return _run_kernel(kernel, y, x, None, from_logits, reduction)
    except _Declined:
        return None


def binary_cross_entropy(
    y_true, y_pred, *, from_logits, sample_weight, pos_weight, label_smoothing, reduction, axis, clip,
    validate=True, kernel=None,
):
    reduction = check_reduction(reduction)
    if (kernel is not None and sample_weight is None and pos_weight is None and not label_smoothing
            and clip is None and axis is None and isinstance(y_pred, torch.Tensor)
            and isinstance(y_true, torch.Tensor) and y_pred.shape == y_true.shape):
        # The training step without options: one pass of the NumPy engine's kernels (passed down
        # by the public layer), loss and gradient together.
        result = _kernel_step(kernel, y_true, y_pred, from_logits, reduction)
        if result is not None:
            return result
    smoothing = check_probability_scalar("label_smoothing", label_smoothing)
    bound = check_clip(clip)
    reference = next(v for v in (y_pred, y_true, sample_weight, pos_weight) if isinstance(v, torch.Tensor))
    x = _tensor(y_pred, "y_pred", reference)
    y = _tensor(y_true, "y_true", reference)
    pw = _tensor(pos_weight, "pos_weight", reference)
    weight = _tensor(sample_weight, "sample_weight", reference)
    _check_real("y_true", y)
    _check_real("y_pred", x)
    shape = tuple(y.shape)
    if shape != tuple(x.shape):
        check_same_shape("y_true", np.empty(shape), "y_pred", np.empty(tuple(x.shape)))
    if reduction == "mean" and math.prod(shape) == 0:
        check_nonempty("y_true", np.empty(shape), reduction)
    for name, value, check in (("pos_weight", pw, check_pos_weight), ("sample_weight", weight, check_sample_weight)):
        if value is None:
            continue
        _check_real(name, value)
        try:
            broadcast = torch.broadcast_shapes(tuple(value.shape), shape)
        except RuntimeError:
            broadcast = None
        if broadcast is None or (name == "sample_weight" and tuple(broadcast) != shape):
            check(np.ones(tuple(value.shape)), shape)
    axes = normalize_axis(axis, len(shape))
    output, work = _work_dtype(x.dtype, x.device)
    if y.dtype == torch.float64 and work == torch.float32 and x.device.type != "mps":
        # float64 labels beside half-precision predictions: a label 1 - 1e-9 became 1 in float32,
        # and its loss (1 - y) z at z = 1e4 (or inf) became 0
        work = torch.float64
    # Floating labels are widened block by block inside the Function (a whole float64 copy is an
    # allocation that page-faults); the others now.
    yw = y if y.dtype.is_floating_point and not smoothing else y.to(work)
    # (The predictions are widened inside the Function, so their gradient comes back in their dtype.)
    xw = x if x.dtype.is_floating_point else x.to(work)
    pww = None if pw is None else pw.to(work)
    ww = None if weight is None else weight.to(work)
    check = validate and not torch.compiler.is_compiling()
    summary = _summary(yw, xw, pww, ww, from_logits, work) if check else None

    label_lo = None
    if smoothing:
        # float64: the rounded smoothed label's error too (elementwise.smoothed_labels).
        yw, label_lo = elementwise.smoothed_labels(_xp(), yw, smoothing, work == torch.float64)
    if bound is not None:
        xw = xw.to(work)
        if from_logits:
            limit = math.log(bound) - math.log1p(-bound)
            xw = torch.clamp(xw, limit, -limit)
        else:
            xw = torch.clamp(xw, bound, 1 - bound)
    if pww is not None:
        pww = torch.broadcast_to(pww, shape)
    correction = None if label_lo is None else fast.smoothing_correction(
        _xp(), label_lo, yw, xw.to(work), pww, from_logits=from_logits)
    arguments = (y_true, y_pred, sample_weight, pos_weight, from_logits, label_smoothing, clip)
    exact = None
    if work.itemsize > output.itemsize and pw is None and not smoothing and y.dtype.itemsize < work.itemsize:
        exact = "narrow labels"
    if output == torch.float64:
        # float64 needs the double-double corrections unless every label is 0 or 1 and there is
        # no pos_weight: then each loss is one library value (softplus, -log p, -log(1 - p)),
        # measured within 1 ulp on CPU. Known from the dtype, or read back with the checks (eagerly
        # on CPU, where a read-back costs nothing; never while compiling or with validate=False).
        exact = "double-double"
        if pw is None and not smoothing and x.device.type == "cpu":
            if not y.dtype.is_floating_point:
                exact = "hard"
            if check and y.dtype.is_floating_point:
                if not _values_ok(torch.stack(summary).tolist(), arguments):
                    _raise_for_values(arguments)
                if torch.equal(yw, torch.round(yw)):
                    exact = "hard"
    if reduction != "none" and axes is None and ww is None:
        # The training step: the sum comes out of the Function, the gradient is one multiply.
        result = _apply(yw, xw, pww, from_logits, exact, True, work)
        if correction is not None:
            result = result + torch.sum(correction)
        if reduction == "mean":
            result = result / math.prod(shape)
        def per_element():
            with torch.no_grad():
                return _elementwise(yw, xw, pww, from_logits, exact, False, False, work)[0]

        return _finish(result, per_element, summary, check, reduction, None, axes, output, arguments)
    if ww is not None:
        # A zero weight removes the sample even at an infinite loss; its prediction becomes a safe
        # one ("double where"), or the gradient was 0 * inf = NaN through _weighted's where.
        xw = torch.where(torch.broadcast_to(ww, shape) == 0, 0.0 if from_logits else 0.5, xw)
    losses = _apply(yw, xw, pww, from_logits, exact, False, work)
    if correction is not None:
        losses = losses + correction
    weighted = _weighted(losses, None if ww is None else torch.broadcast_to(ww, shape))
    total_weight = None
    if reduction == "none":
        result = weighted
    else:
        dims = tuple(range(len(shape))) if axes is None else axes
        result = torch.sum(weighted, dim=dims) if dims else weighted
        if reduction == "mean":
            if ww is None:
                result = result / math.prod([shape[d] for d in dims])
            else:
                total_weight = torch.sum(torch.broadcast_to(ww, shape), dim=dims) if dims else torch.broadcast_to(ww, shape)
                if check:
                    summary.append(torch.amin(total_weight).to(work))
                result = result / total_weight
    return _finish(result, weighted, summary, check, reduction, total_weight, axes, output, arguments)


def _finish(result, weighted, summary, check, reduction, total_weight, axes, output, arguments):
    if check:
        # One read-back for every check and the warning: NaN, out-of-range values, zero total
        # weight, an infinite result.
        values = torch.stack([*summary, torch.sum(result.detach())]).tolist()
        if not _values_ok(values[:-1], arguments):
            _raise_for_values(arguments)
            if total_weight is not None:
                check_total_weight(_to_numpy(total_weight), axes is not None)
        if math.isinf(values[-1]) or (math.isnan(values[-1]) and bool(torch.any(torch.isinf(result)))):
            if callable(weighted):  # a full reduction: the per-element losses, for the count
                weighted = weighted()
            warn_if_infinite(_to_numpy(weighted.detach()), _to_numpy(result.detach()), stacklevel=5)
    return result.to(output)


def _raise_for_values(arguments):
    """The NumPy path's error for these arguments, on host copies (nothing if they are valid)."""
    y_true, y_pred, sample_weight, pos_weight, from_logits, label_smoothing, clip = arguments
    prepare_binary(
        _to_numpy(y_true), _to_numpy(y_pred), from_logits=from_logits,
        sample_weight=_to_numpy(sample_weight), pos_weight=_to_numpy(pos_weight),
        label_smoothing=label_smoothing, clip=clip,
    )


def _summary(y, x, pw, weight, from_logits, work):
    """0-d tensors (on the device, in the working dtype) that say whether the values are valid;
    see ``_values_ok``."""
    empty = y.new_zeros((), dtype=work)
    low_y, high_y = torch.aminmax(y) if y.numel() else (empty, empty)
    # Logits: NaN somewhere makes the sum NaN (+inf and -inf together too: then the exact check
    # on the host decides).
    if not x.numel():
        x_terms = [empty, empty]
    elif from_logits:
        x_terms = [torch.sum(x).to(work), empty]
    else:
        x_terms = [t.to(work) for t in torch.aminmax(x)]
    summary = [low_y.to(work), high_y.to(work), *x_terms]
    for value in (pw, weight):
        if value is not None:
            summary.extend(torch.aminmax(value) if value.numel() else (empty + 1, empty + 1))
    return summary


def _values_ok(values, arguments):
    """The host side of ``_summary`` (any NaN fails every comparison)."""
    from_logits, has_pw = arguments[4], arguments[3] is not None
    low_y, high_y, a, b, *rest = values
    ok = low_y >= 0 and high_y <= 1
    ok = ok and (not math.isnan(a) if from_logits else (a >= 0 and b <= 1))
    for k, (low, high) in enumerate(zip(rest[0::2], rest[1::2])):
        ok = ok and (low > 0 if k == 0 and has_pw else low >= 0) and high < math.inf
    if len(rest) % 2:
        ok = ok and rest[-1] > 0  # the smallest total weight of a weighted mean
    return ok
