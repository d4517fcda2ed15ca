"""A streaming, mergeable log-loss state: the engine shared by batches, files and workers."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields

import numpy as np

from . import _array_api, _fast
from ._binary import _per_element, prepare_binary
from ._reduction import apply_weight
from ._validation import InfiniteLossWarning

_SUMS = ("loss", "weight", "label", "prediction")


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """a + b = s + e exactly (Knuth's TwoSum): the rounding error is kept, not lost."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@dataclass
class _CompensatedSum:
    """A float64 sum carried as hi + lo, so adding millions of batch sums loses nothing."""

    hi: float = 0.0
    lo: float = 0.0

    def add(self, value: float) -> None:
        if not math.isfinite(value) or not math.isfinite(self.hi):
            self.hi += value  # inf stays inf; the compensation is meaningless there
            return
        self.hi, error = _two_sum(self.hi, value)
        self.lo += error

    def merge(self, other: _CompensatedSum) -> None:
        self.add(other.hi)
        self.lo += other.lo

    @property
    def value(self) -> float:
        return self.hi + self.lo if math.isfinite(self.hi) else self.hi


@dataclass
class Accumulator:
    """Exact streaming log loss: ``update`` per batch, ``merge`` across workers, ``result`` at the end.

    Holds compensated float64 sums of the weighted loss, the weights, the weighted labels and
    the weighted predictions, and counts of samples, positives and infinite losses. The
    result equals :func:`logloss.binary_cross_entropy` on all the data at once (to ~1e-15
    relative) however the data is split into batches. The state is a few numbers: it
    pickles and round-trips through JSON (:meth:`to_dict` / :meth:`from_dict`).

    ``from_logits``, ``pos_weight`` and ``label_smoothing`` mean what they mean in
    :func:`logloss.binary_cross_entropy` and are fixed for the accumulator's life.
    """

    from_logits: bool = False
    pos_weight: float | None = None
    label_smoothing: float = 0.0
    count: int = 0
    positives: float = 0.0
    infinite: int = 0
    _sums: dict[str, _CompensatedSum] = field(
        default_factory=lambda: {name: _CompensatedSum() for name in _SUMS}, repr=False
    )

    def update(self, y_true, y_pred, sample_weight=None) -> Accumulator:
        """Add a batch (any shape; labels and predictions of the same shape). Returns self.

        Arrays of any library are accepted; they are copied to the host (the state is a few
        host floats), detached from autodiff.
        """
        if _array_api.is_foreign(y_true, y_pred, sample_weight):
            y_true, y_pred, sample_weight = map(_array_api.to_numpy, (y_true, y_pred, sample_weight))
        if self.pos_weight is None and self.label_smoothing == 0:
            sums = _fast.loss_sums(
                y_true, y_pred, from_logits=self.from_logits, sample_weight=sample_weight
            )
            if sums is not None:  # validated, finite: only the label and prediction sums remain
                return self._add_fast(sums, y_true, y_pred, sample_weight)
        inputs = prepare_binary(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            sample_weight=sample_weight,
            pos_weight=self.pos_weight,
            label_smoothing=self.label_smoothing,
            hard_probabilities_exact=True,
        )
        losses = apply_weight(_per_element(inputs), inputs.sample_weight)
        infinite = np.isinf(losses)
        self.infinite += int(np.count_nonzero(infinite))
        if inputs.from_logits:
            with np.errstate(over="ignore"):
                predictions = 1 / (1 + np.exp(-inputs.x.astype(np.float64)))
        else:
            predictions = inputs.x
        labels = inputs.y
        weight = inputs.sample_weight
        self.count += int(labels.size)
        self.positives += float(np.sum(labels, dtype=np.float64))
        self._sums["loss"].add(float(np.sum(losses)))
        self._sums["weight"].add(float(labels.size if weight is None else np.sum(weight)))
        self._sums["label"].add(float(np.sum(apply_weight(labels, weight))))
        self._sums["prediction"].add(float(np.sum(apply_weight(predictions, weight))))
        return self

    def _add_fast(self, sums, y_true, y_pred, sample_weight) -> Accumulator:
        loss, weight_total = sums
        if self.from_logits:
            with np.errstate(over="ignore"):
                predictions = 1 / (1 + np.exp(-np.asarray(y_pred, dtype=np.float64)))
        else:
            predictions = y_pred
        # Unweighted, sum in float64 without a float64 copy of the batch: two fresh
        # input-sized arrays per batch cost as much as the loss itself (page faults).
        if y_true.dtype.kind in "biu":  # validated 0/1: a count, 10x faster than a float sum
            positives = float(np.count_nonzero(y_true))
        else:
            positives = float(np.sum(y_true, dtype=np.float64))
        self.count += int(y_true.size)
        self.positives += positives
        self._sums["loss"].add(loss)
        self._sums["weight"].add(weight_total)
        if sample_weight is None:
            self._sums["label"].add(positives)
            self._sums["prediction"].add(float(np.sum(predictions, dtype=np.float64)))
            return self
        labels = np.asarray(y_true, dtype=np.float64)
        weight = np.asarray(sample_weight, dtype=np.float64)
        self._sums["label"].add(float(np.sum(apply_weight(labels, weight))))
        self._sums["prediction"].add(
            float(np.sum(apply_weight(np.asarray(predictions, dtype=np.float64), weight)))
        )
        return self

    def _add_checked(self, count: int, loss: float, positives: float, prediction: float) -> None:
        """Add an unweighted batch of probabilities already validated and summed by the caller
        (``_fast.hard_label_sums``): what ``update`` would add, without reading the batch again."""
        self.count += count
        self.positives += positives
        self._sums["loss"].add(loss)
        self._sums["weight"].add(float(count))
        self._sums["label"].add(positives)
        self._sums["prediction"].add(prediction)

    def merge(self, other: Accumulator) -> Accumulator:
        """Fold another accumulator (same settings) into this one. Returns self."""
        mine = (self.from_logits, self.pos_weight, self.label_smoothing)
        theirs = (other.from_logits, other.pos_weight, other.label_smoothing)
        if mine != theirs:
            raise ValueError(
                "Cannot merge accumulators with different settings "
                f"(from_logits, pos_weight, label_smoothing): {mine} and {theirs}."
            )
        self.count += other.count
        self.positives += other.positives
        self.infinite += other.infinite
        for name in _SUMS:
            self._sums[name].merge(other._sums[name])
        return self

    @property
    def total_loss(self) -> float:
        return self._sums["loss"].value

    @property
    def total_weight(self) -> float:
        return self._sums["weight"].value

    def result(self) -> float:
        """The weighted mean loss ``sum(w * L) / sum(w)`` over everything seen."""
        if self.count == 0:
            raise ValueError("The accumulator has seen no samples, so its mean is undefined.")
        if not self.total_weight > 0:
            raise ValueError("The total `sample_weight` is zero, so the weighted mean is undefined.")
        if self.infinite:
            warnings.warn(
                f"{self.infinite} of {self.count} samples have infinite loss: a prediction of "
                "exactly 0 for a positive label or 1 for a negative one. Pass clip= to "
                "binary_cross_entropy to bound them.",
                InfiniteLossWarning,
                stacklevel=2,
            )
        return self.total_loss / self.total_weight

    def summary(self) -> dict[str, float | int]:
        """The mean loss with the diagnostics that come from the same sums.

        ``normalized_entropy`` divides the loss by the entropy of the base rate (the loss of
        always predicting the mean label): below 1 means better than that constant.
        ``calibration`` is sum(w*p) / sum(w*y): 1 when predictions are right on average.
        """
        mean_loss = self.result()
        base_rate = self._sums["label"].value / self.total_weight
        if 0 < base_rate < 1:
            entropy = -(base_rate * math.log(base_rate) + (1 - base_rate) * math.log1p(-base_rate))
            normalized = mean_loss / entropy
        else:
            normalized = math.nan
        label_total = self._sums["label"].value
        return {
            "log_loss": mean_loss,
            "count": self.count,
            "total_weight": self.total_weight,
            "positives": self.positives,
            "base_rate": base_rate,
            "normalized_entropy": normalized,
            "calibration": self._sums["prediction"].value / label_total if label_total else math.nan,
            "infinite": self.infinite,
        }

    def to_dict(self) -> dict:
        """A JSON-serializable copy of the state."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_sums"}
        state["sums"] = {name: [s.hi, s.lo] for name, s in self._sums.items()}
        return state

    @classmethod
    def from_dict(cls, state: dict) -> Accumulator:
        state = dict(state)
        sums = state.pop("sums")
        accumulator = cls(**state)
        for name, (hi, lo) in sums.items():
            accumulator._sums[name] = _CompensatedSum(float(hi), float(lo))
        return accumulator
