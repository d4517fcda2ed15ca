"""Where the loss comes from: a mergeable diagnostics state and exact in-memory diagnostics.

:class:`DiagnosticsState` is the streaming form: ``update`` per batch, ``merge`` across workers,
``result`` at the end, ``to_dict`` / ``from_dict`` through JSON. Its memory does not grow with
the rows: compensated sums, a histogram of predictions (``resolution`` bins uniform in logit over
[-20, 20], plus one bin for each tail), a histogram of losses (50 bins per decade from 1e-16 to
1e4, plus a bin below and one above, per class), the k worst rows, and sums per segment and per
pair of models (only the segments grow, one row of sums each).

:func:`diagnose_numbers` is the in-memory form: the same state, plus what needs the rows
themselves, computed exactly: the CORP decomposition (Dimitriadis, Gneiting & Jordan 2021) with
the isotonic recalibration found by pooling adjacent violators on the sorted unique predictions
(weighted, ties pooled), equal-mass calibration bins and the concentration of the loss.

From the state alone the decomposition is computed on the prediction histogram, and the result
carries a bound: the PAV fit constrained to the histogram bins can only lose loss relative to the
exact one, and the fit on each bin split into its negatives then its positives (the most a fit
could gain from the order of the rows inside a bin) can only win; the two bracket the exact
recalibrated loss. The streamed ECE carries a bound too (``_histogram_ece_bound``).

A batch of flat NumPy arrays goes to the compiled diagnostics kernel where it is built
(``_numpy/kernels/diagnostics.c`` through ``chunked.diagnostics_update``: one pass on all
threads); anything else, and every batch under ``engine="numpy"``, to the NumPy code here, which
fills the same state. Pictures, words and HTML are the report layer's.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import sys
import threading
import warnings
from collections.abc import Mapping

import numpy as np

from ._binary import binary_cross_entropy
from ._core.checks import (
    InfiniteLossWarning,
    as_array,
    check_no_nan,
    check_real_array,
    check_same_shape,
    check_sample_weight,
    check_unit_interval,
    first_index,
    is_masked,
)
from ._core import saved
from ._core.compensated import CompensatedSum
from ._core.locks import ForkSafeLock
from ._numpy import chunked, ordering
from ._numpy.ordering import pool_adjacent_violators

LOGIT_RANGE = 20.0  # the prediction histogram spans logits in [-20, 20]: p from 2e-9 to 1 - 2e-9
LOSS_LOW, LOSS_HIGH, LOSS_PER_DECADE = -16, 4, 50  # loss histogram: 1e-16 .. 1e4, 50 bins a decade
LOSS_BINS = (LOSS_HIGH - LOSS_LOW) * LOSS_PER_DECADE + 2  # + below 1e-16 (zero too) + above 1e4
LOSS_BIN_SLIP = 1e-12  # how far above a bin's upper edge (relative) a loss in it may be

# The largest finite loss each framework can return: it clips or clamps there.
CAPS = {
    "keras": -math.log(1e-7),  # clips p to [1e-7, 1 - 1e-7]: 16.12
    "xgboost_lightgbm": -math.log(1e-15),  # clips p to [1e-15, 1 - 1e-15]: 34.54
    "scikit_learn": -math.log(float(np.finfo(np.float64).eps)),  # clips at float64 eps: 36.04
    "pytorch": 100.0,  # BCELoss clamps log at -100
}
CONCENTRATION_SHARES = (0.001, 0.01, 0.1)
CONFIDENT = -math.log(0.01)  # a confident mistake: the true class given under 1%
Z_95 = 1.959963984540054  # the 97.5% normal quantile

LIMITS = {"k": (0, 10_000), "bins": (1, 1_000), "resolution": (16, 2**18),
          "max_segments": (1, 100_000)}
DEFAULTS = {"k": 10, "bins": 10, "resolution": 1 << 16, "max_segments": 20}

_TOTALS = ("weight", "label", "prediction", "loss", "brier", "loss_positive",
           "loss_negative", "weight_negative", "confident_weight", "confident_loss")
_COUNTS = ("count", "positives", "infinite", "infinite_positive", "confident")
_SEGMENT = ("count", "weight", "label", "prediction", "loss", "brier", "infinite")
# the pair of models' differences d = loss_b - loss_a on rows where both are finite, in shares
# s = w / weight of the row's group: mean = sum s d, then sum s^2, sum s^2 (d - mean) and
# sum s^2 (d - mean)^2 (saved state version 3; versions 1 and 2 kept sum w d and sums of w^2).
# The differences are kept in units of 2**scale, scale the exponent of the group's largest |d|
# (version 4): differences near 1e-300 (logits near 700) have squares below float64, and near
# 1e200 squares past it; in units every scaled |d| is below 1 and its square keeps its digits.
_PAIR = ("count", "weight", "mean", "share2", "share2_dev", "share2_dev2", "a_better",
         "b_better", "tied", "infinite_a", "infinite_b", "scale")
_PAIR_SCALES = (-1073, sys.float_info.max_exp)  # frexp's exponents of finite nonzero floats
_HIST = ("negative", "positive", "prediction", "loss", "count")
# Weights whose largest is below 2**TINY_WEIGHT are added in units of 2**scale (a power of two,
# so exactly): subnormal weights (5e-324) times a loss keep no digits, so the state's sums are
# kept in units near its largest weight, as Accumulator keeps its own. Any weight below 1 (not
# only tiny ones): a loss can be 1e-300 (a logit of 690), and a weight of 1e-100 times it
# underflowed to 0 (a log loss of 0.0 for 5.4e-301); in units the largest weight is in
# [1/2, 1), so every product keeps the digits it has without weights.
TINY_WEIGHT = 0
MIN_SCALE = -1074  # the exponent of 2**-1074, the smallest subnormal


def _tiny_weight_scale(sample_weight):
    """(weights, scale): the exponent of the largest weight where every weight is finite,
    non-negative and below 2**TINY_WEIGHT; None where every weight is 0 (the batch has no say in
    the units); else 0, the weights as given (any bad value is named as given)."""
    if sample_weight is None:
        return sample_weight, 0
    weights = sample_weight
    if not isinstance(weights, np.ndarray):
        # every container the checks take through np.asarray (lists, a pandas Series, one
        # Python float for every row), not only arrays: a Series or a scalar of subnormal
        # weights kept no digits of their products (log losses 8e-4 and 17% off)
        try:
            weights = np.asarray(weights)
        except (ValueError, TypeError):
            return sample_weight, 0  # named by the checks
    if is_masked(weights):
        return sample_weight, 0  # refused by the checks, not read here
    if weights.dtype.kind == "f" and weights.dtype.itemsize >= 8 and weights.dtype != np.float64:
        # big-endian float64 or long double: the checks take them as float64, so they are
        # scaled as float64 too (they kept no digits of subnormal products: 21% off)
        with np.errstate(over="ignore"):  # past float64: inf, named by the checks
            weights = weights.astype(np.float64)
    if weights.dtype != np.float64 or not weights.size:
        return sample_weight, 0
    largest = float(np.max(weights))  # one pass for ordinary weights (and NaN: named later)
    if not largest < 2.0**TINY_WEIGHT or not float(np.min(weights)) >= 0:
        return sample_weight, 0
    return weights, (math.frexp(largest)[1] if largest > 0 else None)


def _in_units(sample_weight, scale: int):
    """The weights in units of 2**scale (exact: a power of two, none past float64)."""
    return sample_weight if not scale else np.ldexp(sample_weight, -scale)


def _unscaled(value: float, scale: int) -> float:
    return math.ldexp(value, scale) if scale and math.isfinite(value) else value


def check_setting(name: str, value) -> int:
    """An integer setting within its stated range, or a clear error."""
    low, high = LIMITS[name]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Invalid value for argument `{name}`. Expected an integer in "
                        f"[{low}, {high}]. Received: {name}={value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"Invalid value for argument `{name}`. Expected an integer in "
                         f"[{low}, {high}]. Received: {name}={value!r}")
    return int(value)


def _entropy(rate: float) -> float:
    """H(rate) in nats with 0 log 0 = 0."""
    if rate <= 0 or rate >= 1:
        return 0.0
    return -(rate * math.log(rate) + (1 - rate) * math.log1p(-rate))


def _divide(a: float, b: float) -> float:
    return a / b if b else math.nan


def _scalar(value):
    """A JSON-safe Python scalar for a segment or id value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        # -0.0 -> 0.0: the zeros' segment (-0.0 == 0.0) was named by whichever row came first
        value += 0.0
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    # Only pandas makes its missing values: not imported here, and maybe half imported by another
    # thread (so its names are looked up with a default; value is not None here).
    pandas = sys.modules.get("pandas")
    if value is getattr(pandas, "NA", None) or value is getattr(pandas, "NaT", None):
        return None  # missing, as NaN and None: not the text "<NA>" or "NaT" a row may hold
    return str(value)


def _time_key(value: np.generic):
    """A NumPy date, time or duration as a segment key: Python's date, datetime or timedelta
    text where it holds the value, else NumPy's own (nanoseconds, which ``item()`` gives as a
    bare integer); NaT is missing (None), as NaN is."""
    if np.isnat(value):
        return None
    item = value.item()
    return str(value) if isinstance(item, int) else _scalar(item)


def _distinct_names(what: str, names: list[str]) -> list[str]:
    """Names shown by their text (models, segment columns) must differ as text: two that read
    the same would show as one (a model's figures dropped, a segment label ambiguous)."""
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"{what} must be distinct as text: {repeated!r} names more than one "
                         f"of {names}.")
    return names


# -- inputs ------------------------------------------------------------------------------------


class _Batch:
    """One batch, checked: labels, weights, and per model predictions, order key and losses."""

    def __init__(self, y_true, y_pred, *, sample_weight, from_logits, by, ids, names=None):
        y = as_array("y_true", y_true)  # refuses a masked array (np.asarray drops the mask)
        check_real_array("y_true", y)
        check_unit_interval("y_true", y, "labels")
        if y.dtype.kind == "f" and y.size:
            hard = (y == 0) | (y == 1)
            if not hard.all():
                raise ValueError("`y_true` must contain hard labels 0 or 1 for diagnose (the "
                                 "by-class figures and the decomposition's bins count positives"
                                 f"). Received {y[~hard].ravel()[0].item()!r} at index "
                                 f"{first_index(~hard)}.")
        predictions = dict(y_pred) if isinstance(y_pred, Mapping) else {"model": y_pred}
        if not predictions:
            raise ValueError("`y_pred` is an empty mapping: give at least one model's predictions.")
        if names is not None and [str(name) for name in predictions] != list(names):
            raise ValueError(f"`y_pred` must hold the models {list(names)}, as in the first "
                             f"batch. Received {list(predictions)}.")
        self.names = _distinct_names("The model names in `y_pred`",
                                     [str(name) for name in predictions])
        self.weight = check_sample_weight(sample_weight, y.shape)
        if self.weight is not None:
            self.weight = self.weight.ravel()
        self.y = y.astype(bool).ravel()  # rows are elements, in C order
        self.n = self.y.size
        self.w = self.weight if self.weight is not None else np.ones(self.n)
        self.models = []
        for name, values in predictions.items():
            arg = "y_pred" if not isinstance(y_pred, Mapping) else f"y_pred[{name!r}]"
            x = as_array(arg, values)
            check_real_array(arg, x)
            check_same_shape("y_true", y, arg, x)
            x = x.astype(np.float64).ravel()
            if from_logits:
                check_no_nan(arg, x)
            else:
                check_unit_interval(arg, x, "probabilities (pass from_logits=True for logits)")
            self.models.append(_model_arrays(self.y, x, from_logits))
        self.by_names, self.by_codes, self.by_keys = _segments(by, self.n)
        if ids is not None and not callable(ids):
            ids = np.asarray(ids)
            if ids.shape != (self.n,):
                raise ValueError(f"`ids` must have one value per row, shape ({self.n},). "
                                 f"Received ids.shape={ids.shape}.")
        self.ids = ids


