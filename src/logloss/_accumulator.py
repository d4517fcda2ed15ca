"""The streaming contract: one batch -> its sufficient statistics (``batch_statistics``), and the
mergeable state built on it (``Accumulator``), shared by batches, files and workers."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._array_api.namespace import is_foreign, to_numpy
from ._core.checks import InfiniteLossWarning, check_flag, infinite_loss_message, is_masked
from ._core.compensated import CompensatedSum, two_product
from ._core.derivatives import sigmoid
from ._core.locks import ForkSafeLock
from ._core.inputs import prepare_binary
from ._core.reduction import apply_weight
from ._core.statistics import SUMS, Statistics
from ._numpy import chunked, summation
from ._numpy.reference import binary_losses


def _probabilities(x: np.ndarray, from_logits: bool) -> np.ndarray:
    return sigmoid(np, np.asarray(x, dtype=np.float64)) if from_logits else x


def batch_statistics(
    y_true,
    y_pred,
    sample_weight=None,
    *,
    from_logits: bool = False,
    pos_weight=None,
    label_smoothing: float = 0.0,
) -> Statistics:
    """The sufficient statistics of one batch: what ``Accumulator.update`` adds, and what each
    file, group or partition contributes before the states are merged.

    Arrays of any library are accepted (copied to the host, detached from autodiff). Every
    argument is checked as :func:`logloss.binary_cross_entropy` checks it, with the same messages.
    """
    if is_foreign(y_true, y_pred, sample_weight):
        y_true, y_pred, sample_weight = map(to_numpy, (y_true, y_pred, sample_weight))
    if pos_weight is None and label_smoothing == 0:
        fast = fast_batch_statistics(y_true, y_pred, sample_weight, from_logits=from_logits)
        if fast is not None:
            return fast
    inputs = prepare_binary(
        y_true,
        y_pred,
        from_logits=from_logits,
        sample_weight=sample_weight,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
        hard_probabilities_exact=True,
        summed=True,
    )
    losses = binary_losses(inputs)
    weight = inputs.sample_weight
    labels = inputs.y
    predictions = _probabilities(inputs.x, inputs.from_logits)
    # Exact sums in units of 2**scale, near the largest weight's exponent: weights of 1e-320 or
    # 1e300 lose nothing, and a total beyond float64 is refused by Statistics.merge.
    scale = summation.scale_of(weight, losses)
    sums = {name: summation.scaled_sum(values, weight, scale)
            for name, values in (("loss", losses), ("label", labels), ("prediction", predictions))}
    sums["weight"] = (float(labels.size), 0.0) if weight is None else summation.scaled_sum(weight, None, scale)
    infinite = int(np.count_nonzero(np.isinf(apply_weight(np, losses, weight))))
    return Statistics.from_sums(int(labels.size), float(np.sum(labels, dtype=np.float64)), infinite, sums, scale)


def fast_batch_statistics(y_true, y_pred, sample_weight=None, *, from_logits: bool = False) -> Statistics | None:
    """:func:`batch_statistics` on the fast path, or None when it cannot vouch for the batch (bad
    values, an infinite loss, small or unusual input): it never raises for a bad value, so a
    caller with its own checks (the CLI, which names or skips bad rows) runs them only then."""
    if any(is_masked(v) for v in (y_true, y_pred, sample_weight)):
        return None  # np.asarray below would drop the mask: the general path's checks refuse it
    y, x = np.asarray(y_true), np.asarray(y_pred)
    w = None if sample_weight is None else np.asarray(sample_weight)
    if chunked.compiled_kernels() is not None:  # one pass: checks, loss, weights, labels, predictions
        sums = chunked.statistics_sums(y, x, from_logits=from_logits, sample_weight=w)
        if sums is not None:
            if w is None:
                positives = sums[2]
            elif y.dtype.kind in "biu":  # validated 0/1: a count
                positives = float(np.count_nonzero(y))
            else:
                positives = float(np.sum(y, dtype=np.float64))
            stats = Statistics(count=int(y.size), positives=positives)
            for name, value in zip(("loss", "weight", "label", "prediction"), sums):
                stats.sums[name].add(value)
            return stats
    if sample_weight is None and not from_logits:
        sums = chunked.hard_label_sums(y, x)  # one pass: checks, loss, labels, predictions
        if sums is not None:
            loss, positives, prediction = sums
            return Statistics.from_sums(int(y.size), positives, 0, dict(
                loss=loss, weight=float(y.size), label=positives, prediction=prediction))
    sums = chunked.loss_sums(y, x, from_logits=from_logits, sample_weight=w)
    if sums is None:
        return None
    return _add_label_and_prediction_sums(Statistics(), sums, y, x, w, from_logits)


class GroupedStatistics:
    """Per-group sufficient statistics of many batches, kept as arrays indexed by group number:
    the numbers stay the same across batches (the caller's encoder), so a batch is one pass of
    the compiled grouped kernel and a few vectorized TwoSums into the same rows, with no work
    per key. Each sum is a compensated pair (hi, lo) from the kernel's per-sample compensation
    to the end, as :class:`Statistics` keeps it."""

    def __init__(self) -> None:
        self.hi = np.zeros((0, 4))  # loss, weight, weighted label, weighted prediction
        self.lo = np.zeros((0, 4))
        self.counts = np.zeros((0, 3))  # count, infinite, positives (exact in float64 below 2**53)

    @staticmethod
    def ready() -> bool:
        """Whether the compiled kernels are there to take batches."""
        return chunked.compiled_kernels() is not None

    def add_batch(self, y_true, y_pred, sample_weight, codes, groups: int, *, from_logits: bool = False) -> bool:
        """Add a batch whose sample i belongs to group ``codes[i]`` (int32 or int64, in
        [0, groups)). False, adding nothing, when the kernels are not built or cannot vouch for
        the batch (bad values: the caller checks it the general way)."""
        pairs = chunked.grouped_pairs(y_true, y_pred, sample_weight, codes, groups, from_logits=from_logits)
        if pairs is None:
            return False
        b, b_lo, counts = pairs
        if groups > len(self.hi):
            grow = max(groups, 2 * len(self.hi)) - len(self.hi)
            self.hi, self.lo, self.counts = (np.concatenate([a, np.zeros((grow, a.shape[1]))])
                                             for a in (self.hi, self.lo, self.counts))
        step = chunked.GROUP_SLICE  # a slice of groups at a time: temporaries stay in cache
        for start in range(0, groups, step):
            rows = slice(start, min(start + step, groups))
            a, b_rows = self.hi[rows], b[rows]
            total = a + b_rows
            with np.errstate(invalid="ignore"):  # inf - inf where a loss sum is infinite
                v = total - a
                error = (a - (total - v)) + (b_rows - v)  # TwoSum
            a[...] = total
            self.lo[rows] += np.where(np.isfinite(error), error + b_lo[rows], 0.0)
        self.counts[:groups] += counts
        return True

    def values(self) -> np.ndarray:
        """Each group's four sums as floats (hi + lo; an infinite sum as it is), (groups, 4)."""
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(self.hi), self.hi + self.lo, self.hi)

    def ratio(self, numerator: int, denominator: int) -> np.ndarray:
        """Sum ``numerator`` over sum ``denominator`` for every group, element by element the
        operations of :meth:`Statistics.ratio` (so the same float64 results)."""
        a_hi, a_lo, b_hi, b_lo = (self.hi[:, numerator], self.lo[:, numerator],
                                  self.hi[:, denominator], self.lo[:, denominator])
        values = self.values()
        a, b = values[:, numerator], values[:, denominator]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = a / b
            refine = (q != 0) & (np.maximum(np.maximum(q, a_hi), b_hi) < 2.0**995)
            p, e = two_product(q, b_hi)
            remainder = ((a_hi - p) - e) + a_lo - q * b_lo
            return np.where(refine, q + remainder / b, q)

    def statistics(self, row: int) -> Statistics:
        """Group ``row``'s :class:`Statistics`."""
        count, infinite, positives = self.counts[row].tolist()
        stats = Statistics(count=int(count), positives=positives, infinite=int(infinite))
        for name, hi, lo in zip(SUMS, self.hi[row].tolist(), self.lo[row].tolist()):
            stats.sums[name] = CompensatedSum(hi, lo if math.isfinite(hi) else 0.0)
        return stats


