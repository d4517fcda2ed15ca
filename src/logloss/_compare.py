"""The state behind ``logloss.compare``: one pass over the data feeds every convention.

Conventions (``logloss.conventions``) differ from the exact loss only where they act: on
confident predictions (``p`` within ``BAND`` of 0 or ``UPPER_BAND`` of 1, logits beyond
``LOGIT_BAND``) and,
for the frameworks that binarise labels, on soft labels. Everywhere else each convention's
loss is the exact loss up to its own rounding (float32 rows: 6e-8 relative), so
``CompareState`` sums the exact loss over all rows (the fast exact path of
:class:`~logloss.Accumulator`), finds the band rows with two comparisons per row, and computes
every convention only on those, subtracting the exact loss there. A convention's value is then
``scale * (exact sum outside the band) + (its own sum over the band)``, normalized its own way.

The conventions are handed in by the caller (``logloss.conventions.compare_state``), so this
module imports no adapter. The state merges like ``Accumulator`` and round-trips through
``to_dict``.

One convention acts on every row: tf.keras 2 adds 1e-7 inside each log, which lowers a row's
loss by log(1 + 1e-7/q) (1e-5 at q = 0.01, 1e-7 at q = 1). Outside the band compare takes the
exact loss for it too, so its value there is high by that much (about 1e-4 relative on typical
data); ``logloss.conventions.tf_keras_legacy`` gives its exact number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._accumulator import batch_statistics
from ._binary import binary_cross_entropy
from ._core.checks import InfiniteLossWarning
from ._core.compensated import CompensatedSum
from ._core.precision import extended_dtype
from ._numpy import chunked
from ._numpy import elementwise as ew

BAND = 1e-6  # probabilities this close to 0 are where the conventions act
# ... and this close to 1: XGBoost rounds float64 p to float32, which moves log(1 - p) by up to
# 6e-8·p/(1 - p) (6e-5 at 1 - p = 1e-3, unbiased); nearer 1 the rows are computed exactly.
UPPER_BAND = 1e-3
LOGIT_BAND = math.log((1 - BAND) / BAND)  # |z| beyond logit(1 - BAND)
# PyTorch computes float32 logits in float32: BCELoss rounds 1 - sigmoid(z), BCEWithLogitsLoss
# cancels z - log_sigmoid(z), both by up to 6e-8/sigmoid(-|z|) relative (0.4% at |z| = 13):
# for float32 (or narrower) logits the band starts where UPPER_BAND does, at |z| = 6.9.
NARROW_LOGIT_BAND = math.log((1 - UPPER_BAND) / UPPER_BAND)
CHANGED = 1e-6  # a row is "changed" when it moved by more than this times max(1, exact loss)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Column:
    """One convention as the state needs it."""

    name: str
    elementwise: Callable  # (y, x, from_logits) -> unweighted per-element losses
    normalization: str  # "weight" or "count"
    scale: float = 1.0  # the convention's unit per nat (1/ln 2 for bits)
    available: bool = True
    note: str | None = None  # why it is not available
    hard_labels_only: bool = False
    float32_weights: bool = False  # weights held as float (XGBoost, LightGBM, CatBoost)


@dataclass
class _Sums:
    band: CompensatedSum = field(default_factory=CompensatedSum)  # sum of w*l_c on band rows
    change: CompensatedSum = field(default_factory=CompensatedSum)  # of w*(l_c - exact) changed
    changed: int = 0


def _band_range(y, x, from_logits: bool, start: int, stop: int) -> tuple[list, bool]:
    found = []
    soft_any = False
    hard_labels = y.dtype.kind in "biu"
    limit = LOGIT_BAND if x.dtype.itemsize >= 8 else NARROW_LOGIT_BAND
    for begin in range(start, stop, _CHUNK):
        end = min(begin + _CHUNK, stop)
        xc = x[begin:end]
        if from_logits:
            near = not (xc.min() >= -limit and xc.max() <= limit)
        else:
            near = not (xc.min() >= BAND and xc.max() <= 1 - UPPER_BAND)
        mask = None
        if near:
            mask = (np.abs(xc) > limit) if from_logits else ((xc < BAND) | (xc > 1 - UPPER_BAND))
        if not hard_labels:
            yc = y[begin:end]
            soft = yc != (yc > 0.5)  # neither 0 nor 1
            if soft.any():
                soft_any = True
                mask = soft if mask is None else (mask | soft)
        if mask is not None:
            found.append(np.flatnonzero(mask) + begin)
    return found, soft_any


def _band_indices(y: np.ndarray, x: np.ndarray, from_logits: bool) -> tuple[np.ndarray, bool]:
    """Flat indices of the rows where some convention may act, and whether labels were soft.

    Chunks of the arrays go to the engine's threads (NumPy releases the GIL in these loops)."""
    parts = chunked.run_in_ranges(_band_range, x.size, _CHUNK, y, x, from_logits)
    found = [index for part, _ in parts for index in part]
    soft_any = any(soft for _, soft in parts)
    if not found:
        return np.empty(0, dtype=np.intp), soft_any
    return np.concatenate(found), soft_any


