"""``logloss score``: exact log loss of prediction files, streamed batch by batch.

A reader thread pulls column batches from :mod:`.sources` (pyarrow decodes on its own
threads and releases the GIL) into a small bounded queue; the calling thread checks each batch
with cheap vectorized tests (so every rejected row is named by file, row, column and value),
then feeds :class:`logloss.Accumulator` (one per ``--by`` group). The common batch (0/1 integer
labels, probabilities, no weights or groups) is checked and summed in one chunked pass
(``fast_batch_statistics``); only a batch it declines is checked row by row. Memory is a few
batches, whatever the file size.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._accumulator import Accumulator, GroupedStatistics, fast_batch_statistics
from .._core.checks import InfiniteLossWarning
from .batches import (
    REASON_TEXT,
    is_arrow,
    numpy_view,
    LabelMapper,
    check_labels,
    check_predictions,
    check_weights,
    numeric_values,
)
from .columns import Options, pick_columns
from .groups import group_codes
from .sources import DataError, Source, UsageError, unreadable



class NeedsTextRead(Exception):
    """A CSV column changed type mid-file: read it again with the columns as text."""



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
    grouped: GroupedStatistics = field(default_factory=GroupedStatistics)  # --by on the kernels


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
        raise NeedsTextRead(source.name) from error
    if isinstance(error, (pa.ArrowException, OSError, ValueError, EOFError)):
        raise unreadable(source.name, error) from None
    raise error


def score(sources: list[Source], options: Options, progress=None, text_read: bool = False) -> Result:
    """Score every source; raises UsageError/DataError. ``progress(rows, bytes)`` is optional."""
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
    labels = LabelMapper(options.positive, options.negative) if options.positive is not None else None
    result = Result(columns=plan[0], files=[s.name for s in sources],
                    overall=Accumulator(from_logits=options.logits), by=list(options.by))
    group_keys: dict = {}

    batches: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    # The reader runs in the caller's settings (a thread starts with none of its context).
    thread = threading.Thread(target=contextvars.copy_context().run,
                              args=(_reader, sources, plan, text_columns, batches, stop),
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
        for key, stats in result.grouped.items():  # batches the grouped kernel took
            accumulator = result.groups.get(key)
            if accumulator is None:
                accumulator = result.groups[key] = Accumulator(from_logits=options.logits)
            accumulator.statistics.merge(stats)
        for accumulator in result.groups.values():
            result.overall.merge(accumulator)
    if labels is not None:
        result.label_mapping = {"positive": labels.positive, "negative": labels.negative}
    return result


def _score_batch(batch, columns, source, offset, n, options, labels, result, group_keys):
    reasons: dict = {}
    raw = {"label": batch[columns["label"]], "pred": batch[columns["pred"]]}
    y = labels(raw["label"], reasons) if labels else numeric_values(raw["label"], reasons, "label")
    p = numeric_values(raw["pred"], reasons, "pred")
    if not (reasons or labels or columns["weight"] or options.by or options.logits):
        # The common case in one pass per chunk: checks, loss, label and prediction sums. None
        # (a bad or unusual batch) falls through to the checks below, which name the bad rows.
        stats = fast_batch_statistics(y, p)
        if stats is not None:
            result.rows_scored += n
            result.overall.statistics.merge(stats)
            return
    w = None
    if columns["weight"]:
        raw["weight"] = batch[columns["weight"]]
        w = numeric_values(raw["weight"], reasons, "weight")
        check_weights(w, reasons)
    if labels is None:
        check_labels(y, reasons)
    check_predictions(p, reasons, options.logits)
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
    if len(options.by) == 1 and _add_grouped_sums(y, p, w, *_one_column_codes(batch[options.by[0]], keep),
                                                  options, result):
        return
    codes, keys = group_codes([batch[c] for c in options.by], keep)
    if _add_grouped_sums(y, p, w, codes, keys, options, result):
        return
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
            accumulator = result.groups[key] = Accumulator(from_logits=options.logits)
        accumulator.update(y[a:b], p[a:b], sample_weight=None if w is None else w[a:b])


def _one_column_codes(array, keep):
    """One --by column's per-row group numbers and keys from pyarrow's dictionary encoding (a
    hash table: no sort), or its own dictionary where the column is dictionary-encoded already.
    Keys equal those of group_codes, so groups merge the same across batches."""
    import pyarrow as pa

    if not is_arrow(array):
        array = pa.array(array)
    encoded = array if pa.types.is_dictionary(array.type) else array.dictionary_encode()
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    values = encoded.dictionary.to_pylist() + [None]
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(values) - 1)
    codes = numpy_view(indices)
    return (codes if keep is None else codes[keep]), [(value,) for value in values]


def _add_grouped_sums(y, p, w, codes, keys, options, result) -> bool:
    """Every group's statistics of the batch in one pass of the compiled kernels (all threads);
    False when they are not built or decline the batch (the caller then sorts by group)."""
    return result.grouped.add_batch(y, p, w, codes, keys, from_logits=options.logits)


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
