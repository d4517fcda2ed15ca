"""PyTorch adapter: drop-in replacements for ``torch.nn.BCELoss`` and ``torch.nn.BCEWithLogitsLoss``.

Same constructor signatures and ``forward(input, target)`` order, same meaning of ``weight``
(a rescaling weight broadcast to the input; ``"mean"`` averages the weighted losses over all
elements, as PyTorch does), ``pos_weight`` and ``reduction``. The values are logloss's exact
ones: no clamping of ``log`` at -100 and no vanishing gradients. Importing this module imports
``torch``; ``import logloss`` does not.

    import logloss.torch
    criterion = logloss.torch.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
    loss = criterion(model(x), y)   # then loss.backward() as usual

``validate=False`` (keyword-only) skips the value checks and the warning, the only steps that
read values back to the host; under ``torch.compile`` they are skipped anyway.
``BinaryCrossEntropy`` is a streaming metric (a ``torchmetrics.Metric`` when torchmetrics is
installed).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ._binary import binary_cross_entropy
from ._core.checks import InfiniteLossWarning
from ._core.compensated import pairwise_two_sum

__all__ = ["BCELoss", "BCEWithLogitsLoss", "BinaryCrossEntropy"]

_WAY_OUT = (
    " With logloss.torch.BCELoss, a probability that rounded to exactly 0 or 1 (float32 "
    "sigmoid(-104) is already 0) gives an infinite loss and a NaN gradient: pass the logits to "
    "logloss.torch.BCEWithLogitsLoss instead (exact and finite for every logit), or bound the "
    "loss with BCELoss(clip=1e-7)."
)


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    # PyTorch's own translation of the deprecated arguments (it warns, as torch.nn does).
    return nn._reduction.legacy_get_string(size_average, reduce)


def _loss(target, input, *, from_logits, weight, pos_weight, reduction, clip=None, validate=True):
    if from_logits or not validate or torch.compiler.is_compiling():
        return _plain(target, input, from_logits, weight, pos_weight, reduction, clip, validate)
    # BCELoss: its InfiniteLossWarning also says how to get out (logits, or clip).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _plain(target, input, from_logits, weight, pos_weight, reduction, clip, validate)
    for warning in caught:
        message = warning.message
        if issubclass(warning.category, InfiniteLossWarning):
            message = InfiniteLossWarning(str(message) + _WAY_OUT)
        warnings.warn(message, stacklevel=4)
    return result


def _plain(target, input, from_logits, weight, pos_weight, reduction, clip, validate):
    if weight is None:
        return binary_cross_entropy(
            target, input, from_logits=from_logits, pos_weight=pos_weight, reduction=reduction, clip=clip,
            validate=validate,
        )
    per_element = binary_cross_entropy(
        target, input, from_logits=from_logits, pos_weight=pos_weight, sample_weight=weight,
        reduction="none", clip=clip, validate=validate,
    )
    # PyTorch's weighted "mean" divides by the number of elements, not by the total weight.
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.sum()
    return per_element


class BCELoss(nn.Module):
    """``torch.nn.BCELoss``, exact: ``-[y log p + (1 - y) log(1 - p)]`` without the -100 clamp.

    ``clip`` (keyword-only, off by default) bounds predictions to ``[clip, 1 - clip]`` for
    those who want a finite loss at ``p = 0`` or ``1``; otherwise such a sample's loss is +inf.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", *, clip=None,
                 validate: bool = True):
        super().__init__()
        self.register_buffer("weight", weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)
        self.clip = clip
        self.validate = validate

    def forward(self, input, target):
        return _loss(target, input, from_logits=False, weight=self.weight, pos_weight=None,
                     reduction=self.reduction, clip=self.clip, validate=self.validate)


class BCEWithLogitsLoss(nn.Module):
    """``torch.nn.BCEWithLogitsLoss``, exact for every float logit (±inf included).

    ``pos_weight`` multiplies the positive term and broadcasts against the last (class) axis,
    as in PyTorch.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None,
                 *, validate: bool = True):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)
        self.validate = validate

    def forward(self, input, target):
        return _loss(target, input, from_logits=True, weight=self.weight, pos_weight=self.pos_weight,
                     reduction=self.reduction, validate=self.validate)


# ---------------------------------------------------------------------------------------------
# The streaming metric: the same pieces with and without torchmetrics.


def _batch_state(preds, target, weight, *, from_logits, pos_weight, label_smoothing, validate):
    """[loss hi, loss lo, weight hi, weight lo] of one batch, float64, on the batch's device."""
    preds = preds if isinstance(preds, torch.Tensor) else torch.as_tensor(preds)
    target = torch.as_tensor(target, device=preds.device)
    weight = None if weight is None else torch.as_tensor(weight, device=preds.device).to(torch.float64)
    # Per-element weighted losses in float64 (each within 1 ulp there), whatever the input dtype.
    # The weight goes through the function: applied here by hand, it skipped the function's
    # check (a negative weight gave a plausible wrong mean, a wrong shape torch's expand error)
    # and a zero-weighted infinite loss warned although it counts for nothing.
    losses = binary_cross_entropy(
        target, preds.to(torch.float64), from_logits=from_logits, pos_weight=pos_weight,
        label_smoothing=label_smoothing, sample_weight=weight, reduction="none", validate=validate,
    ).reshape(-1)
    weights = torch.ones_like(losses) if weight is None else torch.broadcast_to(weight, target.shape).reshape(-1)
    return torch.stack([*pairwise_two_sum(losses), *pairwise_two_sum(weights)])