def _model_arrays(y: np.ndarray, x: np.ndarray, from_logits: bool) -> dict:
    """Per row: probability p, logit z, the order key (z for logits, else p) and the exact loss."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if from_logits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InfiniteLossWarning)  # counted instead
                loss = binary_cross_entropy(y.view(np.int8), x, from_logits=True,
                                            reduction="none")
            loss = np.asarray(loss, dtype=np.float64)
            z = x
            p = np.exp(-np.logaddexp(0.0, -z))  # sigmoid(z) = exp(-softplus(-z))
        else:
            # Hard labels from probabilities: the loss is -log p or -log1p(-p), one libm call
            # each (binary_cross_entropy's per-element formula with y in {0, 1}), and the
            # logit log p - log1p(-p) reuses both, so each row costs two logs, not four.
            p = x
            log_p, log_q = np.log(p), np.log1p(-p)
            z = log_p - log_q
            loss = -np.where(y, log_p, log_q)
    return {"p": p, "z": z, "key": z if from_logits else p, "loss": loss}


# Integer segment values are numbered through a table indexed by value, not by sorting, where
# their span is at most SEGMENT_SMALL_SPAN, or 16 per row up to SEGMENT_TABLE_SPAN, or one per row.
SEGMENT_SMALL_SPAN = 1 << 16
SEGMENT_TABLE_SPAN = 1 << 20


def _factorize(values: np.ndarray):
    """Codes 0..k-1 and the k distinct values (JSON-safe) in sorted order, for one segment
    column: integers and booleans through a table when their span is small, else np.unique."""
    if values.dtype.kind in "biu" and values.ndim == 1:
        codes, distinct = _integer_codes(values)
        if codes is not None:
            return codes, [_scalar(v) for v in distinct.tolist()]
    if values.dtype.kind == "O":  # Python objects (pandas' strings): a dict, not a sort
        return _object_codes(values)
    if values.dtype.kind in "US" and values.ndim == 1:
        codes, distinct = _text_codes(values)
        if codes is not None:
            return codes, [_scalar(v) for v in distinct.tolist()]
    try:
        unique, codes = np.unique(values, return_inverse=True)
        if values.dtype.kind in "mM":
            return codes.reshape(-1), [_time_key(v) for v in unique]
        return codes.reshape(-1), [_scalar(v) for v in unique.tolist()]
    except TypeError:  # mixed types (None among strings): a dictionary in first-seen order
        return _object_codes(values)


def _object_codes(values: np.ndarray):
    """Codes and distinct values of Python objects through a dict: sorted as np.unique sorts
    them where they compare (strings), else in first-seen order (None among strings)."""
    items = values.tolist()
    try:
        number = dict.fromkeys(items)
    except TypeError:  # unhashable values (lists): by their JSON-safe text, as keys show them
        items = [_scalar(v) for v in items]
        number = dict.fromkeys(items)
    try:
        distinct = sorted(number)
    except (TypeError, ArithmeticError):  # ArithmeticError: Decimal("NaN") refuses to compare
        distinct = list(number)
    number.update(zip(distinct, range(len(distinct))))
    codes = np.fromiter(map(number.__getitem__, items), dtype=np.int64, count=len(items))
    return codes, [_scalar(v) for v in distinct]


def _integer_codes(values: np.ndarray):
    """np.unique(values, return_inverse=True) for integers or booleans spread over a small span,
    in a few passes instead of a sort: mark the values present, number them in order, look each
    row up. (None, None) when the span is too wide for a table."""
    if not values.size:
        return None, None
    if values.dtype.kind == "b":
        offsets, low, span = values.view(np.uint8), 0, 2
    else:
        low = values.min()
        span = int(values.max()) - int(low) + 1
        # the table costs a pass over its span, a sort n log n: a wide span for few rows sorts
        rows = values.size
        if span > max(rows, min(16 * rows, SEGMENT_TABLE_SPAN), SEGMENT_SMALL_SPAN):
            return None, None
        # value - low lies in [0, span): exact modulo 2**bits, so read as unsigned it is right
        # (int8 -128..127 moved to 0..255 wraps as int8, not as uint8); 64-bit offsets are read
        # as int64, which bincount takes (they are below the span)
        size = values.dtype.itemsize
        offsets = (values - low).view(f"u{size}" if size < 8 else "i8")
    present = np.bincount(offsets, minlength=span) > 0
    # the k-th value present gets number k (int32: k < span, at most about a row count)
    table = np.cumsum(present, dtype=np.int32 if span < 1 << 31 else np.int64) - 1
    distinct = np.flatnonzero(present)
    if values.dtype.kind == "b":
        return np.take(table, offsets), distinct.astype(bool)
    return np.take(table, offsets), distinct.astype(values.dtype) + low


# Fixed-width text goes through the position tables (not a sort) from this many rows, where a
# sample of about as many rows holds at most TEXT_TABLE_DISTINCT distinct values.
TEXT_TABLE_ROWS = 4096
TEXT_TABLE_DISTINCT = 1024


def _text_codes(values: np.ndarray):
    """np.unique(values, return_inverse=True) for fixed-width text ('U' or 'S', native order)
    with few distinct values, without a sort: the strings as rows of code units, each position
    numbered through the integer table and paired with the numbers of the positions before it,
    so numbers follow the order NumPy compares strings in (code unit by code unit, the padding
    NULs lowest). (None, None) where a pair's span is too wide for a table (many distinct
    prefixes): np.unique then sorts the strings."""
    unit = np.dtype(np.uint32 if values.dtype.kind == "U" else np.uint8)
    width = values.dtype.itemsize // unit.itemsize
    if values.size < TEXT_TABLE_ROWS or not width or not values.dtype.isnative:
        return None, None  # few rows: sorting them is cheaper than a pass per position
    sample = values[:: values.size // TEXT_TABLE_ROWS]
    if len(np.unique(sample)) > TEXT_TABLE_DISTINCT:
        return None, None  # many distinct values: the tables outgrow the cache, a sort wins
    units = np.ascontiguousarray(values).view(unit).reshape(values.size, width)
    # a position where every string holds the same unit (a common prefix, padding) orders nothing
    low, high = _column_range(units)
    varying = np.flatnonzero(low != high)
    if not varying.size:
        return np.zeros(values.size, dtype=np.int32), values[:1]
    codes = None
    for position in varying.tolist():
        column, distinct = _integer_codes(units[:, position])
        if column is None:
            return None, None
        if codes is None:
            codes = column
            continue
        codes, _ = _integer_codes(codes.astype(np.int64) * len(distinct) + column)
        if codes is None:
            return None, None
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(values.size - 1, -1, -1)  # the first row of each number
    return codes, values[first]


def _column_range(units: np.ndarray, rows: int = 64):
    """units.min(axis=0), units.max(axis=0) of a C-ordered (n, width) array, reduced over blocks
    of ``rows`` rows at a time: NumPy's reduction over axis 0 runs an inner loop of ``width``
    values per row (a few for text), eight times slower on 10^7 strings."""
    n, width = units.shape
    whole = n // rows * rows
    blocks = units[:whole].reshape(n // rows, rows * width)
    low = blocks.min(axis=0, initial=np.iinfo(units.dtype).max).reshape(rows, width).min(axis=0)
    high = blocks.max(axis=0, initial=0).reshape(rows, width).max(axis=0)
    if whole < n:
        low = np.minimum(low, units[whole:].min(axis=0))
        high = np.maximum(high, units[whole:].max(axis=0))
    return low, high


class SegmentCodes:
    """Segments already numbered by the caller (a file reader that has dictionary codes):
    ``codes[i]`` is row i's index into ``keys``, each key a tuple with one value per name.
    Integer codes keep their dtype (the compiled kernel reads int8 to int64 as they are)."""

    def __init__(self, names, codes, keys, *, plain: bool = False):
        self.names = [str(name) for name in names]
        codes = np.asarray(codes)
        self.codes = codes if codes.dtype.kind in "iu" else codes.astype(np.int64)
        # plain: ``keys`` is a list of tuples of JSON-safe values, kept as given (a reader that
        # passes the same list batch after batch has its keys looked up once)
        self.keys = keys if plain else [tuple(_scalar(v) for v in key) for key in keys]


class _FastInputs:
    """A batch as the compiled diagnostics kernel takes it: flat arrays, not yet checked."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _fast_inputs(y_true, y_pred, sample_weight, by, ids, names):
    """The batch's flat arrays and the kernel's dtype codes, or None when the compiled kernel
    does not take them as they are (the NumPy path then checks, converts and computes)."""
    if not isinstance(y_true, np.ndarray) or not y_true.size:
        return None
    predictions = dict(y_pred) if isinstance(y_pred, Mapping) else {"model": y_pred}
    if not predictions:
        return None
    model_names = [str(name) for name in predictions]
    if (names is not None and model_names != list(names)) or len(set(model_names)) < len(
            model_names):
        return None
    shape = y_true.shape
    y = chunked._flat(y_true)
    xs = [chunked._flat(x) if isinstance(x, np.ndarray) and x.shape == shape else None
          for x in predictions.values()]
    w = None
    if sample_weight is not None:
        if not isinstance(sample_weight, np.ndarray) or sample_weight.shape != shape:
            return None
        w = chunked._flat(sample_weight)
        if w is None:
            return None
    if y is None or any(x is None for x in xs):
        return None
    n = y.size
    codes = keys = by_names = None
    if isinstance(by, SegmentCodes):
        if (by.codes.shape != (n,) or not by.codes.flags.c_contiguous
                or len(set(by.names)) < len(by.names)):
            return None
        codes, keys, by_names, by = by.codes, by.keys, by.names, None
    if ids is not None and not callable(ids):
        ids = np.asarray(ids)
        if ids.shape != (n,):
            return None
    found = chunked.diagnostics_kernels(y, xs, w, codes)
    if found is None:
        return None
    kernels, yt, xts, wt, ct = found
    return _FastInputs(kernels=kernels, types=(yt, xts, wt, ct), y=y, xs=xs, w=w, n=n,
                       names=model_names, by=by, by_names=by_names, codes=codes, keys=keys,
                       ids=ids)