def _add_label_and_prediction_sums(stats, sums, y, x, w, from_logits) -> Statistics:
    loss, weight_total = sums
    predictions = _probabilities(x, from_logits)
    # Unweighted, sum in float64 without a float64 copy of the batch: two fresh
    # input-sized arrays per batch cost as much as the loss itself (page faults).
    if y.dtype.kind in "biu":  # validated 0/1: a count is far cheaper than a float sum
        positives = float(np.count_nonzero(y))
    else:
        positives = float(np.sum(y, dtype=np.float64))
    stats.count = int(y.size)
    stats.positives = positives
    stats.sums["loss"].add(loss)
    stats.sums["weight"].add(weight_total)
    if w is None:
        stats.sums["label"].add(positives)
        stats.sums["prediction"].add(float(np.sum(predictions, dtype=np.float64)))
        return stats
    labels = np.asarray(y, dtype=np.float64)
    weight = np.asarray(w, dtype=np.float64)
    stats.sums["label"].add(float(np.sum(apply_weight(np, labels, weight))))
    stats.sums["prediction"].add(
        float(np.sum(apply_weight(np, np.asarray(predictions, dtype=np.float64), weight)))
    )
    return stats


# Folding a batch's sums into an accumulator reads its sums, adds and writes them back: two
# threads folding into one accumulator at once lost a batch. A few float operations, so one
# lock for every accumulator (nothing to pickle).
_FOLD_LOCK = ForkSafeLock()


