"""``logloss score``: exact log loss of prediction files, streamed batch by batch.

A reader thread pulls column batches from :mod:`logloss._io` (pyarrow decodes on its own
threads and releases the GIL) into a small bounded queue; the calling thread checks each batch
with cheap vectorized tests (so every rejected row is named by file, row, column and value),
then feeds :class:`logloss.Accumulator` (one per ``--by`` group). The common batch (0/1 integer
labels, probabilities, no weights or groups) is checked and summed in one chunked pass
(``_fast.hard_label_sums``); only a batch it declines is checked row by row. Memory is a few
batches, whatever the file size.
"""

from __future__ import annotations

import math
import queue
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _fast
from ._accumulator import Accumulator
from ._io import DataError, Source, UsageError, unreadable
from ._validation import InfiniteLossWarning

LABEL_NAMES = ("label", "labels", "y", "y_true", "target", "click", "clicked", "clicks",
               "is_click", "outcome", "truth", "actual", "class")
PRED_NAMES = ("pred", "prediction", "predictions", "prob", "probability", "proba", "p",
              "score", "y_pred", "y_prob", "y_score", "yhat", "y_hat", "pctr", "ctr")
LOGIT_NAMES = ("logit", "logits", "margin", "raw_score", "z")

REASON_TEXT = {
    "missing": "is missing",
    "non_numeric": "is not a number",
    "nan": "is NaN",
    "out_of_range": "is not a probability in [0, 1] (pass --logits for logits)",
    "not_binary": "is neither 0 nor 1 (pass --positive VALUE for other labels)",
    "not_positive_or_negative": "is neither the --positive value nor the negative label",
    "bad_weight": "is not a finite, non-negative weight",
}


@dataclass
class Options:
    label: str | None = None
    pred: str | None = None
    weight: str | None = None
    by: list[str] = field(default_factory=list)
    logits: bool = False
    positive: str | None = None
    negative: str | None = None
    on_invalid: str = "error"
    # Makes the per-group state (default: an exact Accumulator); `--clip`, `--convention` and
    # `logloss compare` hand in their own (see _cli_compare).
    make_accumulator: object = None


def _new_accumulator(options: Options) -> Accumulator:
    if options.make_accumulator is not None:
        return options.make_accumulator()
    return Accumulator(from_logits=options.logits)


class _NeedsTextRead(Exception):
    """A CSV column changed type mid-file: read it again with the columns as text."""


def pick_columns(names: list[str], options: Options, source: str) -> dict[str, str | None]:
    """The label/pred/weight/by columns to read, detected from common names when not given."""
    lowered = {n.lower(): n for n in names}
    listing = ", ".join(repr(n) for n in names)

    def chosen(role: str, given: str | None, candidates) -> str:
        if given is not None:
            if given not in names:
                raise UsageError(f"{source}: no column {given!r} (for {role}). "
                                 f"The columns are: {listing}.")
            return given
        for candidate in candidates:
            if candidate in lowered:
                return lowered[candidate]
        flag = "--label" if role == "labels" else "--pred"
        raise UsageError(f"{source}: cannot tell which column holds the {role}; pass {flag} COL. "
                         f"The columns are: {listing}.")

    label = chosen("labels", options.label, LABEL_NAMES)
    pred_candidates = LOGIT_NAMES + PRED_NAMES if options.logits else PRED_NAMES
    pred = chosen("predictions", options.pred, [c for c in pred_candidates if c != label.lower()])
    weight = chosen("weights", options.weight, ()) if options.weight else None
    for column in options.by:
        chosen("--by", column, ())
    return {"label": label, "pred": pred, "weight": weight}


# -- turning a column batch into checked NumPy arrays ----------------------------------------


def _is_arrow(array) -> bool:
    return not isinstance(array, np.ndarray)


