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
    for begin in range(start, stop, _CHUNK):
        end = min(begin + _CHUNK, stop)
        xc = x[begin:end]
        if from_logits:
            near = not (xc.min() >= -LOGIT_BAND and xc.max() <= LOGIT_BAND)
        else:
            near = not (xc.min() >= BAND and xc.max() <= 1 - UPPER_BAND)
        mask = None
        if near:
            mask = (np.abs(xc) > LOGIT_BAND) if from_logits else ((xc < BAND) | (xc > 1 - UPPER_BAND))
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


def _times(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    # A zero-weight row counts for nothing, as in binary_cross_entropy, even where its loss is
    # infinite (inf * 0 would make every total NaN).
    with np.errstate(invalid="ignore"):
        return np.where(weight == 0, 0.0, values * weight)


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

    def update(self, y_true, y_pred, sample_weight=None) -> CompareState:
        y = np.asarray(y_true)
        x = np.asarray(y_pred)
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
        weighted_exact = exact if wb is None else _times(exact, wb)
        band_exact = float(np.sum(weighted_exact))
        if math.isfinite(batch_loss):
            self.outside.add(batch_loss - band_exact)
        else:  # every infinite row is in the band: sum the others directly
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
        return self

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
        return self.total_weight_sum.value

    def merge(self, other: CompareState) -> CompareState:
        if self.from_logits != other.from_logits or [c.name for c in self.columns] != [
                c.name for c in other.columns]:
            raise ValueError("Cannot merge comparisons of different inputs (from_logits) or "
                             "different conventions.")
        self.count += other.count
        self.total_weight_sum.merge(other.total_weight_sum)
        self.exact_sum.merge(other.exact_sum)
        self.infinite += other.infinite
        self.outside.merge(other.outside)
        self.band_rows += other.band_rows
        self.soft |= other.soft
        for name, sums in other.sums.items():
            mine = self.sums[name]
            mine.band.merge(sums.band)
            mine.change.merge(sums.change)
            mine.changed += sums.changed
        return self

    def rows(self) -> list[dict]:
        """One dict per convention, the exact value first; see ``logloss.compare``."""
        if self.count == 0:
            raise ValueError("Nothing to compare: no sample was given.")
        n = self.count
        total_weight = self.total_weight
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
            divisor = float(n) if column.normalization == "count" else total_weight
            exact_c = column.scale * exact_total / divisor
            if note is not None:
                rows.append({"convention": column.name, "value": None, "exact": exact_c,
                             "difference": None, "relative_difference": None,
                             "rows_changed": None, "total_change": None,
                             "normalization": column.normalization, "units": _units(column),
                             "note": note})
                continue
            sums = self.sums[column.name]
            value = (column.scale * self.outside.value + sums.band.value) / divisor
            difference = value - exact_c
            if math.isinf(exact_c):
                relative = -1.0 if math.isfinite(value) else 0.0
                difference = -math.inf if math.isfinite(value) else 0.0
            else:
                relative = difference / exact_c if exact_c else (0.0 if difference == 0 else math.inf)
            rows.append({"convention": column.name, "value": value, "exact": exact_c,
                         "difference": difference, "relative_difference": relative,
                         "rows_changed": sums.changed, "total_change": sums.change.value,
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
        for name, saved in state["sums"].items():
            self.sums[name] = _Sums(CompensatedSum(*map(float, saved["band"])),
                                    CompensatedSum(*map(float, saved["change"])),
                                    int(saved["changed"]))
        return self


def _units(column: Column) -> str:
    return "bits" if column.scale != 1.0 else "nats"