class CompareState:
    """Exact sums plus each convention's correction on the rows where it acts.

    ``update(y_true, y_pred, sample_weight=None)`` per batch, ``merge`` across workers,
    ``rows()`` for the numbers. Inputs are checked as :func:`logloss.binary_cross_entropy`
    checks them (the exact accumulator does it, with the same messages).
    """

    def __init__(self, columns: list[Column], *, from_logits: bool = False):
        self.columns = list(columns)
        self.from_logits = from_logits
        self.count = 0
        self.total_weight_sum = CompensatedSum()
        self.exact_sum = CompensatedSum()
        self.infinite = 0
        self.outside = CompensatedSum()  # exact sum of w*l over the rows outside the band
        self.band_rows = 0
        self.soft = False
        self.sums = {c.name: _Sums() for c in self.columns}
        # The weighted sums are in units of 2**scale (as in Statistics): weights of 1e308 or
        # 5e-324 are summed over 2**scale, so their total neither overflows nor goes subnormal.
        self.scale = 0

    def update(self, y_true, y_pred, sample_weight=None) -> CompareState:
        sample_weight, shift = _scaled_weights(sample_weight)
        batch = CompareState(self.columns, from_logits=self.from_logits)
        batch.scale = shift
        batch._add(np.asarray(y_true), np.asarray(y_pred), sample_weight)
        return self.merge(batch)

    def _add(self, y, x, sample_weight) -> None:
        weight = None if sample_weight is None else np.asarray(sample_weight)
        sums = chunked.loss_sums(y, x, from_logits=self.from_logits, sample_weight=weight)
        if sums is None:  # the reference path: every check and message, infinities included
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InfiniteLossWarning)
                batch = batch_statistics(y, x, sample_weight, from_logits=self.from_logits)
            batch_loss, batch_weight, batch_infinite = (batch.value("loss"), batch.value("weight"),
                                                        batch.infinite)
        else:
            (batch_loss, batch_weight), batch_infinite = sums, 0
        w = None if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, dtype=np.float64), y.shape).ravel()
        yf, xf = y.ravel(), x.ravel()
        index, soft = _band_indices(yf, xf, self.from_logits)
        self.soft |= soft
        yb, xb = yf[index], xf[index]
        wb = None if w is None else w[index]
        # The exact losses of the band rows (already checked), by the reference formulas in
        # extended precision: these rows alone may look like swapped arguments, the batch did not.
        work = extended_dtype()
        formula = ew.bce_from_logits if self.from_logits else ew.bce_from_probabilities
        with np.errstate(all="ignore"):
            exact = formula(np, yb.astype(work), xb.astype(work)).astype(np.float64)
            # (a sum past float64 is refused by merge, without an infinite row)
            band_exact = float(np.sum(exact if wb is None else _times(exact, wb)))
            outside = batch_loss - band_exact
        # When the band holds nearly all of the loss (a logit of -1e20 carries 1e20), the
        # difference is only the rounding of the band's sum: the other rows are summed directly
        # then (as when the band holds infinite rows), at most 10 bits lost otherwise.
        if math.isfinite(outside) and abs(outside) * 1024 >= abs(batch_loss):
            self.outside.add(outside)
        else:
            keep = np.ones(xf.size, dtype=bool)
            keep[index] = False
            self.outside.add(float(binary_cross_entropy(
                yf[keep], xf[keep], from_logits=self.from_logits, reduction="sum",
                sample_weight=None if w is None else w[keep]).astype(np.float64)))
        self.count += int(y.size)
        self.total_weight_sum.add(batch_weight)
        self.exact_sum.add(batch_loss)
        self.infinite += batch_infinite
        self.band_rows += int(index.size)
        for column in self.columns:
            if not column.available or (column.hard_labels_only and soft):
                continue
            self._add_column(column, yb, xb, wb, exact)

    def _add_column(self, column: Column, yb, xb, wb, exact) -> None:
        with np.errstate(all="ignore"):
            losses = np.asarray(column.elementwise(yb, xb, self.from_logits), dtype=np.float64)
            if wb is not None and column.float32_weights:
                wb = wb.astype(np.float32).astype(np.float64)
            weighted = losses if wb is None else losses * wb
            target = column.scale * exact
            moved = losses - target
            infinite = np.isinf(losses) | np.isinf(target)
            changed = np.where(infinite, losses != target,
                               np.abs(moved) > CHANGED * np.maximum(1.0, np.abs(target)))
            sums = self.sums[column.name]
            sums.band.add(float(np.sum(weighted)))
            sums.changed += int(np.count_nonzero(changed))
            delta = moved[changed] if wb is None else _times(moved, wb)[changed]
            sums.change.add(float(np.sum(delta)))

    @property
    def total_weight(self) -> float:
        return _unscaled(self.total_weight_sum.value, self.scale)

    def merge(self, other: CompareState) -> CompareState:
        """Fold ``other`` in; unchanged (OverflowError) when the exact loss sum would leave the
        float64 range without an infinite row, as ``Accumulator`` refuses it."""
        if self.from_logits != other.from_logits or [c.name for c in self.columns] != [
                c.name for c in other.columns]:
            raise ValueError("Cannot merge comparisons of different inputs (from_logits) or "
                             "different conventions.")
        # The larger scale wins; a state without weight has no say (its sums are all 0).
        scales = [s.scale for s in (self, other) if s.total_weight_sum.hi > 0]
        scale = max(scales) if scales else 0

        def merged(mine: CompensatedSum, theirs: CompensatedSum) -> CompensatedSum:
            total = _rescaled(mine, self.scale - scale)
            total.merge(_rescaled(theirs, other.scale - scale))
            return total

        exact_sum = merged(self.exact_sum, other.exact_sum)
        if math.isinf(exact_sum.hi) and not self.infinite + other.infinite:
            raise OverflowError(
                "The total loss (weighted) exceeds the float64 range (~1.8e308) that the "
                "streaming state holds, even scaled by the largest weight. Compare fewer "
                "samples, or smaller losses.")
        self.exact_sum = exact_sum
        self.total_weight_sum = merged(self.total_weight_sum, other.total_weight_sum)
        self.outside = merged(self.outside, other.outside)
        for name, sums in other.sums.items():
            mine = self.sums[name]
            mine.band = merged(mine.band, sums.band)
            mine.change = merged(mine.change, sums.change)
            mine.changed += sums.changed
        self.scale = scale
        self.count += other.count
        self.infinite += other.infinite
        self.band_rows += other.band_rows
        self.soft |= other.soft
        return self

    def rows(self) -> list[dict]:
        """One dict per convention, the exact value first; see ``logloss.compare``."""
        if self.count == 0:
            raise ValueError("Nothing to compare: no sample was given.")
        n = self.count
        total_weight = self.total_weight_sum.value
        if not total_weight > 0:
            raise ValueError("The total `sample_weight` is zero, so the weighted mean is undefined.")
        exact_total = self.exact_sum.value
        exact_mean = exact_total / total_weight
        rows = [{"convention": "exact", "value": exact_mean, "exact": exact_mean,
                 "difference": 0.0, "relative_difference": 0.0, "rows_changed": 0,
                 "total_change": 0.0, "normalization": "weight", "units": "nats", "note": None}]
        for column in self.columns:
            note = column.note if not column.available else (
                "takes class labels; these labels are soft" if column.hard_labels_only and self.soft
                else None)
            # Over the count the sums' unit 2**scale stays; over the weight it cancels.
            count = column.normalization == "count"
            divisor = float(n) if count else total_weight
            unit = self.scale if count else 0
            exact_c = _unscaled(column.scale * exact_total / divisor, unit)
            if note is not None:
                rows.append({"convention": column.name, "value": None, "exact": exact_c,
                             "difference": None, "relative_difference": None,
                             "rows_changed": None, "total_change": None,
                             "normalization": column.normalization, "units": _units(column),
                             "note": note})
                continue
            sums = self.sums[column.name]
            value = _unscaled((column.scale * self.outside.value + sums.band.value) / divisor,
                              unit)
            difference = value - exact_c
            if math.isinf(exact_c):
                relative = -1.0 if math.isfinite(value) else 0.0
                difference = -math.inf if math.isfinite(value) else 0.0
            else:
                relative = difference / exact_c if exact_c else (0.0 if difference == 0 else math.inf)
            rows.append({"convention": column.name, "value": value, "exact": exact_c,
                         "difference": difference, "relative_difference": relative,
                         "rows_changed": sums.changed,
                         "total_change": _unscaled(sums.change.value, self.scale),
                         "normalization": column.normalization, "units": _units(column),
                         "note": None})
        return rows

    def to_dict(self) -> dict:
        return {
            "from_logits": self.from_logits,
            "conventions": [c.name for c in self.columns],
            "count": self.count,
            "total_weight": [self.total_weight_sum.hi, self.total_weight_sum.lo],
            "exact_sum": [self.exact_sum.hi, self.exact_sum.lo],
            "infinite": self.infinite,
            "outside": [self.outside.hi, self.outside.lo],
            "band_rows": self.band_rows,
            "soft": self.soft,
            "scale": self.scale,
            "sums": {name: {"band": [s.band.hi, s.band.lo], "change": [s.change.hi, s.change.lo],
                            "changed": s.changed} for name, s in self.sums.items()},
        }

    def load(self, state: dict) -> CompareState:
        """Restore ``to_dict``'s state into this (fresh) state of the same conventions."""
        if state["conventions"] != [c.name for c in self.columns] or \
                state["from_logits"] != self.from_logits:
            raise ValueError("The saved comparison has other conventions or from_logits.")
        self.count = int(state["count"])
        self.total_weight_sum = CompensatedSum(*map(float, state["total_weight"]))
        self.exact_sum = CompensatedSum(*map(float, state["exact_sum"]))
        self.infinite = int(state["infinite"])
        self.outside = CompensatedSum(*map(float, state["outside"]))
        self.band_rows = int(state["band_rows"])
        self.soft = bool(state["soft"])
        self.scale = int(state.get("scale", 0))  # states saved before it was kept: 0
        for name, saved in state["sums"].items():
            self.sums[name] = _Sums(CompensatedSum(*map(float, saved["band"])),
                                    CompensatedSum(*map(float, saved["change"])),
                                    int(saved["changed"]))
        return self


