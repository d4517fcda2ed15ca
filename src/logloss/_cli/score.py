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
import gc
import math
import os
import queue
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._accumulator import Accumulator, GroupedStatistics, fast_batch_statistics
from .._core.statistics import SUMS, Statistics
from .._core.checks import InfiniteLossWarning
from .batches import (
    LabelMapper,
    check_labels,
    check_predictions,
    check_weights,
    is_arrow,
    numeric_values,
    reject_bad_rows,
)
from .columns import Options, pick_columns
from .groups import GroupEncoder, group_codes
from .sources import DataError, Reread, Source, UsageError, unreadable

# -- the run -------------------------------------------------------------------------------


def _new_accumulator(options: Options) -> Accumulator:
    if options.make_accumulator is not None:
        return options.make_accumulator()
    return Accumulator(from_logits=options.logits)


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
    label_mapping: dict | None = None
    grouped: GroupedStatistics = field(default_factory=GroupedStatistics)  # --by on the kernels
    encoder: GroupEncoder | None = None  # the group numbers of ``grouped``
    ignored_files: int = 0


@dataclass
class _Failed:
    error: BaseException
    source: Source


_WAIT = 0.05  # seconds between looks at the other side of a hand-off


class _Pipe:
    """A bounded hand-off from the reader thread to the scoring thread in which every wait
    has an exit: the reader gives up when the scorer has stopped, and the scorer notices a
    reader that ended without a last word. Neither can leave the other waiting forever."""

    def __init__(self, size: int):
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self.stopped = threading.Event()

    def put(self, item) -> bool:
        """Hand ``item`` on; False once the scorer has stopped (the item is dropped)."""
        while not self.stopped.is_set():
            try:
                self._queue.put(item, timeout=_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def get(self, producer: threading.Thread):
        while True:
            try:
                return self._queue.get(timeout=_WAIT)
            except queue.Empty:
                if not producer.is_alive():
                    try:
                        return self._queue.get_nowait()
                    except queue.Empty:
                        raise RuntimeError("the reader thread ended without a result") from None

    def close(self) -> None:
        """Stop: the reader's next hand-off returns False, and what is queued is dropped."""
        self.stopped.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


def _reader(sources, plan, text_columns, pipe: _Pipe):
    source = sources[0]
    try:
        for source, columns in zip(sources, plan):
            wanted = [c for c in [columns["label"], columns["pred"], columns["weight"], *columns["by"]]
                      if c is not None]
            wanted = list(dict.fromkeys(wanted))
            batches = source.open(wanted, text_columns.get(source.name, ()))
            try:
                for batch, position, path in batches:
                    if not pipe.put((source, batch, position, path)):
                        return
            finally:
                batches.close()  # cancels the read-ahead now, not when collected
        pipe.put(None)
    except BaseException as error:  # noqa: BLE001 - handed to the computing thread
        pipe.put(_Failed(error, source))


def _reraise_read_error(error: BaseException, source: Source):
    import pyarrow as pa

    if isinstance(error, (UsageError, DataError, Reread)):
        raise error
    text = str(error)
    if source.kind == "csv" and isinstance(error, pa.ArrowInvalid) and "invalid UTF8" in text:
        # Text that is not UTF-8 (a --by column read as text for another file's sake): the
        # file's own inference reads it as binary values (hexadecimal keys), as alone.
        raise Reread(source.name, "by_binary") from error
    if source.kind == "csv" and isinstance(error, pa.ArrowInvalid) and "conversion error" in text:
        raise Reread(source.name, "text") from error
    if source.kind == "jsonl" and isinstance(error, pa.ArrowInvalid) and not source.python_json:
        # A type that changes after the first block, or a line longer than the block: Python's
        # json reads the file, or names the line it cannot read.
        raise Reread(source.name, "python_json") from error
    if isinstance(error, (pa.ArrowException, OSError, ValueError, EOFError)):
        raise unreadable(source.name, error) from None
    raise error


def score(sources: list[Source], options: Options, progress=None, rereads=None) -> Result:
    """Score every source; raises UsageError/DataError, or Reread when a source must be read
    again another way (``rereads`` maps a source name to the changes asked for so far).
    ``progress(rows, bytes)`` is optional."""
    return _score_sources(sources, options, progress, rereads or {})


def apply_rereads(sources, rereads: dict) -> None:
    """Set each source to be read the ways asked for so far (see ``Reread``)."""
    by_text = any("by_text" in changes for changes in rereads.values())
    for source in sources:
        changes = rereads.get(source.name, ())
        source.python_json = (source.python_json or "python_json" in changes
                              or by_text and source.kind == "jsonl")  # its --by columns as text


def text_columns(sources, plan, rereads: dict, roles=("label", "pred", "weight")) -> dict:
    """The columns of each CSV source to read as text, once a reread asked for it: the roles'
    columns, and from a second reread on the ``by`` columns too (a --by column of integers in
    the first block and "x" later; read as text only then, so its keys stay numbers otherwise)."""
    columns = {}
    # A --by column typed differently by two CSV or JSON Lines files' inference (or two batches
    # of one JSON Lines file read through Python's json): read as text in every one.
    by_text = any("by_text" in changes for changes in rereads.values())
    for source, chosen in zip(sources, plan):
        changes = list(rereads.get(source.name, ()))
        if source.kind == "csv" and ("text" in changes or by_text):
            names = [chosen[role] for role in roles if chosen.get(role) and "text" in changes]
            if changes.count("text") > 1 or by_text and "by_binary" not in changes:
                names.append(chosen.get("by") or [])
            columns[source.name] = list(dict.fromkeys(n for name in names
                                                      for n in (name if isinstance(name, list) else [name])))
        elif source.kind == "jsonl" and by_text:
            columns[source.name] = list(chosen.get("by") or [])
    return columns


def stream(sources, plan, text_columns_by_source, progress=None):
    """``(columns, batch, path, offset, n)`` for every batch of every source in file order, read
    by a reader thread into a bounded hand-off: ``offset`` is the batch's first row in ``path``.
    Each source's ``plan`` entry names the columns it reads (label, pred, weight and ``by``)."""
    # One batch waiting: the reader's pool already holds its own read-ahead, and each batch more
    # here is tens of MB of peak memory with no gain in time (benchmarks/results-2core-epyc-score-groups-s3.txt).
    pipe = _Pipe(1)
    # The reader runs in the caller's settings (a thread starts with none of its context).
    thread = threading.Thread(target=contextvars.copy_context().run,
                              args=(_reader, sources, plan, text_columns_by_source, pipe),
                              name="logloss-reader", daemon=True)
    thread.start()
    rows_in_file: dict[str, int] = {}
    wait = 10
    try:
        while True:
            item = pipe.get(thread)
            if item is None:
                return
            if isinstance(item, _Failed):
                _reraise_read_error(item.error, item.source)
            source, batch, position, path = item
            columns = plan[sources.index(source)]
            offset = rows_in_file.get(path, 0)
            n = len(batch[columns["label"]])
            rows_in_file[path] = offset + n
            yield columns, batch, path, offset, n
            if progress is not None:
                progress(n, position)
    except BaseException as error:  # GeneratorExit too: the caller stopped on a bad row
        # The process ends: Ctrl-C on an idle standard input waited the full 10 s, and so did
        # a bad row met while the reader waited for more of standard input (or a pipe).
        if isinstance(error, KeyboardInterrupt) or any(
                path == "-" or not os.path.isfile(path) for source in sources
                for path in source.paths):
            wait = 0.2
        raise
    finally:
        pipe.close()
        # The reader gives up at its next hand-off; one blocked in a read (standard input
        # that never ends) is a daemon thread and does not keep the process alive.
        thread.join(timeout=wait)


def _score_sources(sources, options, progress, rereads) -> Result:
    apply_rereads(sources, rereads)
    plan = []
    for source in sources:
        columns = pick_columns(source.column_names(), options, source.name)
        columns["by"] = list(options.by)
        plan.append(columns)
    labels = LabelMapper(options.positive, options.negative) if options.positive is not None else None
    result = Result(columns=plan[0], files=[s.name for s in sources],
                    overall=_new_accumulator(options), by=list(options.by),
                    ignored_files=sum(s.ignored for s in sources))
    csv_source = inferred_by_sources(sources, options.by)
    by_kinds: dict = {}
    for columns, batch, path, offset, n in stream(sources, plan, text_columns(sources, plan, rereads),
                                                  progress):
        result.rows_read += n
        if path in csv_source:
            check_csv_by_kinds([batch[c] for c in options.by], csv_source[path], by_kinds)
        _score_batch(batch, columns, path, offset, n, options, labels, result)
    if options.by:
        import pyarrow as pa

        _finish_groups(result, options)
        # The batches' buffers go back to the system before the report of many groups is built,
        # so the peak is the reading's, not the reading's plus the report's.
        pa.default_memory_pool().release_unused()
    if labels is not None:
        result.label_mapping = {"positive": labels.positive, "negative": labels.negative}
    return result


def inferred_by_sources(sources, by) -> dict:
    """Path -> source of the files whose --by columns' types are inferred batch by batch: CSV
    (each file's types from its own first block, so one file's "1" may be the number 1 and
    another's the text "1", two groups printed alike, or "true" a boolean that a dict merges
    with 1) and JSON Lines read through Python's json (typed one batch at a time). Their --by
    columns are checked with check_csv_by_kinds, and read again as text where kinds differ.
    Standard input cannot be read again: its groups stay as inferred (an empty mapping)."""
    if not by or any(s.paths == ["-"] for s in sources):
        return {}
    return {path: s for s in sources if s.kind in ("csv", "jsonl") for path in s.paths}


def check_csv_by_kinds(arrays, source, kinds: dict) -> None:
    """Raise Reread(by_text) when a --by column of this CSV batch holds another kind of value
    (text, boolean, number, date...) than an earlier CSV batch's; a column of nulls, or of
    binary values (text that is not UTF-8, which reading as text would refuse), matches any."""
    import pyarrow as pa

    for i, array in enumerate(arrays):
        kind = array.type if is_arrow(array) else pa.from_numpy_dtype(array.dtype)
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_null(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            continue
        kind = ("text" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else
                "number" if pa.types.is_integer(kind) or pa.types.is_floating(kind) else str(kind))
        if kinds.setdefault(i, kind) != kind:
            raise Reread(source.name, "by_text")


def _score_batch(batch, columns, path, offset, n, options, labels, result):
    reasons: dict = {}
    raw = {"label": batch[columns["label"]], "pred": batch[columns["pred"]]}
    try:
        y = labels(raw["label"], reasons) if labels else numeric_values(raw["label"], reasons, "label")
        p = numeric_values(raw["pred"], reasons, "pred")
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    if not (reasons or labels or columns["weight"] or options.by or options.logits
            or options.make_accumulator is not None):
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
        try:
            w = numeric_values(raw["weight"], reasons, "weight")
        except DataError as error:
            raise DataError(f"{path}: {error}") from None
    if (options.by and not reasons and labels is None and y.dtype.kind in "biu"
            and _grouped_sums(y, p, w, None, batch, options, result)):
        # The grouped kernel refuses what the checks below refuse (integer labels outside
        # {0, 1}, predictions outside [0, 1] or NaN, weights negative, NaN or infinite), so
        # only a batch it refuses is checked row by row (and then given to it again).
        result.rows_scored += n
        return
    if w is not None:
        check_weights(w, reasons)
    if labels is None:
        check_labels(y, reasons)
    check_predictions(p, reasons, options.logits)
    keep = None
    if reasons:
        keep = reject_bad_rows(reasons, n, raw, columns, path, offset, options.on_invalid,
                               result.rejected)
        y, p = y[keep], p[keep]
        w = w[keep] if w is not None else None
    result.rows_scored += len(y)
    if not len(y):
        return
    if not options.by:
        result.overall.update(y, p, sample_weight=w)
        return
    if _add_grouped_sums(y, p, w, keep, batch, options, result):
        return
    codes, keys = group_codes([batch[c] for c in options.by], keep, options.by)
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


def _add_grouped_sums(y, p, w, keep, batch, options, result) -> bool:
    """Every group's statistics of the batch in one pass of the compiled kernels (all threads),
    added into arrays indexed by group numbers that stay the same across batches; False when
    the run asks for accumulators of its own (--clip, --convention) or the kernels are not built
    or decline the batch (the caller then sorts it by group)."""
    return _grouped_sums(y, p, w, keep, batch, options, result)


def _grouped_sums(y, p, w, keep, batch, options, result) -> bool:
    """_add_grouped_sums, also for a batch not yet checked (the kernel refuses what the checks
    refuse); tests watch _add_grouped_sums for the batches that were checked first."""
    if options.make_accumulator is not None or not result.grouped.ready():
        return False
    if result.encoder is None:
        result.encoder = GroupEncoder(options.by)
    codes = result.encoder.encode([batch[c] for c in options.by], keep)
    return result.grouped.add_batch(y, p, w, codes, result.encoder.count, from_logits=options.logits)


_SAFE_TOTAL = 2.0**1000  # below it, the groups' sums add up without overflow


def _finish_groups(result, options) -> None:
    """The overall statistics from the groups'. Groups the kernel summed stay arrays (reported by
    ``_table_stats``), unless some batch went the general way or their totals near the float
    range: then they become accumulators, merged by key with the general path's."""
    grouped = result.grouped
    used = np.flatnonzero(grouped.counts[:, 0] > 0)
    hi = grouped.hi[used]
    infinite = grouped.counts[used, 1] > 0
    finite = np.isfinite(hi) | (np.arange(4) == 0) & infinite[:, None]  # an infinite loss stays
    with np.errstate(invalid="ignore"):
        safe = finite.all() and np.sum(np.where(np.isfinite(hi), np.abs(hi), 0.0)) < _SAFE_TOTAL
    if used.size and (result.groups or not safe):
        keys = result.encoder.keys()
        for row in used.tolist():
            accumulator = result.groups.get(keys[row])
            if accumulator is None:
                accumulator = result.groups[keys[row]] = _new_accumulator(options)
            accumulator.statistics.merge(grouped.statistics(row))
        result.grouped = GroupedStatistics()
    elif used.size:  # the overall sums, each correctly rounded from every group's pair
        counts = grouped.counts[used]
        total = Statistics(count=int(counts[:, 0].sum()), positives=float(counts[:, 2].sum()),
                           infinite=int(counts[:, 1].sum()))
        for column, name in enumerate(SUMS):
            values = hi[:, column]
            if not np.isfinite(values).all():
                total.sums[name].add(math.inf)
                continue
            parts = values.tolist() + grouped.lo[used, column].tolist()
            high = math.fsum(parts)
            total.sums[name].hi, total.sums[name].lo = high, math.fsum(parts + [-high])
        result.overall.statistics.merge(total)
    for accumulator in result.groups.values():
        result.overall.merge(accumulator)


def _table_rows(result, by):
    """The report entries of every group the kernel summed, as columns (GroupRows) in the order
    of sort_key, computed element-wise from the arrays with the operations ``_stats`` uses (so
    the same values); None when there is none."""
    from ..report.text import GroupRows

    grouped = result.grouped
    used = np.flatnonzero(grouped.counts[:, 0] > 0)
    if not used.size:
        return None
    all_keys = result.encoder.keys()
    keys = [all_keys[row] for row in used.tolist()]
    order = np.array([i for _, i in _sorted_by_key([(key, i) for i, key in enumerate(keys)])],
                     dtype=np.int64)
    keys = [keys[i] for i in order.tolist()]
    used = used[order]
    values = grouped.values()[used]
    counts = grouped.counts[used]
    mean, rate = grouped.ratio(0, 1)[used], grouped.ratio(2, 1)[used]
    weight, label = values[:, 1], values[:, 2]
    with np.errstate(invalid="ignore"):
        calibration = np.where(label != 0, grouped.ratio(3, 2)[used], np.nan)
    positives = counts[:, 2]
    whole = positives == np.round(positives)
    log, log1p, nan = math.log, math.log1p, math.nan
    normalized = [m / -(r * log(r) + (1 - r) * log1p(-r)) if 0 < r < 1 else nan
                  for m, r in zip(mean.tolist(), rate.tolist())]
    fields = {
        "log_loss": mean,
        "rows_scored": counts[:, 0].astype(np.int64),
        "positives": (positives.astype(np.int64) if whole.all() else
                      [int(v) if w else v for v, w in zip(positives.tolist(), whole.tolist())]),
        "total_weight": weight,
        "base_rate": rate,
        "normalized_entropy": normalized,
        "calibration": calibration,
        "infinite": counts[:, 1].astype(np.int64),
    }
    undefined = ~(weight > 0)
    notes = dict.fromkeys(np.flatnonzero(undefined).tolist(), ZERO_WEIGHT_NOTE)
    return GroupRows(by, keys, fields, undefined if undefined.any() else None, notes)


ZERO_WEIGHT_NOTE = "every weight in this group is zero: the weighted mean is undefined"


# -- reporting -----------------------------------------------------------------------------


def _stats(accumulator: Accumulator) -> dict:
    if accumulator.count == 0 or not accumulator.total_weight > 0:
        # No row, or rows whose weights are all zero: the weighted mean is undefined (null),
        # the rows are still counted.
        positives = accumulator.positives if accumulator.count else 0
        return {"log_loss": None, "rows_scored": accumulator.count,
                "positives": int(positives) if float(positives).is_integer() else positives,
                "total_weight": float(accumulator.total_weight) if accumulator.count else 0.0,
                "base_rate": None, "normalized_entropy": None, "calibration": None,
                "infinite": accumulator.infinite if accumulator.count else 0}
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
        # A dict per group, none of them garbage: the cyclic collector, which would walk all of
        # them again and again as they are made, waits until they are built.
        collecting = gc.isenabled()
        gc.disable()
        try:
            table = _table_rows(result, options.by)
            if table is not None and not result.groups:  # the kernels' groups only: columns
                report_["groups"] = table
                return report_
            rows = [(key, {"group": dict(zip(options.by, key)), **_stats(acc)})
                    for key, acc in result.groups.items()]
            if table is not None:
                rows += list(zip(table.keys, table))
            report_["groups"] = groups = [group for _, group in _sorted_by_key(rows)]
        finally:
            if collecting:
                gc.enable()
        for group in groups:
            if not group["total_weight"] > 0:
                group["note"] = ZERO_WEIGHT_NOTE
    return report_


def _sorted_by_key(rows: list) -> list:
    """``(key, ...)`` rows in the order of sort_key: compared as they are where each column of
    the keys holds one type (then the orders agree), which spares a key per row."""
    width = len(rows[0][0]) if rows else 0
    if all(len({type(key[i]) for key, _ in rows}) == 1 for i in range(width)):
        return sorted(rows, key=lambda row: row[0])
    return sorted(rows, key=lambda row: sort_key(row[0]))


def sort_key(key: tuple):
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in key)