@dataclass
class Accumulator:
    """Exact streaming log loss: ``update`` per batch, ``merge`` across workers, ``result`` at the end.

    Holds the :func:`batch_statistics` of everything seen, merged: compensated float64 sums of
    the weighted loss, the weights, the weighted labels and the weighted predictions, and counts
    of samples, positives and infinite losses. The result equals
    :func:`logloss.binary_cross_entropy` on all the data at once (to ~1e-15 relative) however
    the data is split into batches. The state is a few numbers: it pickles and round-trips
    through strict JSON (:meth:`to_dict` / :meth:`from_dict`, which validates it).

    ``from_logits``, ``pos_weight`` and ``label_smoothing`` mean what they mean in
    :func:`logloss.binary_cross_entropy` and are fixed for the accumulator's life.
    """

    from_logits: bool = False
    pos_weight: float | None = None
    label_smoothing: float = 0.0
    statistics: Statistics = field(default_factory=Statistics, repr=False)

    def __post_init__(self) -> None:
        # Checked once here, as from_dict checks a state read back: a setting of the wrong type
        # ("false" for from_logits) would otherwise change every later batch silently.
        self.from_logits = check_flag("from_logits", self.from_logits)
        self.pos_weight, self.label_smoothing = _check_settings(self.pos_weight, self.label_smoothing, "")
        if not isinstance(self.statistics, Statistics):
            raise TypeError(f"`statistics` must be a Statistics. Received {type(self.statistics).__name__}.")

    def update(self, y_true, y_pred, sample_weight=None) -> Accumulator:
        """Add a batch (any shape; labels and predictions of the same shape). Returns self."""
        batch = batch_statistics(
            y_true, y_pred, sample_weight, from_logits=self.from_logits,
            pos_weight=self.pos_weight, label_smoothing=self.label_smoothing,
        )
        with _FOLD_LOCK:
            self.statistics.merge(batch)
        return self

    def merge(self, other: Accumulator) -> Accumulator:
        """Fold another accumulator (same settings) into this one. Returns self."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"`other` must be an Accumulator. Received {type(other).__name__}.")
        if self._settings() != other._settings():
            raise ValueError(
                "Cannot merge accumulators with different settings "
                f"(from_logits, pos_weight, label_smoothing): {self._settings()} and {other._settings()}."
            )
        with _FOLD_LOCK:
            self.statistics.merge(other.statistics)
        return self

    def _settings(self) -> tuple:
        return (self.from_logits, self.pos_weight, self.label_smoothing)

    @property
    def count(self) -> int:
        return self.statistics.count

    @property
    def positives(self) -> float:
        return self.statistics.positives

    @property
    def infinite(self) -> int:
        return self.statistics.infinite

    @property
    def total_loss(self) -> float:
        return self.statistics.value("loss")

    @property
    def total_weight(self) -> float:
        return self.statistics.value("weight")

    def result(self) -> float:
        """The weighted mean loss ``sum(w * L) / sum(w)`` over everything seen."""
        if self.count == 0:
            raise ValueError("The accumulator has seen no samples, so its mean is undefined.")
        if not self.statistics.sums["weight"].value > 0:
            raise ValueError("The total `sample_weight` is zero, so the weighted mean is undefined.")
        if self.infinite:
            warnings.warn(infinite_loss_message(self.infinite, self.count), InfiniteLossWarning, stacklevel=2)
        return self.statistics.ratio("loss", "weight")

    def summary(self) -> dict[str, float | int]:
        """The mean loss with the diagnostics that come from the same sums.

        ``normalized_entropy`` divides the loss by the entropy of the base rate (the loss of
        always predicting the mean label): below 1 means better than that constant.
        ``calibration`` is sum(w*p) / sum(w*y): 1 when predictions are right on average.
        """
        mean_loss = self.result()
        label_total = self.statistics.sums["label"].value
        base_rate = self.statistics.ratio("label", "weight")
        if 0 < base_rate < 1:
            entropy = -(base_rate * math.log(base_rate) + (1 - base_rate) * math.log1p(-base_rate))
            normalized = mean_loss / entropy
        else:
            normalized = math.nan
        return {
            "log_loss": mean_loss,
            "count": self.count,
            "total_weight": self.total_weight,
            "positives": self.positives,
            "base_rate": base_rate,
            "normalized_entropy": normalized,
            "calibration": self.statistics.ratio("prediction", "label") if label_total else math.nan,
            "infinite": self.infinite,
        }

    def to_dict(self) -> dict:
        """A strict-JSON copy of the settings and the state."""
        return {
            "from_logits": self.from_logits,
            "pos_weight": self.pos_weight,
            "label_smoothing": self.label_smoothing,
            **self.statistics.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> Accumulator:
        """The accumulator :meth:`to_dict` wrote; every field is checked, with clear errors."""
        if not isinstance(state, dict):
            raise TypeError(f"`state` must be a dict as written by to_dict(). Received {type(state).__name__}.")
        state = dict(state)
        missing = [name for name in ("from_logits", "pos_weight", "label_smoothing") if name not in state]
        if missing:
            raise ValueError(f"`state` lacks the settings {missing} that to_dict() writes.")
        settings = {name: state.pop(name) for name in ("from_logits", "pos_weight", "label_smoothing")}
        if not isinstance(settings["from_logits"], bool):
            raise TypeError(f"`state['from_logits']` must be a bool. Received {settings['from_logits']!r}.")
        pos_weight, smoothing = _check_settings(settings["pos_weight"], settings["label_smoothing"], "state")
        return cls(settings["from_logits"], pos_weight, smoothing, Statistics.from_dict(state))


def _check_settings(pos_weight, smoothing, where: str) -> tuple[float | None, float]:
    """pos_weight (None or a number > 0) and label_smoothing (in [0, 1]) as floats."""
    def name(key):
        return f"{where}['{key}']" if where else key

    if pos_weight is not None and (isinstance(pos_weight, (bool, np.bool_)) or not isinstance(pos_weight, numbers.Real)
                                   or not (math.isfinite(pos_weight) and pos_weight > 0)):
        raise ValueError(f"`{name('pos_weight')}` must be None or a finite number > 0 (one value for "
                         f"every batch). Received {pos_weight!r}.")
    if (isinstance(smoothing, (bool, np.bool_)) or not isinstance(smoothing, numbers.Real)
            or not 0 <= smoothing <= 1):  # NaN fails too
        raise ValueError(f"`{name('label_smoothing')}` must be a number in [0, 1]. Received {smoothing!r}.")
    return (None if pos_weight is None else float(pos_weight)), float(smoothing)