def _numeric(array, reasons: dict, role: str):
    """float/int NumPy values of a column; marks missing and non-numeric rows in ``reasons``."""
    if not _is_arrow(array):
        if array.dtype.kind not in "biuf":
            return _numeric(__import__("pyarrow").array(array.astype(str)), reasons, role)
        return array
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc  # only here: importing it costs ~40 ms per run

        try:
            array = pc.cast(array, pa.float64())
        except pa.ArrowInvalid:
            values = np.empty(len(array), dtype=np.float64)
            for i, text in enumerate(array.to_pylist()):
                try:
                    values[i] = float(text) if text is not None else 0.0
                except ValueError:
                    values[i] = 0.0
                    _mark(reasons, role, "non_numeric", i, len(array))
            array = pa.array(values, mask=array.is_null().to_numpy(zero_copy_only=False))
    elif not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
              or pa.types.is_boolean(array.type) or pa.types.is_null(array.type)):
        raise DataError(f"the {role} column has type {array.type}, which is not numeric")
    if array.null_count:
        for i in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)):
            _mark(reasons, role, "missing", int(i), len(array))
        array = array.fill_null(0)
    if pa.types.is_null(array.type):
        return np.zeros(len(array), dtype=np.float64)
    return array.to_numpy(zero_copy_only=False)


def _mark(reasons: dict, role: str, reason: str, index, n: int) -> None:
    """Record ``reason`` for the rows ``index`` (an int or a boolean mask) of a batch."""
    key = (role, reason)
    mask = reasons.get(key)
    if mask is None:
        mask = reasons[key] = np.zeros(n, dtype=bool)
    mask[index] = True


def _check_probabilities(p: np.ndarray, reasons: dict, logits: bool) -> None:
    if p.dtype.kind == "f":
        if logits:
            if np.isnan(np.sum(p)):  # fast path: a sum is NaN if any element is (or inf - inf)
                nan = np.isnan(p)
                if nan.any():
                    _mark(reasons, "pred", "nan", nan, len(p))
            return
        if len(p) and p.min() >= 0 and p.max() <= 1:  # NaN fails both comparisons
            return
        nan = np.isnan(p)
        if nan.any():
            _mark(reasons, "pred", "nan", nan, len(p))
        outside = ~nan & ~((p >= 0) & (p <= 1))
        if outside.any():
            _mark(reasons, "pred", "out_of_range", outside, len(p))
    elif not logits and len(p) and not (p.min() >= 0 and p.max() <= 1):
        _mark(reasons, "pred", "out_of_range", (p < 0) | (p > 1), len(p))


def _check_labels(y: np.ndarray, reasons: dict) -> None:
    if not len(y) or y.dtype.kind == "b":
        return
    if y.dtype.kind in "iu":
        if y.min() >= 0 and y.max() <= 1:
            return
        _mark(reasons, "label", "not_binary", (y < 0) | (y > 1), len(y))
        return
    binary = (y == 0) | (y == 1)
    if binary.all():
        return
    nan = np.isnan(y)
    if nan.any():
        _mark(reasons, "label", "nan", nan, len(y))
    if (~binary & ~nan).any():
        _mark(reasons, "label", "not_binary", ~binary & ~nan, len(y))


def _check_weights(w: np.ndarray, reasons: dict) -> None:
    if len(w) and w.dtype.kind == "f" and not (w.min() >= 0 and np.isfinite(w.max())):
        _mark(reasons, "weight", "bad_weight", ~(np.isfinite(w) & (w >= 0)), len(w))
    elif len(w) and w.dtype.kind in "iu" and w.min() < 0:
        _mark(reasons, "weight", "bad_weight", w < 0, len(w))