# Weights whose largest is within 2**±500 are summed as they are (no overflow or subnormal
# products with losses below ~1e150); beyond, over a power of two that is exact.
_WEIGHT_EXPONENTS = 500


def _scaled_weights(sample_weight) -> tuple[object, int]:
    """(weights / 2**shift, shift) with the largest weight in [0.5, 1) when it is beyond
    2**±500; weights that the checks will refuse go through unchanged (their messages quote
    them)."""
    if sample_weight is None:
        return None, 0
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf" or w.size == 0:
        return sample_weight, 0
    with np.errstate(invalid="ignore"):
        top = float(np.max(w))
    shift = math.frexp(top)[1] if 0 < top < math.inf else 0
    # (the minimum only then: one pass over ordinary weights)
    if abs(shift) <= _WEIGHT_EXPONENTS or not float(np.min(w)) >= 0:
        return sample_weight, 0
    return np.ldexp(w.astype(np.float64), -shift), shift


def _rescaled(total: CompensatedSum, shift: int) -> CompensatedSum:
    """``total * 2**shift`` (shift <= 0): exact but for what falls below float64's range."""
    if not shift or not math.isfinite(total.hi):
        return CompensatedSum(total.hi, total.lo)
    return CompensatedSum(math.ldexp(total.hi, shift), math.ldexp(total.lo, shift))


def _unscaled(value: float, scale: int) -> float:
    """``value * 2**scale``, inf where that leaves float64's range."""
    if not scale or not math.isfinite(value):
        return value
    try:
        return math.ldexp(value, scale)
    except OverflowError:
        return math.copysign(math.inf, value)


def _times(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """values * weights, where a zero weight removes its row even at an infinite value (0, not
    0 * inf = NaN), as the exact loss does."""
    with np.errstate(invalid="ignore"):
        return np.where(weights == 0, 0.0, values * weights)


def _units(column: Column) -> str:
    return "bits" if column.scale != 1.0 else "nats"
