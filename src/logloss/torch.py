"""PyTorch adapter: drop-in replacements for ``torch.nn.BCELoss`` and ``torch.nn.BCEWithLogitsLoss``.

Same constructor signatures and ``forward(input, target)`` order, same meaning of ``weight``
(a rescaling weight broadcast to the input; ``"mean"`` averages the weighted losses over all
elements, as PyTorch does), ``pos_weight`` and ``reduction``. The values are logloss's exact
ones: no clamping of ``log`` at -100 and no vanishing gradients. Importing this module imports
``torch``; ``import logloss`` does not.

    import logloss.torch
    criterion = logloss.torch.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
    loss = criterion(model(x), y)   # then loss.backward() as usual
"""

from __future__ import annotations

from torch import nn

from ._binary import binary_cross_entropy

__all__ = ["BCELoss", "BCEWithLogitsLoss"]


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    # PyTorch's own translation of the deprecated arguments (it warns, as torch.nn does).
    return nn._reduction.legacy_get_string(size_average, reduce)


def _loss(target, input, *, from_logits, weight, pos_weight, reduction, clip=None):
    if weight is None:
        return binary_cross_entropy(
            target, input, from_logits=from_logits, pos_weight=pos_weight, reduction=reduction, clip=clip
        )
    per_element = binary_cross_entropy(
        target, input, from_logits=from_logits, pos_weight=pos_weight, sample_weight=weight,
        reduction="none", clip=clip,
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

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", *, clip=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)
        self.clip = clip

    def forward(self, input, target):
        return _loss(target, input, from_logits=False, weight=self.weight, pos_weight=None,
                     reduction=self.reduction, clip=self.clip)


class BCEWithLogitsLoss(nn.Module):
    """``torch.nn.BCEWithLogitsLoss``, exact for every float logit (±inf included).

    ``pos_weight`` multiplies the positive term and broadcasts against the last (class) axis,
    as in PyTorch.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def forward(self, input, target):
        return _loss(target, input, from_logits=True, weight=self.weight, pos_weight=self.pos_weight,
                     reduction=self.reduction)