class _LabelMapper:
    """``--positive VALUE``: that value is 1, one other value (``--negative`` or the first seen) is 0."""

    def __init__(self, positive: str, negative: str | None):
        self.positive, self.negative = positive, negative

    def __call__(self, array, reasons: dict) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not _is_arrow(array):
            array = pa.array(array)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        text = pc.cast(array, pa.string())
        if self.negative is None:
            others = [v for v in pc.unique(text).to_pylist() if v is not None and v != self.positive]
            if others:
                self.negative = others[0]
        is_positive = pc.fill_null(pc.equal(text, self.positive), False).to_numpy(zero_copy_only=False)
        is_negative = (pc.fill_null(pc.equal(text, self.negative), False).to_numpy(zero_copy_only=False)
                       if self.negative is not None else np.zeros(len(text), dtype=bool))
        if text.null_count:
            missing = text.is_null().to_numpy(zero_copy_only=False)
            _mark(reasons, "label", "missing", missing, len(text))
            is_negative |= missing
        neither = ~(is_positive | is_negative)
        if neither.any():
            _mark(reasons, "label", "not_positive_or_negative", neither, len(text))
        return is_positive.view(np.int8)


# -- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    columns: dict
    files: list[str]
    overall: Accumulator
    groups: dict = field(default_factory=dict)
    rows_read: int = 0
    rows_scored: int = 0
    rejected: dict = field(default_factory=dict)
    by: list[str] = field(default_factory=list)
    first_rejected: list[str] = field(default_factory=list)
    label_mapping: dict | None = None


@dataclass
class _Failed:
    error: BaseException
    source: Source


def _reader(sources, plan, text_columns, out: queue.Queue, stop: threading.Event):
    source = sources[0]
    try:
        for source, columns in zip(sources, plan):
            wanted = [c for c in [columns["label"], columns["pred"], columns["weight"], *columns["by"]]
                      if c is not None]
            wanted = list(dict.fromkeys(wanted))
            for batch, position in source.open(wanted, text_columns.get(source.name, ())):
                while not stop.is_set():
                    try:
                        out.put((source, batch, position), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        out.put(None)
    except BaseException as error:  # noqa: BLE001 - handed to the computing thread
        out.put(_Failed(error, source))


def _reraise_read_error(error: BaseException, source: Source):
    import pyarrow as pa

    if isinstance(error, (UsageError, DataError)):
        raise error
    text = str(error)
    if source.kind == "csv" and isinstance(error, pa.ArrowInvalid) and "conversion error" in text:
        raise _NeedsTextRead(source.name) from error
    if isinstance(error, (pa.ArrowException, OSError, ValueError, EOFError)):
        raise unreadable(source.name, error) from None
    raise error


def score(sources: list[Source], options: Options, progress=None, text_read: bool = False) -> Result:
    """Score every source; raises UsageError/DataError. ``progress(rows, bytes)`` is optional."""
    # Batches stream while pyarrow decodes on the other core: numba's import (~0.5 s, ~120 MB)
    # and its OpenMP threads cost more than its kernels save here (100M Parquet rows: 1.64 s and
    # 293 MB with it, 0.96 s and 171 MB without), so the CLI stays on the NumPy fast path.
    with _fast.numpy_only():
        return _score_sources(sources, options, progress, text_read)


def _score_sources(sources, options, progress, text_read) -> Result:
    plan = []
    for source in sources:
        columns = pick_columns(source.column_names(), options, source.name)
        columns["by"] = list(options.by)
        plan.append(columns)
    text_columns = {}
    if text_read:
        text_columns = {s.name: [c for c in (p["label"], p["pred"], p["weight"]) if c]
                        for s, p in zip(sources, plan) if s.kind == "csv"}
    labels = _LabelMapper(options.positive, options.negative) if options.positive is not None else None
    result = Result(columns=plan[0], files=[s.name for s in sources],
                    overall=_new_accumulator(options), by=list(options.by))
    group_keys: dict = {}

    batches: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    thread = threading.Thread(target=_reader, args=(sources, plan, text_columns, batches, stop),
                              name="logloss-reader", daemon=True)
    thread.start()
    rows_in_file: dict[str, int] = {}
    try:
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, _Failed):
                _reraise_read_error(item.error, item.source)
            source, batch, position = item
            columns = plan[sources.index(source)]
            offset = rows_in_file.get(source.name, 0)
            n = len(batch[columns["label"]])
            rows_in_file[source.name] = offset + n
            result.rows_read += n
            _score_batch(batch, columns, source, offset, n, options, labels, result, group_keys)
            if progress is not None:
                progress(n, position)
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        thread.join()
    if options.by:
        for accumulator in result.groups.values():
            result.overall.merge(accumulator)
    if labels is not None:
        result.label_mapping = {"positive": labels.positive, "negative": labels.negative}
    return result