def _segments(by, n: int):
    if by is None:
        return None, None, None
    if isinstance(by, SegmentCodes):
        _distinct_names("The `by` columns", by.names)
        if by.codes.shape != (n,):
            raise ValueError(f"`by` must number every row: codes of shape ({n},). "
                             f"Received shape {by.codes.shape}.")
        # a code that names no key: negative ones would index from the end (another segment's
        # rows), larger ones fail half way through the batch; refused before anything is added
        if n and (by.codes.min() < 0 or by.codes.max() >= len(by.keys)):
            bad = (by.codes < 0) | (by.codes >= len(by.keys))
            raise ValueError(f"`by` codes must be in [0, {len(by.keys)}), one per key. Received "
                             f"{by.codes[bad][0].item()!r} at index {first_index(bad)}.")
        return by.names, by.codes, by.keys
    columns = dict(by) if isinstance(by, Mapping) else {"segment": by}
    if not columns:
        raise ValueError("`by` is an empty mapping: give at least one segment column, or None.")
    names = _distinct_names("The `by` columns", [str(name) for name in columns])
    codes, keys = None, None
    for name, values in columns.items():
        array = np.asarray(values)
        if array.shape != (n,):
            raise ValueError(f"`by[{name!r}]` must have one value per row, shape ({n},). "
                             f"Received shape {array.shape}.")
        column_codes, distinct = _factorize(array)
        if codes is None:
            codes, keys = column_codes, [(value,) for value in distinct]
            continue
        # the pairs (segments so far, this column), numbered again at once: a code stays below
        # the row count, so the pair code, below rows * distinct values, never overflows
        pairs = codes.astype(np.int64) * len(distinct) + column_codes
        codes, numbered = _factorize(pairs)
        keys = [keys[pair // len(distinct)] + (distinct[pair % len(distinct)],)
                for pair in numbered]
    return names, codes.reshape(-1), keys


def _pooled_loss(neg: np.ndarray, pos: np.ndarray) -> float:
    """Sum over blocks of the block's weight times the entropy of its positive share."""
    total = neg + pos
    # over: other / part where part is the smaller (1e300 / 1e-300), a branch not taken
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.where(pos > 0, pos * _log_share(pos, neg, total), 0.0)
        terms += np.where(neg > 0, neg * _log_share(neg, pos, total), 0.0)
    return -math.fsum(terms.tolist())


def _log_share(part: np.ndarray, other: np.ndarray, total: np.ndarray) -> np.ndarray:
    """log(part / total), total = part + other, accurate at both ends. The larger part:
    -log1p(other / part), since part / total near 1 has lost the digits of other (1e20 of
    positives beside 3e4 of negatives: a total rounded by 2768, times 1e20 in the loss). The
    smaller: log of its share, or where that underflows (1e-300 beside 1e300: log 0 = -inf,
    not the part's tiny, finite loss) the difference of the logs."""
    share = part / total
    return np.where(part >= other, -np.log1p(other / part),
                    np.where(share > 0, np.log(share), np.log(part) - np.log(total)))


def _decomposition(log_loss: float, uncertainty: float, recalibrated: float, bound: float,
                   exact: bool) -> dict:
    return {
        "miscalibration": log_loss - recalibrated,
        "discrimination": uncertainty - recalibrated,
        "uncertainty": uncertainty,
        "recalibrated_log_loss": recalibrated,
        "exact": exact,
        "bound": bound,
        "method": "PAV isotonic recalibration on the sorted unique predictions (exact)" if exact
        else "PAV isotonic recalibration on the prediction histogram; miscalibration and "
             "discrimination are each at most `bound` above the values given",
    }


# -- the state ---------------------------------------------------------------------------------


class _ModelState:
    def __init__(self, resolution: int):
        self.totals = {name: CompensatedSum() for name in _TOTALS}
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.caps = dict.fromkeys(CAPS, 0)
        self.hist = np.zeros((len(_HIST), resolution + 2))
        self.loss_hist = np.zeros((2, 3, LOSS_BINS))  # class x (weight, loss, count) x bin
        self.worst = _empty_worst()
        self.segments = np.zeros((0, len(_SEGMENT)))
        self.scratch = None  # the compiled kernel's per-thread partial sums (chunked.py)


def _empty_worst() -> dict:
    """The k worst rows. ``row``: the row's position in the order rows reached the state (a
    merge renumbers the other state's rows after this one's; -1 where a version-1 state did not
    say); ``id``: the caller's id where ``named``, else unused (the row is named by ``row``)."""
    return {"loss": np.zeros(0), "row": np.zeros(0, dtype=np.int64), "id": [],
            "named": np.zeros(0, dtype=bool), "label": np.zeros(0, dtype=bool),
            "prediction": np.zeros(0), "weight": np.zeros(0)}


def _weighted_losses(w: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """w * loss per row, 0 where w = 0: a row of weight 0 adds nothing, even an infinite loss
    (0 * inf is NaN, and a warning, where the where drops it); an infinite loss of positive
    weight stays infinite."""
    with np.errstate(invalid="ignore"):
        return np.where(w > 0, w * loss, 0.0)


def _bincount(codes, weights, size):
    return np.bincount(codes, weights=weights, minlength=size)


def _loss_bin(loss: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        position = (np.log10(loss) - LOSS_LOW) * LOSS_PER_DECADE
    return np.clip(np.floor(position), -1, LOSS_BINS - 2).astype(np.int64) + 1


def loss_bin_edges() -> np.ndarray:
    """The loss histogram's edges: bin 0 is [0, 1e-16), the last is [1e4, inf)."""
    inner = 10.0 ** (LOSS_LOW + np.arange(LOSS_BINS - 1) / LOSS_PER_DECADE)
    return np.concatenate([[0.0], inner, [math.inf]])


def prediction_bin_edges(resolution: int) -> np.ndarray:
    """The prediction histogram's edges in logit: the tails are (-inf, -20) and [20, inf]."""
    return np.concatenate([[-math.inf], np.linspace(-LOGIT_RANGE, LOGIT_RANGE, resolution + 1),
                           [math.inf]])


def _serialized(method):
    """Run ``method`` holding the state's lock: the compiled kernel adds chunk i of a batch into
    the state's slot i with the GIL released, so two threads adding to one state at once lost
    rows from its histograms (a wrong ECE, silently); their calls now take turns."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with _lock_of(self):
            return method(self, *args, **kwargs)
    return run


_FORK_CHECK = ForkSafeLock()


def _lock_of(state: DiagnosticsState) -> threading.RLock:
    """The state's lock, first checked in a forked child: a state half changed by a thread
    that does not exist in the child has that thread's lock held, and the child would wait for
    ever, or report part of a batch. Such a state gets a free lock and refuses, as after an
    interrupted call."""
    if state._pid != os.getpid():
        with _FORK_CHECK:
            if state._pid != os.getpid():
                if state._lock.acquire(blocking=False):
                    state._lock.release()
                else:
                    state._lock = threading.RLock()
                    state._interrupted = state._interrupted or (
                        "a change was under way in another thread when the process forked")
                state._pid = os.getpid()
    return state._lock


class DiagnosticsState:
    """The mergeable diagnostics of one or several models scored on the same labels.

    ``update(y_true, y_pred, sample_weight=None, by=None, ids=None)`` adds a batch: ``y_pred``
    is an array, or a mapping from model name to array (the same names every batch); ``by`` an
    array of segment values or a mapping from column name to array; ``ids`` names the rows in
    ``worst`` (default: the row's position in the order rows reached this state).
    ``merge`` folds in another state with the same settings, ``result`` gives the figures
    (see :func:`logloss.diagnose`), ``to_dict`` / ``from_dict`` round-trip through JSON.
    Weights are exact at both ends of float64: the pairs keep shares of the weight (no weight
    is squared), and a state whose weights are all below 1 (subnormal ones too) keeps its
    sums in units of 2**``scale``, saved with it. Each pair's differences are kept in units of
    the power of two of their largest (saved too), so differences near 1e-300 keep their spread.
    Bad input is refused before anything is added; a call that raises after that (out of memory,
    Ctrl-C) leaves part of its rows in, so every later call raises ``RuntimeError`` instead of
    reporting partial figures as complete. Calls on one state from several threads take
    turns (each holds the state's lock).

    Memory: per model, ``resolution + 2`` histogram bins of 5 floats, 3 x 2 x 1002 loss bins,
    ``k`` rows, and 7 floats per segment (12 per pair of models and segment); while the compiled
    kernel adds batches, one partial copy of the histograms and segment sums per thread, at most
    ``chunked.DIAGNOSTICS_SCRATCH_LIMIT`` (32 MB) for the state (fewer threads beyond), folded in
    when the state is read, merged or saved.
    """

    def __init__(self, *, from_logits: bool = False, k: int = DEFAULTS["k"],
                 bins: int = DEFAULTS["bins"], resolution: int = DEFAULTS["resolution"]):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError("Invalid value for argument `from_logits`. Expected True or False. "
                            f"Received: from_logits={from_logits!r}")
        self.from_logits = bool(from_logits)
        self.k = check_setting("k", k)
        self.bins = check_setting("bins", bins)
        self.resolution = check_setting("resolution", resolution)
        self.names: list[str] | None = None
        self.by: list[str] | None = None
        self.models: list[_ModelState] = []
        self.segment_keys: list[tuple] = []
        self._segment_index: dict = {}
        self.pairs: dict = {}  # (i, j) -> {"overall": (len(_PAIR),) array, "segments": 2-D}
        self.rows = 0
        # every weighted sum (totals, histograms, segments, the pairs' weights, the worst rows'
        # weights) is kept in units of 2**scale: 0 but where every weight so far was tiny
        self.scale = 0
        self._batch_scale = 0  # the scale the batch being added needs
        self._last_keys, self._last_remap = None, None  # a batch's segment keys -> rows
        self._interrupted: str | None = None  # why a change stopped half way, if one did
        self._lock = threading.RLock()  # reentrant: update calls _add_compiled
        self._pid = os.getpid()  # the process the lock belongs to (see _lock_of)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]  # a lock does not pickle; each copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock, self._pid = threading.RLock(), os.getpid()

    @contextlib.contextmanager
    def _changing(self, what: str):
        """Run a change of the state; if it raises part way (out of memory, Ctrl-C, a second
        model's kernel failing), the figures would mix added and missing parts, so the state
        refuses every later use instead of reporting them as complete."""
        try:
            yield
        except BaseException as error:
            self._interrupted = f"{what} stopped part way ({type(error).__name__}: {error})"
            raise

    def _check_complete(self) -> None:
        if self._interrupted is not None:
            raise RuntimeError(
                f"This DiagnosticsState is incomplete: {self._interrupted}, so its histograms "
                "and sums hold part of that batch. Its figures would be wrong; start a new state "
                "(or rebuild one saved with to_dict() before that call).")

    # -- adding rows

    @_serialized
    def update(self, y_true, y_pred, sample_weight=None, *, by=None, ids=None):
        """Add a batch. Returns self."""
        self._check_complete()
        sample_weight = self._in_state_units(sample_weight)
        if self._add_compiled(y_true, y_pred, sample_weight, by, ids, in_units=True) is None:
            batch = _Batch(y_true, y_pred, sample_weight=sample_weight,
                           from_logits=self.from_logits, by=by, ids=ids, names=self.names)
            self._add(batch)
        return self

    def _in_state_units(self, sample_weight):
        """The batch's weights in the units the state will keep once it is added (tiny weights
        scaled by a power of two; others as given), noting the scale the batch needs."""
        sample_weight, self._batch_scale = _tiny_weight_scale(sample_weight)
        return _in_units(sample_weight, self._units_for(self._batch_scale))

    @_serialized
    def _add_compiled(self, y_true, y_pred, sample_weight, by, ids, *, keep_losses=False,
                      in_units=False):
        """Add a batch in one pass of the compiled diagnostics kernel (all threads), or return
        None, adding nothing: kernels not built or engine "numpy", input the kernel does not take
        as it is (lists, strided or broadcast arrays, integer predictions or weights, an empty
        batch), or a value the checks of the NumPy path must name. Returns the fast inputs, with
        each model's per-row losses when ``keep_losses`` (or several models) asked for them.
        ``in_units``: the weights are already in the state's units (``_in_state_units``)."""
        if not in_units:
            sample_weight = self._in_state_units(sample_weight)
        fast = _fast_inputs(y_true, y_pred, sample_weight, by, ids, self.names)
        if fast is None:
            return None
        kernels, types = fast.kernels, fast.types
        for index, x in enumerate(fast.xs):
            codes = fast.codes if index == 0 else None
            if not chunked.diagnostics_check(kernels, (types[0], types[1][index], types[2],
                                                       types[3]), fast.y, x, fast.w, codes,
                                             len(fast.keys or ()), from_logits=self.from_logits):
                return None
        by_names, codes, keys = fast.by_names, fast.codes, fast.keys
        if fast.by is not None:  # values to number: after the checks, as the NumPy path does
            by_names, codes, keys = _segments(fast.by, fast.n)
            codes = np.ascontiguousarray(codes.reshape(-1))
            types = (types[0], types[1], types[2], chunked._code(codes))
        self._start(fast.names, by_names)
        with self._changing("adding a batch"):
            self._rescale(self._units_for(self._batch_scale))
            return self._add_checked(fast, types, codes, keys, keep_losses)

    def _add_checked(self, fast, types, codes, keys, keep_losses):
        kernels = fast.kernels
        remap = segments = None
        if codes is not None:
            if keys is not self._last_keys:  # the same key list as the last batch: same rows
                self._last_remap = np.fromiter((self._segment(key) for key in keys),
                                               dtype=np.int64, count=len(keys))
                self._last_keys = keys
            remap = self._last_remap
            segments = len(self.segment_keys)
            for state in self.models:
                _grow(state, "segments", segments)
            for pair in self.pairs.values():
                _grow(pair, "segments", segments)
        for state in self.models:
            if state.scratch is None:
                state.scratch = chunked.DiagnosticsScratch(kernels, self.resolution)
        slots = chunked.diagnostics_slots([m.scratch for m in self.models], segments or 0)
        if any(len(m.scratch.slots) > slots for m in self.models):
            self._drain()  # more segments than before: fewer, larger slots stay within the cap
        keep = keep_losses or bool(self.pairs)
        first_row = self.rows
        fast.losses = []
        for index, (state, x) in enumerate(zip(self.models, fast.xs)):
            losses = np.empty(fast.n) if keep else None
            worst = state.worst["loss"]
            threshold = float(worst[-1]) if self.k and len(worst) == self.k else -1.0
            out = chunked.diagnostics_update(
                kernels, (types[0], types[1][index], types[2], types[3]), fast.y, x, fast.w,
                codes, remap, segments, state.scratch, slots, from_logits=self.from_logits,
                k=self.k, threshold=threshold, losses=losses)
            for name, (hi, lo) in zip(_TOTALS, out["totals"].tolist()):
                state.totals[name].merge(CompensatedSum(hi, lo))
            counts = out["counts"].tolist()
            for name, value in zip(_COUNTS, counts):
                state.counts[name] += int(value)
            for name, value in zip(CAPS, counts[len(_COUNTS):]):
                state.caps[name] += int(value)
            if self.k:
                candidates, loss = out["worst"]
                self._add_candidates(state, fast, x, candidates, loss, first_row)
            fast.losses.append(losses)
        if self.pairs:
            weight = None if fast.w is None else fast.w.astype(np.float64, copy=False)
            segment_rows = None if codes is None else remap[codes]
            for (i, j), pair in self.pairs.items():
                _add_pair(pair, fast.losses[i], fast.losses[j], weight, segment_rows,
                          len(self.segment_keys))
        self.rows += fast.n
        return fast

    def _add_candidates(self, state, fast, x, candidates, loss, first_row) -> None:
        """The kernel's candidates for the worst rows, worst first, into ``state.worst``."""
        if not len(candidates):
            return
        ids = fast.ids
        if ids is None:
            named = [None] * len(candidates)
        elif callable(ids):
            order = np.argsort(candidates, kind="stable")  # ids named in row order, as NumPy's
            named = [None] * len(candidates)
            for position, value in zip(order.tolist(), list(ids(candidates[order]))):
                named[position] = value
        else:
            named = ids[candidates].tolist()
        values = x[candidates].astype(np.float64)
        if self.from_logits:
            with np.errstate(over="ignore"):
                values = np.exp(-np.logaddexp(0.0, -values))
        new = {"loss": loss.astype(np.float64), "row": first_row + candidates,
               "id": [_scalar(i) for i in named],
               "named": np.full(len(candidates), ids is not None),
               "label": fast.y[candidates] != 0,
               "prediction": values,
               "weight": (np.ones(len(candidates)) if fast.w is None
                          else fast.w[candidates].astype(np.float64))}
        state.worst = _keep_worst(state.worst, new, self.k)

    def _drain(self) -> None:
        """Fold the compiled kernel's per-thread partial sums into the histograms."""
        with self._changing("folding the kernel's partial sums in"):
            self._drain_scratch()

    def _drain_scratch(self) -> None:
        for state in self.models:
            if state.scratch is None:
                continue
            drained = state.scratch.drain()
            if drained is None:
                continue
            hist, loss_hist, segments = drained
            state.hist += hist
            state.loss_hist += loss_hist
            if segments is not None:
                rows = min(len(segments), len(state.segments))
                state.segments[:rows] += segments[:rows]

    def _weighted(self) -> bool:
        """Whether any row of positive weight was added (else the scale has no say)."""
        return bool(self.models) and self.models[0].totals["weight"].value > 0

    def _units_for(self, batch_scale) -> int:
        """The scale after adding a batch that needs ``batch_scale`` (None: no weight, no say):
        the larger of the two (smaller weights beside larger ones are a vanishing part of every
        ratio)."""
        if batch_scale is None:
            return self.scale
        return max(self.scale, batch_scale) if self._weighted() else batch_scale

    def _rescale(self, scale: int) -> None:
        """Move every weighted sum into units of 2**scale (exact but where a part far below
        the state's weight underflows)."""
        if scale == self.scale:
            return
        self._drain_scratch()
        _shift_weights(self.models, self.pairs, self.scale - scale)
        self.scale = scale

    def _start(self, names, by_names):
        if self.names is None:
            self.names = list(names)
            self.by = by_names
            self.models = [_ModelState(self.resolution) for _ in names]
            self.pairs = {(i, j): {"overall": np.zeros(len(_PAIR)),
                                   "segments": np.zeros((0, len(_PAIR)))}
                          for i in range(len(names)) for j in range(i + 1, len(names))}
        elif by_names != self.by:
            raise ValueError(f"`by` must name the same columns in every batch: {self.by} before, "
                             f"{by_names} now.")

    def _add(self, batch: _Batch) -> None:
        self._start(batch.names, batch.by_names)
        if batch.n == 0:
            return
        with self._changing("adding a batch"):
            self._rescale(self._units_for(self._batch_scale))
            self._add_rows(batch)

    def _add_rows(self, batch: _Batch) -> None:
        segment_rows = None
        if batch.by_codes is not None:
            segment_rows = np.array([self._segment(key) for key in batch.by_keys],
                                    dtype=np.int64)[batch.by_codes]
            for state in self.models:
                _grow(state, "segments", len(self.segment_keys))
            for pair in self.pairs.values():
                _grow(pair, "segments", len(self.segment_keys))
        first_row = self.rows
        # weights near the float64 limit: products and sums past it are inf, as the compiled
        # kernel's are, and result() refuses such totals; no warning from NumPy here
        with np.errstate(over="ignore"):
            for state, arrays in zip(self.models, batch.models):
                self._add_model(state, batch, arrays, segment_rows, first_row)
        for (i, j), pair in self.pairs.items():
            _add_pair(pair, batch.models[i]["loss"], batch.models[j]["loss"], batch.weight,
                      segment_rows, len(self.segment_keys))
        self.rows += batch.n

    def _segment(self, key: tuple) -> int:
        index = self._segment_index.get(key)
        if index is None:
            index = self._segment_index[key] = len(self.segment_keys)
            self.segment_keys.append(key)
        return index

    def _add_model(self, state, batch, arrays, segment_rows, first_row) -> None:
        y, w, weight = batch.y, batch.w, batch.weight
        p, z, loss = arrays["p"], arrays["z"], arrays["loss"]
        # Without weights every weighted sum is a plain one (w = 1): no weight products.
        unweighted = weight is None
        wloss = loss if unweighted else _weighted_losses(w, loss)
        infinite = np.isinf(loss)
        if not unweighted:
            infinite &= w > 0
        yf = y.astype(np.float64)
        wy = yf if unweighted else np.where(y, w, 0.0)
        wp = p if unweighted else w * p
        squared = (p - yf) ** 2
        wsq = squared if unweighted else w * squared
        positives = int(np.count_nonzero(y))
        t = state.totals
        weight_sum = float(batch.n) if unweighted else float(np.sum(w))
        label_sum = float(positives) if unweighted else float(np.sum(wy))
        t["weight"].add(weight_sum)
        t["label"].add(label_sum)
        t["weight_negative"].add(float(batch.n - positives) if unweighted
                                 else float(np.sum(w - wy)))
        t["prediction"].add(float(np.sum(wp)))
        loss_sum = float(np.sum(wloss))
        loss_positive = float(np.sum(wloss, where=y))
        t["loss"].add(loss_sum)
        t["brier"].add(float(np.sum(wsq)))
        t["loss_positive"].add(loss_positive)
        t["loss_negative"].add(float(np.sum(wloss, where=~y)))
        confident = loss > CONFIDENT
        if not unweighted:
            # as for infinite: a row of weight 0 carries none of the loss, so it is no mistake
            # the loss "comes from" (nor a row a framework's cap changes)
            confident &= w > 0
        confident_rows = int(np.count_nonzero(confident))
        if confident_rows:
            t["confident_weight"].add(float(confident_rows) if unweighted
                                      else float(np.sum(w[confident])))
            t["confident_loss"].add(float(np.sum(wloss[confident])))
        c = state.counts
        c["count"] += batch.n
        c["positives"] += positives
        c["infinite"] += int(np.count_nonzero(infinite))
        c["infinite_positive"] += int(np.count_nonzero(infinite & y))
        c["confident"] += confident_rows
        for name, cap in CAPS.items():  # every cap is above the confident-mistake threshold
            state.caps[name] += (int(np.count_nonzero(loss[confident] > cap)) if confident_rows
                                 else 0)
        # the prediction histogram, uniform in logit
        size = self.resolution + 2
        with np.errstate(invalid="ignore"):
            position = (z + LOGIT_RANGE) * (self.resolution / (2 * LOGIT_RANGE))
        # truncation is floor at and above 0; everything below 0 is the lower tail, cell 0
        cell = np.clip(position, 0, self.resolution).astype(np.int64) + 1
        cell[position < 0] = 0
        counts = _bincount(cell, None, size)
        pos_w = _bincount(cell, wy, size)
        # the negatives' weight added, not the cell's total less the positives': with 1e20 of
        # positives beside 3e4 of negatives that difference keeps 32768 of them (2**16 steps)
        state.hist[0] += (counts - pos_w) if unweighted else _bincount(cell, w - wy, size)
        state.hist[1] += pos_w
        state.hist[2] += _bincount(cell, wp, size)
        state.hist[3] += _bincount(cell, wloss, size)
        state.hist[4] += counts
        # the loss histogram, per class (one bincount over class-and-bin codes); infinite
        # losses fall in the top bin and are counted apart too
        code = _loss_bin(loss) * 2 + y
        lcounts = _bincount(code, None, 2 * LOSS_BINS).reshape(LOSS_BINS, 2).T
        lweights = lcounts if unweighted else _bincount(code, w, 2 * LOSS_BINS).reshape(
            LOSS_BINS, 2).T
        state.loss_hist[:, 0] += lweights
        state.loss_hist[:, 1] += _bincount(code, wloss, 2 * LOSS_BINS).reshape(LOSS_BINS, 2).T
        state.loss_hist[:, 2] += lcounts
        if self.k:
            self._add_worst(state, batch, p, loss, first_row)
        if segment_rows is not None:
            size = len(self.segment_keys)
            rows = _bincount(segment_rows, None, size)
            sums = [rows, rows if unweighted else _bincount(segment_rows, w, size),
                    _bincount(segment_rows, wy, size), _bincount(segment_rows, wp, size),
                    _bincount(segment_rows, wloss, size), _bincount(segment_rows, wsq, size),
                    _bincount(segment_rows, infinite, size)]
            state.segments += np.stack(sums, axis=1)

    def _add_worst(self, state, batch, p, loss, first_row) -> None:
        k = self.k
        live = loss >= 0 if batch.weight is None else batch.weight > 0
        if len(state.worst["loss"]) == k:  # only a row worse than the k-th can enter
            live &= loss > state.worst["loss"][-1]
        candidates = np.flatnonzero(live)
        if len(candidates) > k:  # the k worst; among equal losses the earlier rows, as the kernel
            values = loss[candidates]
            kth = np.partition(values, len(values) - k)[len(values) - k]
            above = candidates[values > kth]
            tied = candidates[values == kth][: k - len(above)]
            candidates = np.sort(np.concatenate([above, tied]))
        if batch.ids is None:
            ids = [None] * len(candidates)
        elif callable(batch.ids):  # ids named on demand, for the k candidates only
            ids = list(batch.ids(candidates))
        else:
            ids = batch.ids[candidates].tolist()
        new = {"loss": loss[candidates], "row": first_row + candidates,
               "id": [_scalar(i) for i in ids],
               "named": np.full(len(candidates), batch.ids is not None),
               "label": batch.y[candidates], "prediction": p[candidates],
               "weight": batch.w[candidates]}
        state.worst = _keep_worst(state.worst, new, k)

    # -- merging and serializing

    def _settings(self) -> tuple:
        return (self.from_logits, self.k, self.bins, self.resolution)

    def merge(self, other: DiagnosticsState) -> DiagnosticsState:
        """Fold another state (same settings, models and segment columns) in. Returns self."""
        if not isinstance(other, DiagnosticsState):
            raise TypeError(f"Can only merge a DiagnosticsState. Received {type(other).__name__}.")
        # both states change (the other's partial sums are folded in): both locks, always taken
        # in the same order, so a.merge(b) beside b.merge(a) cannot wait on each other
        first, second = sorted((self, other), key=id)
        with _lock_of(first), _lock_of(second):
            return self._merge(other)

    def _merge(self, other: DiagnosticsState) -> DiagnosticsState:
        if self._settings() != other._settings():
            raise ValueError("Cannot merge diagnostics with different settings (from_logits, k, "
                             f"bins, resolution): {self._settings()} and {other._settings()}.")
        self._check_complete()
        other._check_complete()
        if other.names is None:
            return self
        if self.names is not None and other.names != self.names:
            raise ValueError(f"Cannot merge diagnostics of models {other.names} into {self.names}.")
        self._drain()
        other._drain()
        self._start(other.names, other.by)
        with self._changing("merging another state"):
            if other._weighted():
                self._rescale(self._units_for(other.scale))
            self._merge_checked(other)
        return self

    def _merge_checked(self, other: DiagnosticsState) -> None:
        remap = np.array([self._segment(key) for key in other.segment_keys], dtype=np.int64)
        size = len(self.segment_keys)
        other_models, other_pairs = other.models, other.pairs
        if other.scale != self.scale:  # the other's sums in this state's units, on copies
            other_models = [_weight_copy(theirs) for theirs in other.models]
            other_pairs = {key: {name: array.copy() for name, array in pair.items()}
                           for key, pair in other.pairs.items()}
            _shift_weights(other_models, other_pairs, other.scale - self.scale)
        for mine, theirs in zip(self.models, other_models):
            for name in _TOTALS:
                mine.totals[name].merge(theirs.totals[name])
            for name in _COUNTS:
                mine.counts[name] += theirs.counts[name]
            for name in CAPS:
                mine.caps[name] += theirs.caps[name]
            mine.hist += theirs.hist
            mine.loss_hist += theirs.loss_hist
            # the other state's rows come after this one's: their positions move by self.rows
            moved = dict(theirs.worst)
            moved["row"] = np.where(moved["row"] >= 0, moved["row"] + self.rows, -1)
            mine.worst = _keep_worst(mine.worst, moved, self.k)
            _grow(mine, "segments", size)
            np.add.at(mine.segments, remap, theirs.segments)
        for key, pair in self.pairs.items():
            theirs = other_pairs[key]
            pair["overall"] = _merge_pair(pair["overall"][None], theirs["overall"][None])[0]
            _grow(pair, "segments", size)
            if len(remap):
                merged = _merge_pair(pair["segments"][remap], theirs["segments"])
                pair["segments"][remap] = merged
        self.rows += other.rows

    @_serialized
    def to_dict(self) -> dict:
        """A JSON-serializable copy of the state (plain lists and numbers; an infinite value,
        an infinite loss, as the string "inf", so the file is strict JSON)."""
        self._check_complete()
        self._drain()
        models = []
        for state in self.models:
            models.append({
                "totals": {name: [saved.encode(s.hi), s.lo if math.isfinite(s.hi) else 0.0]
                           for name, s in state.totals.items()},
                "counts": dict(state.counts),
                "caps": dict(state.caps),
                "hist": saved.encode_array(state.hist),
                "loss_hist": saved.encode_array(state.loss_hist),
                "worst": {"loss": saved.encode_array(state.worst["loss"]),
                          "row": state.worst["row"].tolist(), "id": list(state.worst["id"]),
                          "named": state.worst["named"].tolist(),
                          "label": state.worst["label"].astype(int).tolist(),
                          "prediction": state.worst["prediction"].tolist(),
                          "weight": state.worst["weight"].tolist()},
                "segments": saved.encode_array(state.segments),
            })
        return {
            "kind": "logloss.DiagnosticsState",
            "version": _STATE_VERSION,
            "settings": {"from_logits": self.from_logits, "k": self.k, "bins": self.bins,
                         "resolution": self.resolution},
            "names": self.names,
            "by": self.by,
            "rows": self.rows,
            "scale": self.scale,
            "segment_keys": [list(key) for key in self.segment_keys],
            "models": models,
            "pairs": [{"a": i, "b": j, "overall": pair["overall"][:-1].tolist(),
                       "segments": pair["segments"][:, :-1].tolist(),
                       "scale": int(pair["overall"][-1]),
                       "segment_scales": pair["segments"][:, -1].astype(np.int64).tolist()}
                      for (i, j), pair in self.pairs.items()],
        }

    @classmethod
    def from_dict(cls, state: Mapping) -> DiagnosticsState:
        """Rebuild a state written by :meth:`to_dict` (after ``json.loads``; versions 1 to 5).
        Every field is checked (keys, types, shapes, signs, finiteness, and that the parts
        agree: counts with histograms, segment rows with keys, pairs with models), and a
        field that fails is named by its path, with what it received."""
        if not isinstance(state, Mapping) or state.get("kind") != "logloss.DiagnosticsState":
            raise ValueError("`state` must be a mapping written by DiagnosticsState.to_dict() "
                             "(kind 'logloss.DiagnosticsState').")
        version = state.get("version")
        if isinstance(version, bool) or version not in range(1, _STATE_VERSION + 1):
            raise ValueError(f"Unsupported diagnostics state version {version!r}; "
                             f"this logloss reads versions 1 to {_STATE_VERSION}.")
        # versions 1 and 2 (and the first of 3) kept weights as they were: no scale
        saved.mapping(state, "state", _STATE_KEYS, optional=("scale",) if version <= 3 else ())
        settings = saved.mapping(state["settings"], "state['settings']",
                                 ("from_logits", "k", "bins", "resolution"))
        saved.boolean(settings["from_logits"], "state['settings']['from_logits']")
        new = cls(**settings)
        names, by = state["names"], state["by"]
        if names is None:
            if state["rows"] != 0 or state["models"] or state["pairs"] or state["segment_keys"]:
                raise ValueError("The saved state has no models (`names` is null) but has rows, "
                                 "models, pairs or segment keys; it was not written by to_dict().")
            return new
        for field, values in (("names", names), ("by", by)):
            if field == "by" and values is None:
                continue
            saved.sequence(values, f"state[{field!r}]")
            for i, name in enumerate(values):
                saved.text(name, f"state[{field!r}][{i}]")
            if len(set(values)) != len(values) or (field == "names" and not values):
                raise ValueError(f"`state[{field!r}]` must be distinct names (at least one model)"
                                 f". Received {values!r:.80}.")
        new._start(names, by)
        # counts are held in float64 histogram cells: exact below 2**53
        new.rows = saved.integer(state["rows"], "state['rows']", 0, 2**53)
        scale = state.get("scale", 0)
        # to_dict writes 0 or the exponent of a weight below 2**TINY_WEIGHT (-1073 at least):
        # a positive scale multiplied every weight reported (a total of 5e304 for one of 16)
        # or overflowed math.ldexp in result()
        if (isinstance(scale, bool) or not isinstance(scale, int)
                or not MIN_SCALE <= scale <= 0):
            raise ValueError(f"The saved scale must be an integer in [{MIN_SCALE}, 0]. "
                             f"Received {scale!r}.")
        new.scale = scale
        keys = saved.sequence(state["segment_keys"], "state['segment_keys']")
        if keys and by is None:
            raise ValueError("The saved state has segment keys but no `by` columns.")
        for i, key in enumerate(keys):
            saved.sequence(key, f"state['segment_keys'][{i}]", len(by))
            for j, value in enumerate(key):
                if value is not None and not isinstance(value, (str, int, float)):
                    raise TypeError(f"`state['segment_keys'][{i}][{j}]` must be a string, a "
                                    f"number, true, false or null. Received {value!r}.")
            new._segment(tuple(key))
        segments = len(keys)
        if len(new.segment_keys) != segments:
            raise ValueError("The saved segment keys repeat a key; the state was not written by "
                             "to_dict() as it stands.")
        pairs = saved.sequence(state["pairs"], "state['pairs']")
        for i, pair in enumerate(pairs):
            saved.mapping(pair, f"state['pairs'][{i}]", ("a", "b", "overall", "segments"),
                          optional=("scale", "segment_scales"))
            for side in ("a", "b"):
                saved.integer(pair[side], f"state['pairs'][{i}][{side!r}]", 0, len(names) - 1)
        if {(p["a"], p["b"]) for p in pairs} != set(new.pairs) or len(pairs) != len(new.pairs):
            found = [(p["a"], p["b"]) for p in pairs]
            raise ValueError(f"The saved pairs of models {found} do not match the models "
                             f"{new.names}.")
        saved.sequence(state["models"], "state['models']", len(names))
        for index, (mine, model) in enumerate(zip(new.models, state["models"], strict=True)):
            _load_model(mine, model, f"state['models'][{index}]", version, new, segments)
        for index, pair_state in enumerate(pairs):
            where = f"state['pairs'][{index}]"
            pair = new.pairs[(pair_state["a"], pair_state["b"])]
            width = len(_PAIR) - 1
            if not isinstance(pair_state["overall"], list) or len(pair_state["overall"]) != width:
                raise ValueError(f"The saved pair overall sums must be a list of {width} "
                                 f"numbers. Received {pair_state['overall']!r:.80}.")
            if (not isinstance(pair_state["segments"], list)
                    or len(pair_state["segments"]) != segments):
                raise ValueError(f"The saved pair segments must be a list of {segments} rows "
                                 f"(one per segment key). Received {pair_state['segments']!r:.80}.")
            overall = saved.array(pair_state["overall"], f"{where}['overall']", (width,),
                                  signed=True)
            rows = saved.array(pair_state["segments"], f"{where}['segments']",
                               (segments, width), signed=True)
            _check_pair_sums(overall, f"{where}['overall']")
            _check_pair_sums(rows, f"{where}['segments']")
            # versions 1 to 3 kept the differences as they were: units of 2**0
            scale, scales = 0, [0] * segments
            if version >= 4:
                scale = _saved_pair_scale(pair_state.get("scale"), "scale")
                scales = pair_state.get("segment_scales")
                if not isinstance(scales, list) or len(scales) != segments:
                    raise ValueError(f"The saved pair field `segment_scales` must be a list of "
                                     f"{segments} integers (one per segment key). Received "
                                     f"{scales!r}.")
                scales = [_saved_pair_scale(value, f"segment_scales[{index}]")
                          for index, value in enumerate(scales)]
            pair["overall"] = np.append(overall, float(scale))
            pair["segments"] = np.column_stack([rows, np.array(scales, dtype=np.float64)])
            if version < 3:  # plain sums of w and w^2 then: in shares of the weight now
                pair["overall"] = _pair_from_sums(pair["overall"][None])[0]
                pair["segments"] = _pair_from_sums(pair["segments"])
        return new

    # -- the figures

    def result(self, *, max_segments: int = DEFAULTS["max_segments"]) -> dict:
        """The figures from the state alone (the decomposition, ECE and concentration from the
        histograms, each with its bound). See :func:`logloss.diagnose` for the keys."""
        return self._result(max_segments=max_segments, exact=None)

    @_serialized
    def _result(self, *, max_segments, exact) -> dict:
        max_segments = check_setting("max_segments", max_segments)
        self._check_complete()
        self._drain()
        if self.names is None or self.models[0].counts["count"] == 0:
            raise ValueError("The diagnostics have seen no rows, so there is nothing to report.")
        self._check_range()
        models = {}
        for index, (name, state) in enumerate(zip(self.names, self.models)):
            models[name] = self._model_result(state, exact[index] if exact else None,
                                              max_segments)
        out: dict = {"models": models}
        if self.pairs:
            out["comparison"] = [
                self._pair_result(i, j, pair, max_segments) for (i, j), pair in self.pairs.items()
            ]
        out["settings"] = {
            "k": self.k, "bins": self.bins, "resolution": self.resolution,
            "from_logits": self.from_logits, "max_segments": max_segments,
            "prediction_histogram": f"{self.resolution} bins uniform in logit over "
                                    f"[-{LOGIT_RANGE:g}, {LOGIT_RANGE:g}] (width "
                                    f"{2 * LOGIT_RANGE / self.resolution:.3g}), plus one bin "
                                    "for each tail",
            "loss_histogram": f"{LOSS_PER_DECADE} bins per decade from 1e{LOSS_LOW} to "
                              f"1e{LOSS_HIGH}, plus one bin below and one above",
            "exact": exact is not None,
            "by": self.by,
        }
        return out

    def _check_range(self) -> None:
        for name, state in zip(self.names, self.models):
            total = {key: state.totals[key].value for key in ("weight", "loss")}
            if _past_float64(total["weight"], total["loss"], state.counts["infinite"]):
                what = ("`sample_weight`" if math.isinf(total["weight"])
                        else "weighted loss (`sample_weight` times the loss)")
                raise OverflowError(
                    f"Model {name!r}: the total {what} exceeds the float64 range (~1.8e308) "
                    "that the diagnostics state holds; scale `sample_weight` down (a common "
                    "factor changes no figure but the weight totals).")
            # the same for one segment, which an infinite row elsewhere lets past the total
            if len(state.segments):
                seg = state.segments
                overflowed = _past_float64(seg[:, 1], seg[:, 4], seg[:, 6])
                if overflowed.any():
                    key = dict(zip(self.by, self.segment_keys[int(np.argmax(overflowed))]))
                    raise OverflowError(
                        f"Model {name!r}, segment {key}: the segment's total `sample_weight` "
                        "or weighted loss exceeds the float64 range (~1.8e308) that the "
                        "diagnostics state holds; scale `sample_weight` down.")

    def _model_result(self, state: _ModelState, exact, max_segments) -> dict:
        t = {name: s.value for name, s in state.totals.items()}
        c = state.counts
        weight = t["weight"]
        if not weight > 0:
            raise ValueError("The total `sample_weight` is zero, so the weighted figures are "
                             "undefined.")
        headline = _headline(c["count"], weight, t["label"], t["prediction"], t["loss"],
                             t["brier"], c["infinite"])
        headline["positives"] = c["positives"]
        headline["weight"] = _unscaled(weight, self.scale)
        log_loss = headline["log_loss"]
        uncertainty = _entropy(headline["base_rate"])
        if exact is not None:
            decomposition = _decomposition(log_loss, uncertainty, exact["recalibrated"], 0.0, True)
            reliability = {"bins": exact["bins"], "pav": exact["pav"]}
            ece, ece_bound = exact["ece"], 0.0
        else:
            decomposition, pav = self._histogram_decomposition(state, log_loss, uncertainty,
                                                               weight)
            bins = _histogram_bins(state.hist, self.bins, weight, t["loss"])
            reliability = {"bins": bins, "pav": pav}
            ece = _ece(bins, weight)
            ece_bound = _histogram_ece_bound(state.hist, self.bins, weight, self.resolution)
        reliability["histogram"] = _probability_histogram(state.hist, self.resolution, weight)
        for row in reliability["bins"]:  # in units of 2**scale until here
            row["weight"] = _unscaled(row["weight"], self.scale)
        weight_positive = t["label"]
        weight_negative = t["weight_negative"]
        by_class = {
            "positive": {"count": c["positives"], "weight": _unscaled(weight_positive, self.scale),
                         "mean_loss": _divide(t["loss_positive"], weight_positive),
                         "infinite": c["infinite_positive"]},
            "negative": {"count": c["count"] - c["positives"],
                         "weight": _unscaled(weight_negative, self.scale),
                         "mean_loss": _divide(t["loss_negative"], weight_negative),
                         "infinite": c["infinite"] - c["infinite_positive"]},
        }
        concentration = _concentration(state, t["loss"], weight,
                                       exact["shares"] if exact is not None else None)
        total_loss = t["loss"]
        concentration["confident_mistakes"] = {
            "threshold": CONFIDENT, "rows": c["confident"],
            "weight": _unscaled(t["confident_weight"], self.scale),
            "share_of_loss": t["confident_loss"] / total_loss
            if math.isfinite(total_loss) and total_loss > 0 else math.nan,
        }
        out = {
            **headline,
            "ece": ece,
            "ece_bound": ece_bound,
            "ece_bins": self.bins,
            "ece_exact": exact is not None,
            "decomposition": decomposition,
            "by_class": by_class,
            "concentration": concentration,
            "worst": _worst_rows(state.worst, self.scale),
            "reliability": reliability,
            "loss_histogram": _loss_histogram(state.loss_hist),
        }
        if self.by is not None:
            out["segments"] = self._segments_result(state.segments, t["loss"], max_segments)
        return out

    def _histogram_decomposition(self, state, log_loss, uncertainty, weight):
        neg, pos, wp = state.hist[0], state.hist[1], state.hist[2]
        used = (neg + pos) > 0
        neg, pos, wp = neg[used], pos[used], wp[used]
        starts, pneg, ppos = pool_adjacent_violators(neg, pos)
        upper = _pooled_loss(pneg, ppos) / weight
        # The predictions themselves are an isotonic fit, so the exact recalibrated loss is at
        # most the log loss too: cells 2.5 logits wide (resolution 16) fit worse than that and
        # gave a negative miscalibration, which no data can have.
        if log_loss < upper:
            upper = log_loss
        # each bin split into its negatives then its positives: the best any order could do
        split_neg = np.stack([neg, np.zeros_like(neg)], axis=1).ravel()
        split_pos = np.stack([np.zeros_like(pos), pos], axis=1).ravel()
        keep = (split_neg + split_pos) > 0
        _, lneg, lpos = pool_adjacent_violators(split_neg[keep], split_pos[keep])
        lower = _pooled_loss(lneg, lpos) / weight
        decomposition = _decomposition(log_loss, uncertainty, upper, max(upper - lower, 0.0),
                                       False)
        cells = np.flatnonzero(used)
        edges = prediction_bin_edges(self.resolution)
        ends = np.append(starts[1:], len(neg)) - 1
        wsum = ppos + pneg
        with np.errstate(over="ignore"):
            low = 1 / (1 + np.exp(-edges[cells[starts]]))
            high = 1 / (1 + np.exp(-edges[cells[ends] + 1]))
        pav = {"prediction_low": low.tolist(), "prediction_high": high.tolist(),
               "prediction": (np.add.reduceat(wp, starts) / wsum).tolist(),
               "observed": (ppos / wsum).tolist(),
               "weight": (wsum / weight).tolist(),
               "blocks": len(starts)}
        return decomposition, pav

    def _segments_result(self, sums: np.ndarray, total_loss: float, max_segments: int) -> dict:
        # segments without a row (a reader's key that no kept row had) are not segments
        present = np.flatnonzero(sums[:, 0] > 0)
        order = present[np.lexsort((present, -sums[present, 4], -sums[present, 6]))].tolist()
        shown = order[:max_segments]
        rows = [{"segment": dict(zip(self.by, self.segment_keys[s])),
                 **_segment_figures(sums[s], total_loss, self.scale)} for s in shown]
        folded = order[max_segments:]
        other = None
        if folded:
            rest = sums[folded].sum(axis=0)
            if _past_float64(rest[1], rest[4], rest[6]):
                raise OverflowError(
                    f"The {len(folded)} segments folded into 'other' have a total "
                    "`sample_weight` or weighted loss beyond the float64 range (~1.8e308); show "
                    "them all (max_segments) or scale `sample_weight` down.")
            other = {"segments": len(folded), **_segment_figures(rest, total_loss, self.scale)}
        return {"by": self.by, "total": len(order), "rows": rows, "other": other}

    def _pair_result(self, i, j, pair, max_segments) -> dict:
        out = {"a": self.names[i], "b": self.names[j], **_pair_figures(pair["overall"])}
        if self.by is not None:
            seg = pair["segments"]
            rows = self.models[i].segments[: len(seg), 0]  # segments with a row
            present = np.flatnonzero(rows > 0)
            with np.errstate(over="ignore", under="ignore"):  # |sum w d|, largest first
                mean = np.ldexp(np.abs(seg[present, 2]), seg[present, -1].astype(np.int64))
                size = mean * seg[present, 1]
            order = present[np.lexsort((present, -size))].tolist()
            out["segments"] = [{"segment": dict(zip(self.by, self.segment_keys[s])),
                                **_pair_figures(seg[s])} for s in order[:max_segments]]
            out["segments_total"] = len(order)
        return out


# the weighted columns: of the pair sums (weight and the win weights), of a segment's sums
_PAIR_WEIGHTS = [1, 6, 7, 8]
_SEGMENT_WEIGHTS = slice(1, 6)


def _shift_weights(models, pairs, shift: int) -> None:
    """Multiply every weighted sum of these models and pairs by 2**shift, in place."""
    for state in models:
        for name, total in state.totals.items():
            state.totals[name] = CompensatedSum(math.ldexp(total.hi, shift),
                                                math.ldexp(total.lo, shift))
        state.hist[:4] = np.ldexp(state.hist[:4], shift)
        state.loss_hist[:, :2] = np.ldexp(state.loss_hist[:, :2], shift)
        state.segments[:, _SEGMENT_WEIGHTS] = np.ldexp(state.segments[:, _SEGMENT_WEIGHTS], shift)
        state.worst = dict(state.worst, weight=np.ldexp(state.worst["weight"], shift))
    for pair in pairs.values():
        pair["overall"][_PAIR_WEIGHTS] = np.ldexp(pair["overall"][_PAIR_WEIGHTS], shift)
        pair["segments"][:, _PAIR_WEIGHTS] = np.ldexp(pair["segments"][:, _PAIR_WEIGHTS], shift)


def _weight_copy(state: _ModelState) -> _ModelState:
    """A model's state whose weighted parts may be shifted without touching the original."""
    copy = _ModelState.__new__(_ModelState)
    copy.totals = dict(state.totals)
    copy.counts, copy.caps, copy.scratch = state.counts, state.caps, None
    copy.hist, copy.loss_hist = state.hist.copy(), state.loss_hist.copy()
    copy.segments, copy.worst = state.segments.copy(), dict(state.worst)
    return copy


def _grow(holder, name: str, size: int) -> None:
    array = holder[name] if isinstance(holder, dict) else getattr(holder, name)
    if len(array) < size:
        grown = np.zeros((size, array.shape[1]))
        grown[: len(array)] = array
        if isinstance(holder, dict):
            holder[name] = grown
        else:
            setattr(holder, name, grown)


def _keep_worst(current: dict, new: dict, k: int) -> dict:
    loss = np.concatenate([current["loss"], new["loss"]])
    if not len(loss):
        return current
    order = np.argsort(-loss, kind="stable")[:k]  # ties: the row seen first stays first
    ids = current["id"] + new["id"]
    return {"loss": loss[order], "row": np.concatenate([current["row"], new["row"]])[order],
            "id": [ids[i] for i in order.tolist()],
            "named": np.concatenate([current["named"], new["named"]])[order],
            "label": np.concatenate([current["label"], new["label"]])[order],
            "prediction": np.concatenate([current["prediction"], new["prediction"]])[order],
            "weight": np.concatenate([current["weight"], new["weight"]])[order]}


def _worst_rows(worst: dict, scale: int = 0) -> list[dict]:
    """Each worst row named by the caller's id, else by its position among the rows."""
    return [{"id": i if named else row, "label": int(label), "prediction": float(p),
             "loss": float(loss), "weight": _unscaled(float(w), scale)}
            for i, named, row, label, p, loss, w in zip(
                worst["id"], worst["named"].tolist(), worst["row"].tolist(),
                worst["label"].tolist(), worst["prediction"].tolist(), worst["loss"].tolist(),
                worst["weight"].tolist())]


def _headline(count, weight, label, prediction, loss, brier, infinite) -> dict:
    log_loss = _divide(loss, weight)
    base_rate = _divide(label, weight)
    entropy = _entropy(base_rate) if weight else math.nan
    normalized = _divide(log_loss, entropy) if entropy > 0 else math.nan
    return {
        "log_loss": log_loss,
        "count": int(count),
        "weight": weight,
        "base_rate": base_rate,
        "normalized_entropy": normalized,
        "d2": 1 - normalized if not math.isnan(normalized) else math.nan,
        "brier": _divide(brier, weight),
        "calibration_ratio": _divide(prediction, label),
        "infinite": int(infinite),
    }


def _past_float64(weight, loss, infinite):
    """Whether weighted sums left the float64 range (element-wise for arrays): an infinite total
    weight, or an infinite loss with no infinite row (finite losses whose sum overflowed: the
    mean is finite, so "inf" would be a wrong number; refused, as Accumulator does)."""
    return np.isinf(weight) | (np.isinf(loss) & (np.asarray(infinite) == 0))


def _segment_figures(sums: np.ndarray, total_loss: float, scale: int = 0) -> dict:
    count, weight, label, prediction, loss, brier, infinite = sums.tolist()
    figures = _headline(count, weight, label, prediction, loss, brier, infinite)
    figures["weight"] = _unscaled(weight, scale)
    share = math.nan
    if math.isfinite(total_loss) and total_loss > 0:
        share = loss / total_loss
    figures["share_of_loss"] = share
    return figures


def _histogram_bins(hist, bins, weight, total_loss) -> list[dict]:
    """The equal-mass bins cut from the prediction histogram: each cell is taken as one
    prediction (exact when it holds one value, else its contents are split in proportion)."""
    cell_weight = hist[0] + hist[1]
    used = cell_weight > 0
    return _equal_mass_bins(cell_weight[used], hist[2][used], hist[1][used], hist[3][used],
                            bins, weight, total_loss)


def _probability_histogram(hist, resolution, weight, bins: int = 40) -> dict:
    """Share of the weight in ``bins`` equal bins of predicted probability, from the logit
    histogram (each cell counted where its centre falls)."""
    edges = prediction_bin_edges(resolution)
    centres = np.concatenate([[-math.inf], (edges[1:-2] + edges[2:-1]) / 2, [math.inf]])
    with np.errstate(over="ignore"):
        p = 1 / (1 + np.exp(-centres))
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    shares = np.bincount(index, weights=hist[0] + hist[1], minlength=bins) / weight
    return {"edges": np.linspace(0, 1, bins + 1).tolist(), "weight": shares.tolist()}


def _histogram_ece_bound(hist, bins: int, weight: float, resolution: int) -> float:
    """How far the ECE of the histogram's bins can be from the exact one. Cells wholly inside
    a bin carry their exact sums; only a cell cut by a bin boundary is split in proportion, where
    the exact bins take its lowest predictions first. For a piece of weight ``part`` of a cell
    with weight ``n + y`` (negatives, positives) and predictions in [lo, hi], the exact piece's
    weighted labels lie in [max(0, part - n), min(part, y)] and its weighted predictions within
    part (hi - lo) of the proportional share: each bin's |sum w p - sum w y| moves by at most the
    sum over its (at most two) cut pieces."""
    cell_weight = hist[0] + hist[1]
    used = np.flatnonzero(cell_weight > 0)
    if not len(used) or not weight > 0:
        return math.nan
    cw, neg, pos = cell_weight[used], hist[0][used], hist[1][used]
    with np.errstate(over="ignore"):
        p_edges = 1 / (1 + np.exp(-prediction_bin_edges(resolution)))  # 0 .. 1, tails included
    width = p_edges[used + 1] - p_edges[used]
    # the cuts of _equal_mass_bins: bin b ends `fraction[b]` into used cell `cut[b]`
    ends = np.cumsum(cw)
    targets = weight * (np.arange(1, bins) / bins)  # as _equal_mass_bins cuts them
    cut = np.minimum(np.searchsorted(ends, targets, side="right"), len(cw) - 1)
    fraction = np.clip((targets - (ends[cut] - cw[cut])) / cw[cut], 0.0, 1.0)

    # the pieces in shares of the total weight (the cuts above stay as _equal_mass_bins makes
    # them): their sum in weights passed 1.8e308 with a total near it, an ECE bound of inf
    cws, negs, poss = cw / weight, neg / weight, pos / weight

    def piece(c: int, share: float) -> float:
        if not 0 < share < 1:
            return 0.0  # the whole cell, or none of it: exact
        part = share * cws[c]
        estimate = share * poss[c]
        labels = max(estimate - max(0.0, part - negs[c]), min(part, poss[c]) - estimate)
        return labels + part * width[c]

    total = 0.0
    lo_index, lo_fraction = 0, 0.0
    for b in range(bins):
        if b < bins - 1:
            hi_index, hi_fraction = int(cut[b]), float(fraction[b])
        else:
            hi_index, hi_fraction = len(cw) - 1, 1.0
        if hi_index == lo_index:
            total += piece(lo_index, hi_fraction - lo_fraction)
        else:
            total += piece(lo_index, 1.0 - lo_fraction) + piece(hi_index, hi_fraction)
        lo_index, lo_fraction = hi_index, hi_fraction
    return total


def _ece(bins: list[dict], weight: float) -> float:
    return math.fsum(b["weight"] * abs(b["prediction"] - b["observed"]) for b in bins) / weight


def _loss_histogram(loss_hist) -> dict:
    edges = loss_bin_edges()
    return {"edges": [e if math.isfinite(e) else None for e in edges.tolist()],
            "negative": loss_hist[0, 2].astype(np.int64).tolist(),
            "positive": loss_hist[1, 2].astype(np.int64).tolist()}


def _concentration(state, total_loss, weight, exact_shares) -> dict:
    """Share of the loss from the worst rows (by weight), and the rows past each framework cap."""
    count = state.counts["count"]
    infinite = state.counts["infinite"]
    hist = state.loss_hist.sum(axis=0)  # (weight, loss, count) per bin, both classes
    edges = loss_bin_edges()
    finite_total = total_loss if math.isfinite(total_loss) else math.nan
    # the Lorenz curve from the histogram, worst first; a partly taken bin counted at its mean
    cw = np.cumsum(hist[0][::-1])
    cl = np.cumsum(hist[1][::-1])
    curve = []  # none without a finite loss to share (every row exact: 0 / 0)
    if math.isfinite(finite_total) and finite_total > 0:
        curve = [[0.0, 0.0]] + [[float(a / weight), float(b / finite_total)]
                                for a, b in zip(cw, cl) if a > 0]
    shares = []
    for q in CONCENTRATION_SHARES:
        if exact_shares is not None:
            value, bound = exact_shares[q], 0.0
        else:
            value, bound = _histogram_share(hist, edges, q * weight, finite_total)
        shares.append({"rows": q, "share_of_loss": value, "bound": bound})
    return {
        "worst": shares,
        "exact": exact_shares is not None,
        "curve": curve,
        "caps": [{"framework": name, "cap": cap, "rows_above": state.caps[name]}
                 for name, cap in CAPS.items()],
        "infinite": infinite,
        "count": count,
    }


def _histogram_share(hist, edges, target, total):
    if not (math.isfinite(total) and total > 0):
        return math.nan, math.nan
    w, loss = hist[0][::-1], hist[1][::-1]
    hi_edges = edges[1:][::-1]
    taken_w = taken_l = 0.0
    for cw, cl, hi in zip(w.tolist(), loss.tolist(), hi_edges.tolist()):
        if cw <= 0:
            continue
        if taken_w + cw >= target:
            # the worst `part` of this bin carries at least its mean share, at most all of it
            part = target - taken_w
            # part / cw first: the product part * cl leaves float64 with weights of 1e200
            # (1e400) and loses its digits below it with weights of 1e-200
            estimate = taken_l + cl * (part / cw)
            # a bin is found from a log, within 1e-11 of its position (4.6e-13 of the loss): a
            # loss a few ulps above an edge can sit in the bin below it (3.6e-15 above, found)
            high = taken_l + min(part * (hi * (1 + LOSS_BIN_SLIP)), cl)
            return estimate / total, max(high - estimate, 0.0) / total
        taken_w += cw
        taken_l += cl
    return taken_l / total, 0.0


# -- paired comparison ------------------------------------------------------------------------


def _add_pair(pair, loss_a, loss_b, weight, segment_rows, size) -> None:
    w = np.ones(len(loss_a)) if weight is None else weight
    live = w > 0
    with np.errstate(invalid="ignore"):
        d = loss_b - loss_a
    inf_a = np.isinf(loss_a) & np.isfinite(loss_b) & live
    inf_b = np.isinf(loss_b) & np.isfinite(loss_a) & live
    finite = np.isfinite(d) & live
    tied = (loss_a == loss_b) & live  # both infinite ties too
    a_better = (loss_a < loss_b) & live
    b_better = (loss_b < loss_a) & live
    wf = np.where(finite, w, 0.0)
    df = np.where(finite, d, 0.0)
    flags = [finite, np.where(a_better, w, 0.0), np.where(b_better, w, 0.0),
             np.where(tied, w, 0.0), inf_a, inf_b]
    pair["overall"] = _merge_pair(pair["overall"][None],
                                  _pair_sums(np.zeros(len(d), dtype=np.int64), 1, wf, df, flags))[0]
    if segment_rows is not None:
        pair["segments"] = _merge_pair(pair["segments"],
                                       _pair_sums(segment_rows, size, wf, df, flags))


def _pair_sums(codes, n, wf, df, flags) -> np.ndarray:
    """One batch's pair sums per group (the _PAIR columns): each row's weight enters as its
    share of its group's weight, s = w / W, so the squared weights are the squared shares (at
    most 1) and weights of 1e200 (squares past float64) or 1e-300 (squares below it) give the
    same figures as weights of 1; deviations are about the group's batch mean. Differences
    enter in units of 2**scale, scale the exponent of the group's largest |d| (0 for none)."""
    finite, a_better, b_better, tied, inf_a, inf_b = flags
    if n == 1:  # one group: no per-row units to gather
        peak = np.array([max(float(df.max()), -float(df.min())) if len(df) else 0.0])
    else:
        peak = np.zeros(n)
        np.maximum.at(peak, codes, np.abs(df))  # df is finite: the rest are 0
    scale = np.frexp(peak)[1]
    if scale.any():
        with np.errstate(under="ignore"):  # |d| far below the group's largest: negligible
            df = np.ldexp(df, -(int(scale[0]) if n == 1 else scale[codes]))
    # a total weight past float64 (inf) leaves shares of 0 or NaN here; result() refuses it
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        W = np.bincount(codes, wf, n)
        total = W[codes]
        share = np.where(total > 0, wf / total, 0.0)
        mean = np.bincount(codes, share * df, n)
        dev = np.where(finite, df - mean[codes], 0.0)
        s2 = share * share
        return np.stack([
            np.bincount(codes, finite.astype(np.float64), n), W, mean,
            np.bincount(codes, s2, n), np.bincount(codes, s2 * dev, n),
            np.bincount(codes, s2 * dev * dev, n),
            np.bincount(codes, a_better, n), np.bincount(codes, b_better, n),
            np.bincount(codes, tied, n),
            np.bincount(codes, inf_a.astype(np.float64), n),
            np.bincount(codes, inf_b.astype(np.float64), n),
            scale.astype(np.float64),
        ], axis=1)


def _merge_pair(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fold the pair sums y into x, row by row: Chan et al.'s parallel update of weighted
    moments about each side's own mean, in shares of the weight. With r = W1 / W and
    d = m1 - m, side 1's sum of s^2 (x - m)^2 about the merged mean m, in shares of W, is
    r^2 (C1 + 2 d B1 + d^2 A1); no large sums cancel and no weight is squared. A side without
    weight (r = 0, or r = 1 for the other) leaves the other exactly as it was. Both sides'
    differences are first put in the larger of their units (a power of two: exact but where a
    part far below the other underflows, a vanishing part of the sums); a side whose difference
    sums are all 0 (no row, or every d = 0) has no say in the units."""
    x, y = _in_pair_units(x, y)
    out = x + y
    W1, m1, A1, B1, C1 = x[:, 1], x[:, 2], x[:, 3], x[:, 4], x[:, 5]
    W2, m2, A2, B2, C2 = y[:, 1], y[:, 2], y[:, 3], y[:, 4], y[:, 5]
    W = out[:, 1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # W = inf: refused
        r1 = np.where(W > 0, W1 / W, 0.0)
        r2 = np.where(W > 0, W2 / W, 0.0)
        r1 = np.where(W2 > 0, r1, np.where(W1 > 0, 1.0, 0.0))  # exact where one side is empty
        r2 = np.where(W1 > 0, r2, np.where(W2 > 0, 1.0, 0.0))
        m = np.where(W1 > 0, np.where(W2 > 0, r1 * m1 + r2 * m2, m1), m2)
        d1, d2 = m1 - m, m2 - m
        q1, q2 = r1 * r1, r2 * r2
        out[:, 2] = m
        out[:, 3] = q1 * A1 + q2 * A2
        out[:, 4] = q1 * (B1 + d1 * A1) + q2 * (B2 + d2 * A2)
        out[:, 5] = (q1 * (C1 + 2 * d1 * B1 + d1 * d1 * A1)
                     + q2 * (C2 + 2 * d2 * B2 + d2 * d2 * A2))
    out[:, -1] = x[:, -1]
    return out


def _in_pair_units(x: np.ndarray, y: np.ndarray):
    """x and y with their difference sums (mean, share2_dev; share2_dev2 in squared units) in
    the same units: the larger scale of the sides with a say (new arrays where one moves)."""
    says = [(side[:, 2] != 0) | (side[:, 4] != 0) | (side[:, 5] != 0) for side in (x, y)]
    k1, k2 = x[:, -1], y[:, -1]
    scale = np.where(says[0] & ~says[1], k1,
                     np.where(says[1] & ~says[0], k2, np.maximum(k1, k2)))
    moved = []
    for side, say in zip((x, y), says):
        shift = np.where(say, side[:, -1] - scale, 0.0).astype(np.int64)
        if shift.any():
            side = side.copy()
            with np.errstate(under="ignore"):
                side[:, [2, 4]] = np.ldexp(side[:, [2, 4]], shift[:, None])
                side[:, 5] = np.ldexp(side[:, 5], 2 * shift)
        if not np.array_equal(side[:, -1], scale):
            side = side.copy()
            side[:, -1] = scale
        moved.append(side)
    return moved


_STATE_VERSION = 5  # 5: infinite values written as "inf" (strict JSON)
_STATE_KEYS = ("kind", "version", "settings", "names", "by", "rows", "scale", "segment_keys",
               "models", "pairs")
# every saved pair sum but the mean difference and sum s^2 (d - mean), of either sign
_PAIR_UNSIGNED = np.array([i not in (2, 4) for i in range(len(_PAIR) - 1)])


def _load_model(mine: _ModelState, model, where: str, version: int, state, segments: int):
    """One model's saved sums into ``mine``, every field checked (see from_dict)."""
    saved.mapping(model, where, ("totals", "counts", "caps", "hist", "loss_hist", "worst",
                                 "segments"))
    totals = saved.mapping(model["totals"], f"{where}['totals']", _TOTALS)
    for name in _TOTALS:
        field = f"{where}['totals'][{name!r}]"
        pair = saved.sequence(totals[name], field, 2)
        hi = saved.number(pair[0], f"{field}[0]", infinite=True)
        lo = saved.number(pair[1], f"{field}[1]", signed=True)
        if math.isfinite(hi) and abs(lo) > hi:
            raise ValueError(f"`{field}` is not a compensated pair [hi, lo]: |lo| ({lo!r}) must "
                             f"not exceed hi ({hi!r}).")
        mine.totals[name] = CompensatedSum(hi, lo if math.isfinite(hi) else 0.0)
    counts = saved.mapping(model["counts"], f"{where}['counts']", _COUNTS)
    mine.counts = {name: saved.integer(counts[name], f"{where}['counts'][{name!r}]", 0)
                   for name in _COUNTS}
    count = mine.counts["count"]
    caps = saved.mapping(model["caps"], f"{where}['caps']", CAPS)
    mine.caps = {name: saved.integer(caps[name], f"{where}['caps'][{name!r}]", 0, count)
                 for name in CAPS}
    c = mine.counts
    if (count > state.rows or max(c["positives"], c["infinite"], c["confident"]) > count
            or c["infinite_positive"] > min(c["infinite"], c["positives"])):
        raise ValueError(f"`{where}['counts']` are inconsistent: {dict(c)} for {state.rows} rows "
                         "(positives, infinite and confident cannot exceed count, nor count the "
                         "rows, nor infinite_positive infinite or positives).")
    if c["infinite"] and math.isfinite(mine.totals["loss"].hi):
        raise ValueError(f"`{where}` is inconsistent: {c['infinite']} infinite losses but a "
                         f"finite loss total ({mine.totals['loss'].hi!r}).")
    # sums of non-negative terms: +inf where a loss is infinite or huge weights overflowed
    # (result() then says which); never NaN or negative
    mine.hist = saved.array(model["hist"], f"{where}['hist']",
                            (len(_HIST), state.resolution + 2), infinite=True)
    mine.loss_hist = saved.array(model["loss_hist"], f"{where}['loss_hist']", (2, 3, LOSS_BINS),
                                 infinite=True)
    # both histograms count every row once: cut or edited, their figures would not be the rows'
    cells = (math.fsum(mine.hist[_HIST.index("count")]), math.fsum(mine.loss_hist[:, 2].ravel()),
             math.fsum(mine.loss_hist[1, 2]))
    if cells[0] != count or cells[1] != count or cells[2] != c["positives"]:
        raise ValueError(f"`{where}`: the saved histograms count {cells[0]:g} and {cells[1]:g} "
                         f"rows ({cells[2]:g} positives) where the counts say {count} "
                         f"({c['positives']} positives).")
    worst = model["worst"]
    fields = ("loss", "row", "id", "named", "label", "prediction", "weight")
    old = ("loss", "id", "label", "prediction", "weight")  # version 1 kept no positions
    saved.mapping(worst, f"{where}['worst']", old if version == 1 else fields)
    lengths = {len(saved.sequence(worst[name], f"{where}['worst'][{name!r}]")) for name in worst}
    count_worst = len(worst["loss"])
    if len(lengths) != 1 or count_worst > state.k:
        raise ValueError(f"The saved worst rows have fields of lengths {sorted(lengths)}; they "
                         f"must be one length, at most k = {state.k}.")
    field = f"{where}['worst']"
    loss = saved.array(worst["loss"], f"{field}['loss']", (count_worst,), infinite=True)
    rows = [saved.integer(r, f"{field}['row'][{i}]", -1, max(state.rows - 1, -1))
            for i, r in enumerate(worst["row"])] if version >= 2 else [-1] * count_worst
    named = [saved.boolean(v, f"{field}['named'][{i}]") for i, v in enumerate(worst["named"])] \
        if version >= 2 else [True] * count_worst
    labels = [saved.integer(int(v) if isinstance(v, bool) else v, f"{field}['label'][{i}]", 0, 1)
              for i, v in enumerate(worst["label"])]
    prediction = saved.array(worst["prediction"], f"{field}['prediction']", (count_worst,),
                             signed=state.from_logits)
    if not state.from_logits and (prediction > 1).any():
        i = int(np.argmax(prediction > 1))
        raise ValueError(f"`{field}['prediction'][{i}]` must be a probability in [0, 1]. "
                         f"Received {prediction[i]!r}.")
    for i, value in enumerate(worst["id"]):
        if value is not None and not isinstance(value, (str, int, float)):
            raise TypeError(f"`{field}['id'][{i}]` must be a string, a number, true, false or "
                            f"null. Received {value!r:.80}.")
    if (loss[1:] > loss[:-1]).any():
        raise ValueError(f"`{field}['loss']` must list the worst rows worst first. Received "
                         f"{worst['loss']!r:.80}.")
    mine.worst = {"loss": loss, "row": np.array(rows, dtype=np.int64), "id": list(worst["id"]),
                  "named": np.array(named, dtype=bool), "label": np.array(labels, dtype=bool),
                  "prediction": prediction,
                  "weight": saved.array(worst["weight"], f"{field}['weight']", (count_worst,))}
    segment_rows = model["segments"]
    if not isinstance(segment_rows, list) or len(segment_rows) != segments:
        found = len(segment_rows) if isinstance(segment_rows, list) else repr(segment_rows)[:40]
        raise ValueError(f"The saved segments have {found} rows for {segments} segment keys.")
    mine.segments = saved.array(segment_rows, f"{where}['segments']", (segments, len(_SEGMENT)),
                                infinite=True)


def _check_pair_sums(values: np.ndarray, where: str) -> None:
    """Every pair sum but the signed ones (one row, or one per segment) is non-negative."""
    bad = (values < 0) & _PAIR_UNSIGNED
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise ValueError(f"`{where}{''.join(f'[{i}]' for i in index)}` ({_PAIR[index[-1]]}) must "
                         f"be non-negative. Received {values[index]!r}.")


def _saved_pair_scale(value, field: str) -> int:
    """A pair's saved difference scale: only what to_dict writes (the exponent of a finite
    difference, or 0); any other would multiply the mean and standard error by 2**(error)."""
    low, high = _PAIR_SCALES
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"The saved pair field `{field}` (the exponent of the differences' "
                         f"units) must be an integer in [{low}, {high}]. Received {value!r}.")
    return value


def _times_power_of_two(value: float, scale: int) -> float:
    """value * 2**scale; past float64, inf (as the product would be)."""
    try:
        return math.ldexp(value, scale)
    except OverflowError:
        return math.copysign(math.inf, value)


def _pair_from_sums(sums: np.ndarray) -> np.ndarray:
    """Pair rows saved by version 1 or 2 (plain sums: sum w d, sum w^2, sum w^2 dev,
    sum w^2 dev^2) in the shares of version 3 (mean, and each sum over W^2)."""
    out = sums.copy()
    W = sums[:, 1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for column in (3, 4, 5):
            out[:, column] = np.where(W > 0, sums[:, column] / W / W, 0.0)
        out[:, 2] = np.where(W > 0, sums[:, 2] / W, 0.0)
    return out


def _pair_figures(sums: np.ndarray) -> dict:
    count, weight, mean, _, _, dev2, a_better, b_better, tied, inf_a, inf_b, scale = sums.tolist()
    scale = int(scale)
    live = a_better + b_better + tied
    if inf_a and inf_b:
        mean = math.nan
    elif inf_a:
        mean = -math.inf  # a is infinitely worse on some row
    elif inf_b:
        mean = math.inf
    else:
        mean = _times_power_of_two(mean, scale) if weight > 0 else math.nan
    se = math.nan
    if count > 1 and weight > 0 and not (inf_a or inf_b):
        # sum w^2 (d - mean)^2 / W^2 is dev2 itself: it is kept in shares of the weight
        se = _times_power_of_two(math.sqrt(count / (count - 1) * dev2), scale)
    low = mean - Z_95 * se if math.isfinite(se) else math.nan
    high = mean + Z_95 * se if math.isfinite(se) else math.nan
    return {
        "mean_difference": mean,  # mean of loss_b - loss_a: negative when b is better
        "standard_error": se,
        "interval_95": [low, high],
        "a_better": _divide(a_better, live),
        "b_better": _divide(b_better, live),
        "tied": _divide(tied, live),
        "count": int(count),
        "infinite_a": int(inf_a),
        "infinite_b": int(inf_b),
    }


# -- exact, in memory --------------------------------------------------------------------------


def _exact_parts(batch, arrays: dict, bins: int) -> dict:
    """What the histograms approximate, computed exactly from the rows: everything here works
    on the sorted unique predictions, each with the weight of its negatives and positives.
    The concentration shares (a sort of their own) are computed on another thread meanwhile."""

    def grouped_and_pooled():
        if batch.weight is None and arrays["key"] is arrays["p"]:
            groups = ordering.probability_groups(batch.y, arrays["p"])
        else:
            groups = ordering.key_groups(arrays["key"], batch.y, arrays["p"], arrays["loss"],
                                         batch.weight)
        # zero-weight rows are left out of the groups: they pool with nothing
        return groups, pool_adjacent_violators(groups[1], groups[2])

    def concentration():
        rows = float(len(batch.y)) if batch.weight is None else float(np.sum(batch.w))
        return _exact_shares(arrays["loss"], batch.weight, rows)

    tasks = (grouped_and_pooled, concentration)
    (groups, pooled), shares = chunked.run_chunks(lambda i: tasks[i](), len(tasks))
    p_u, neg, pos, wp, wloss, weight = groups
    block_starts, pneg, ppos = pooled
    weight_total = math.fsum(weight.tolist()) if len(weight) < 1 << 16 else float(np.sum(weight))
    recalibrated = _pooled_loss(pneg, ppos) / weight_total
    block_ends = np.append(block_starts[1:], len(p_u)) - 1
    block_weight = ppos + pneg
    pav = {"prediction_low": p_u[block_starts].tolist(),
           "prediction_high": p_u[block_ends].tolist(),
           "prediction": (np.add.reduceat(wp, block_starts) / block_weight).tolist(),
           "observed": (ppos / block_weight).tolist(),
           "weight": (block_weight / weight_total).tolist(),
           "blocks": len(block_starts)}
    total_loss = float(np.sum(wloss))
    table = _equal_mass_bins(weight, wp, pos, wloss, bins, weight_total, total_loss)
    ece = _ece(table, weight_total)
    return {"recalibrated": recalibrated, "pav": pav, "bins": table, "ece": ece,
            "shares": shares}


def _part(value: float, fraction: float) -> float:
    """A share of a group's sum; none of it is 0 even when the sum is infinite."""
    return value * fraction if fraction > 0 else 0.0


def _equal_mass_bins(weight, wp, pos, wloss, bins, weight_total, total_loss) -> list[dict]:
    """Equal-mass bins over the sorted unique predictions: bin b holds the weight between
    b/bins and (b+1)/bins of the total, and a prediction whose weight straddles a boundary is
    split in proportion (so ties, whose order means nothing, are never split by it)."""
    ends = np.cumsum(weight)
    # b / bins first: weight_total * b leaves float64 for totals above 1.8e308 / bins
    edges = weight_total * (np.arange(1, bins) / bins)
    cut = np.minimum(np.searchsorted(ends, edges, side="right"), len(weight) - 1)
    start_of_cut = ends[cut] - weight[cut]
    fraction = np.clip((edges - start_of_cut) / weight[cut], 0.0, 1.0)
    quantities = (weight, wp, pos, wloss)
    rows = []
    lo_index, lo_fraction = 0, 0.0  # the bin starts `lo_fraction` into group lo_index
    for b in range(bins):
        if b < bins - 1:
            hi_index, hi_fraction = int(cut[b]), float(fraction[b])
        else:
            hi_index, hi_fraction = len(weight) - 1, 1.0
        sums = []
        for q in quantities:
            if hi_index == lo_index:
                total = _part(q[lo_index], hi_fraction - lo_fraction)
            else:
                total = (_part(q[lo_index], 1 - lo_fraction) + np.sum(q[lo_index + 1:hi_index])
                         + _part(q[hi_index], hi_fraction))
            sums.append(float(total))
        W, P, Y, L = sums
        if W > 0:
            rows.append({"prediction": P / W, "observed": Y / W, "weight": W,
                         "mean_loss": L / W,
                         "share_of_loss": L / total_loss
                         if math.isfinite(total_loss) and total_loss > 0 else math.nan})
        lo_index, lo_fraction = hi_index, hi_fraction
    return rows


def _exact_shares(loss: np.ndarray, weight, weight_total: float) -> dict:
    """Share of the total loss from the worst q of the rows (by weight; the row at the boundary
    counted in part), for each q of CONCENTRATION_SHARES."""
    targets = [q * weight_total for q in CONCENTRATION_SHARES]  # ascending
    if weight is None:
        total = float(np.sum(loss))
        n = len(loss)
        top = min(n, math.ceil(max(CONCENTRATION_SHARES) * n) + 1)
        worst = np.sort(np.partition(loss, n - top)[n - top:])[::-1]
        cum_l = np.cumsum(worst)
        rows = []
        for target in targets:
            i = min(math.ceil(target) - 1 if target > 0 else 0, top - 1)  # cum_w[i] = i + 1
            rows.append((float(i), cum_l[i - 1] if i else 0.0, float(i + 1), cum_l[i]))
    else:
        total, rows = ordering.worst_first(loss, weight, targets)
    if not (math.isfinite(total) and total > 0):
        return dict.fromkeys(CONCENTRATION_SHARES, math.nan)
    shares = {}
    for q, target, (before_w, before_l, cum_w, cum_l) in zip(CONCENTRATION_SHARES, targets, rows):
        row_w, row_l = cum_w - before_w, cum_l - before_l
        # the fraction of the boundary row taken first: row_l * (target - before_w) overflows
        # with weights of 1e200 and underflows with weights of 1e-200
        taken = before_l + (row_l * ((target - before_w) / row_w) if row_w > 0 else 0.0)
        shares[q] = float(taken / total)
    return shares


def diagnose_numbers(y_true, y_pred, *, sample_weight=None, from_logits: bool = False, by=None,
                     ids=None, k: int = DEFAULTS["k"], bins: int = DEFAULTS["bins"],
                     resolution: int = DEFAULTS["resolution"],
                     max_segments: int = DEFAULTS["max_segments"]):
    """The diagnostics of rows in memory: the state, and its figures with the decomposition,
    calibration bins and concentration computed exactly from the rows. Returns (state, figures).
    """
    state = DiagnosticsState(from_logits=from_logits, k=k, bins=bins, resolution=resolution)
    check_setting("max_segments", max_segments)
    # tiny weights in units of their largest power of two, here as in update(): the exact
    # figures below read these same weights
    sample_weight = state._in_state_units(sample_weight)
    fast = state._add_compiled(y_true, y_pred, sample_weight, by, ids, keep_losses=True,
                               in_units=True)
    if fast is not None:
        if not state.models[0].totals["weight"].value > 0:
            raise ValueError("The total `sample_weight` is zero, so the weighted figures are "
                             "undefined.")
        rows = _Rows(fast.y, fast.w)
        models = []
        for x, loss in zip(fast.xs, fast.losses):
            p = x.astype(np.float64, copy=False)
            if state.from_logits:
                with np.errstate(over="ignore"):
                    models.append({"p": np.exp(-np.logaddexp(0.0, -p)), "key": p, "loss": loss})
            else:
                models.append({"p": p, "key": p, "loss": loss})
    else:
        rows = _Batch(y_true, y_pred, sample_weight=sample_weight,
                      from_logits=state.from_logits, by=by, ids=ids)
        if rows.n == 0:
            raise ValueError("`y_true` is empty: there is nothing to diagnose.")
        with np.errstate(over="ignore"):  # past the float64 range: refused just below
            if not np.sum(rows.w) > 0:
                raise ValueError("The total `sample_weight` is zero, so the weighted figures "
                                 "are undefined.")
        state._add(rows)
        models = rows.models
    state._check_range()  # totals past the float64 range: refused before the exact figures
    exact = [_exact_parts(rows, arrays, state.bins) for arrays in models]
    return state, state._result(max_segments=max_segments, exact=exact)


class _Rows:
    """What the exact in-memory figures read of a batch the compiled kernel took: labels as
    booleans, the weights (None without) and ``w`` (ones without)."""

    def __init__(self, y: np.ndarray, weight):
        self.y = y if y.dtype == np.bool_ else y != 0
        self.weight = None if weight is None else weight.astype(np.float64, copy=False)
        self._w = None

    @property
    def w(self) -> np.ndarray:
        if self._w is None:
            self._w = np.ones(len(self.y)) if self.weight is None else self.weight
        return self._w