def _merge(states):
    """One [hi, lo, hi, lo] state from a stack of them (shape (k, 4)), compensated."""
    states = states.reshape(-1, 4)
    loss_hi, loss_error = pairwise_two_sum(states[:, 0])
    weight_hi, weight_error = pairwise_two_sum(states[:, 2])
    return torch.stack([loss_hi, loss_error + states[:, 1].sum(), weight_hi, weight_error + states[:, 3].sum()])


def _value(state):
    loss_hi, loss_lo, weight_hi, weight_lo = state.unbind()
    # Past an infinite loss the compensation is NaN (inf - inf): the loss is the infinite hi.
    loss = torch.where(torch.isfinite(loss_hi), loss_hi + loss_lo, loss_hi)
    return loss / (weight_hi + weight_lo)


class _Streaming:
    """update / compute / reset over a float64 state kept on the device."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def _options(self, from_logits, pos_weight, label_smoothing, validate):
        self.from_logits = from_logits
        self.pos_weight = pos_weight
        self.label_smoothing = label_smoothing
        self.validate = validate

    def _batch(self, preds, target, weight):
        return _batch_state(preds, target, weight, from_logits=self.from_logits, pos_weight=self.pos_weight,
                            label_smoothing=self.label_smoothing, validate=self.validate)


try:
    import torchmetrics
except ImportError:  # pragma: no cover - CI installs torchmetrics
    torchmetrics = None


if torchmetrics is not None:

    class BinaryCrossEntropy(_Streaming, torchmetrics.Metric):
        """Streaming exact log loss, a ``torchmetrics.Metric``: the weighted mean of the
        per-element losses over everything seen since ``reset``.

        The state is one float64 tensor ``[loss hi, loss lo, weight hi, weight lo]`` on the
        metric's device: each batch is summed pairwise with every rounding error kept (TwoSum)
        and merged the same way, across processes too (``dist_reduce_fx`` merges the gathered
        states), so the result is the exact mean rounded about once. No host read-back in
        ``update`` with ``validate=False``.
        """

        def __init__(self, *, from_logits: bool = False, pos_weight=None, label_smoothing: float = 0.0,
                     validate: bool = True, **kwargs):
            super().__init__(**kwargs)
            self._options(from_logits, pos_weight, label_smoothing, validate)
            self.add_state("state", default=torch.zeros(4, dtype=torch.float64), dist_reduce_fx=_merge)

        def update(self, preds, target, weight=None) -> None:
            self.state = _merge(torch.stack([self.state, self._batch(preds, target, weight).to(self.state.device)]))

        def compute(self):
            return _value(self.state)

else:  # pragma: no cover - the same metric without torchmetrics

    class BinaryCrossEntropy(_Streaming, nn.Module):
        """Streaming exact log loss (see the torchmetrics version); ``compute`` merges the states
        of every process when ``torch.distributed`` is initialized."""

        def __init__(self, *, from_logits: bool = False, pos_weight=None, label_smoothing: float = 0.0,
                     validate: bool = True):
            super().__init__()
            self._options(from_logits, pos_weight, label_smoothing, validate)
            self.register_buffer("state", torch.zeros(4, dtype=torch.float64))

        def update(self, preds, target, weight=None) -> None:
            self.state = _merge(torch.stack([self.state, self._batch(preds, target, weight).to(self.state.device)]))

        def forward(self, preds, target, weight=None):
            self.update(preds, target, weight)
            return _value(self._batch(preds, target, weight))

        def compute(self):
            state = self.state
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                gathered = [torch.zeros_like(state) for _ in range(torch.distributed.get_world_size())]
                torch.distributed.all_gather(gathered, state)
                state = _merge(torch.stack(gathered))
            return _value(state)

        def reset(self) -> None:
            self.state = torch.zeros_like(self.state)