def _score_batch(batch, columns, source, offset, n, options, labels, result, group_keys):
    reasons: dict = {}
    raw = {"label": batch[columns["label"]], "pred": batch[columns["pred"]]}
    y = labels(raw["label"], reasons) if labels else _numeric(raw["label"], reasons, "label")
    p = _numeric(raw["pred"], reasons, "pred")
    if not (reasons or labels or columns["weight"] or options.by or options.logits
            or options.make_accumulator is not None):
        # The common case in one pass per chunk: checks, loss, label and prediction sums. None
        # (a bad or unusual batch) falls through to the checks below, which name the bad rows.
        sums = _fast.hard_label_sums(y, p)
        if sums is not None:
            result.rows_scored += n
            result.overall._add_checked(n, *sums)
            return
    w = None
    if columns["weight"]:
        raw["weight"] = batch[columns["weight"]]
        w = _numeric(raw["weight"], reasons, "weight")
        _check_weights(w, reasons)
    if labels is None:
        _check_labels(y, reasons)
    _check_probabilities(p, reasons, options.logits)
    keep = None
    if reasons:
        bad = np.zeros(n, dtype=bool)
        for mask in reasons.values():
            bad |= mask
        if options.on_invalid == "error":
            row = int(np.argmax(bad))
            role, reason = next((k for k, m in reasons.items() if m[row]))
            value = raw[role][row]
            value = value.as_py() if hasattr(value, "as_py") else value.item()
            raise DataError(f"{source.name}: row {offset + row + 1}, column {columns[role]!r}: "
                            f"value {value!r} {REASON_TEXT[reason]}.")
        for (role, reason), mask in reasons.items():
            key = f"{role}_{reason}"
            result.rejected[key] = result.rejected.get(key, 0) + int(np.count_nonzero(mask))
        keep = ~bad
        if len(result.first_rejected) < 5:
            for row in np.flatnonzero(bad)[: 5 - len(result.first_rejected)]:
                role, reason = next((k for k, m in reasons.items() if m[row]))
                result.first_rejected.append(f"{source.name}: row {offset + row + 1}, "
                                             f"column {columns[role]!r}: {REASON_TEXT[reason]}")
        y, p = y[keep], p[keep]
        w = w[keep] if w is not None else None
    result.rows_scored += len(y)
    if not len(y):
        return
    if not options.by:
        result.overall.update(y, p, sample_weight=w)
        return
    codes, keys = _group_codes([batch[c] for c in options.by], keep)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(keys)))])
    y, p = y[order], p[order]
    w = w[order] if w is not None else None
    for g, key in enumerate(keys):
        a, b = bounds[g], bounds[g + 1]
        if a == b:
            continue
        accumulator = result.groups.get(key)
        if accumulator is None:
            accumulator = result.groups[key] = _new_accumulator(options)
        accumulator.update(y[a:b], p[a:b], sample_weight=None if w is None else w[a:b])


def _group_codes(arrays, keep):
    """Per-row group numbers 0..k-1 and the k key tuples, for the rows that are kept."""
    import pyarrow as pa

    codes = None
    dictionaries = []
    for array in arrays:
        if not _is_arrow(array):
            array = pa.array(array)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        encoded = array.dictionary_encode()
        values = encoded.dictionary.to_pylist() + [None]
        index = encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
        index = index.astype(np.int64)
        codes = index if codes is None else codes * len(values) + index
        dictionaries.append(values)
    if keep is not None:
        codes = codes[keep]
    unique, inverse = np.unique(codes, return_inverse=True)
    keys = []
    for code in unique.tolist():
        parts = []
        for values in reversed(dictionaries):
            code, i = divmod(code, len(values))
            parts.append(values[i])
        keys.append(tuple(reversed(parts)))
    return inverse.reshape(-1), keys


# -- reporting -----------------------------------------------------------------------------


def _stats(accumulator: Accumulator) -> dict:
    if accumulator.count == 0:
        return {"log_loss": None, "rows_scored": 0, "positives": 0, "total_weight": 0.0,
                "base_rate": None, "normalized_entropy": None, "calibration": None, "infinite": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfiniteLossWarning)
        summary = accumulator.summary()
    positives = summary["positives"]
    return {
        "log_loss": summary["log_loss"],
        "rows_scored": summary["count"],
        "positives": int(positives) if float(positives).is_integer() else positives,
        "total_weight": summary["total_weight"],
        "base_rate": summary["base_rate"],
        "normalized_entropy": summary["normalized_entropy"],
        "calibration": summary["calibration"],
        "infinite": summary["infinite"],
    }


def report(result: Result, options: Options) -> dict:
    """The JSON-ready report: every row accounted for, overall and per group."""
    overall = _stats(result.overall)
    report_ = {
        "log_loss": overall["log_loss"],
        "rows_read": result.rows_read,
        "rows_scored": result.rows_scored,
        "rows_rejected": result.rows_read - result.rows_scored,
        "rejected_by_reason": dict(sorted(result.rejected.items())),
        **{k: v for k, v in overall.items() if k not in ("log_loss", "rows_scored")},
        "files": result.files,
        "columns": {"label": result.columns["label"], "pred": result.columns["pred"],
                    "weight": result.columns["weight"]},
        "from_logits": options.logits,
    }
    if result.label_mapping:
        report_["label_mapping"] = result.label_mapping
    if options.by:
        report_["by"] = list(options.by)
        report_["groups"] = [
            {"group": dict(zip(options.by, key)), **_stats(acc)}
            for key, acc in sorted(result.groups.items(), key=lambda kv: _sort_key(kv[0]))
        ]
    return report_


def _sort_key(key: tuple):
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in key)


def finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return finite_or_none(value)


_TABLE_FIELDS = ("rows_scored", "positives", "log_loss", "normalized_entropy", "calibration")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # Fixed decimals line the columns up; a tiny loss (a near-perfect model) keeps its digits.
        # JSON and CSV output carry the full float64 value.
        return f"{value:.6f}" if value == 0 or abs(value) >= 1e-4 else f"{value:.4e}"
    return str(value)


def format_table(report_: dict) -> str:
    head = ["group"] if "groups" in report_ else []
    header = head + ["rows", "positives", "log_loss", "normalized_entropy", "calibration"]
    rows = []
    if "groups" in report_:
        for group in report_["groups"]:
            name = ", ".join(f"{k}={_fmt(v) if v is not None else 'null'}"
                             for k, v in group["group"].items())
            rows.append([name] + [_fmt(group[f]) for f in _TABLE_FIELDS])
        rows.append(["(all)"] + [_fmt(report_[f]) for f in _TABLE_FIELDS])
    else:
        rows.append([_fmt(report_[f]) for f in _TABLE_FIELDS])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 and head else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def format_csv(report_: dict) -> str:
    import csv
    import io

    by = report_.get("by", [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = ["rows_scored", "positives", "total_weight", "log_loss", "normalized_entropy",
              "calibration", "base_rate", "infinite"]
    writer.writerow(by + fields)
    for group in report_.get("groups", []):
        writer.writerow([group["group"][b] for b in by] + [_csv(group[f]) for f in fields])
    writer.writerow(["(all)"] * len(by) + [_csv(report_[f]) for f in fields])
    return buffer.getvalue()


def _csv(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)
