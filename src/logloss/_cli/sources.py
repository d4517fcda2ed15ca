"""Reading prediction files as a stream of column batches, for ``logloss score``.

Everything here is at the edge of the package: the core never imports it. pyarrow does the
reading (Parquet, CSV/TSV with gzip or zstd, Arrow IPC/Feather, JSON Lines) and is imported
lazily, so ``import logloss`` needs NumPy only. NumPy ``.npy``/``.npz`` files are memory-mapped.

A :class:`Source` is one input argument (a file, a directory or glob of Parquet files, or ``-``
for CSV on standard input). ``Source.open(columns, text_columns)`` returns an iterator of
``(batch, bytes_read, path)`` where ``batch`` maps column names to pyarrow or NumPy arrays and
``path`` is the file the batch came from (a directory or glob is several files).

CSV and JSON Lines are cut here into blocks of whole records (CSV quoting checked on the way:
see records.py) that pyarrow parses on a pool of threads. A read that pyarrow's fast reader
cannot do is not a wrong answer: :class:`Reread` asks the caller to read the source again a
safer way (CSV columns as text, JSON Lines through Python's ``json``).
"""

from __future__ import annotations

import collections
import glob
import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._core.config import available_cpus, get_config

BATCH_ROWS = 1 << 20
MAX_READ_THREADS = 4  # row groups (or CSV blocks) decoded at once, at most


def read_threads() -> int:
    """Decoding threads: the ``threads`` setting, else the CPUs this process may use (at most 4).
    The reader is the CLI's own thread, so the one-thread rule for callers' threads does not apply."""
    return min(MAX_READ_THREADS, get_config()["threads"] or available_cpus())
CSV_BLOCK_BYTES = 2 << 20
LONGEST_CSV_RECORD = 1 << 30  # bytes; a longer record (or a quote left open) is refused, not read

INSTALL_HINT = "pip install 'logloss[cli]'"


class UsageError(Exception):
    """The command asked for something that cannot be done (exit code 2)."""


class DataError(Exception):
    """The data is invalid, truncated or corrupt (exit code 1)."""


class Reread(Exception):
    """pyarrow's fast reader could not read ``source`` as it is; read it again with ``change``
    (``"text"`` or ``"python_json"``)."""

    def __init__(self, source: str, change: str):
        super().__init__(f"{source}: read again with {change}")
        self.source, self.change = source, change


class _ReadAhead:
    """Work on a small thread pool, handed back in submission order, with at most
    ``read_threads() + 1`` results waiting (so memory does not grow with the file). Leaving the
    ``with`` block cancels whatever was not handed out."""

    def __init__(self, name: str):
        threads = read_threads()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._read_ahead = threads + 1  # submitted beyond the one being handed out
        self._pending: collections.deque = collections.deque()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for future, _ in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)

    def submit(self, position: int, function, *args) -> None:
        self._pending.append((self._pool.submit(function, *args), position))

    def ready(self):
        """(result, position) for the oldest results beyond the read-ahead bound."""
        while len(self._pending) > self._read_ahead:
            yield self._pop()

    def drain(self):
        """(result, position) for everything still pending, in order."""
        while self._pending:
            yield self._pop()

    def _pop(self):
        future, position = self._pending.popleft()
        return future.result(), position


def _unreadable_types() -> tuple:
    """What reading a corrupt or truncated file raises (pyarrow's errors, the OS's, NumPy's,
    zipfile's and zlib's for .npy/.npz, codecs' for text)."""
    import zipfile
    import zlib

    found = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        import pyarrow as pa
    except ImportError:
        return found
    return (pa.ArrowException, *found)


def unreadable(name: str, error: BaseException) -> DataError:
    return DataError(f"{name}: cannot be read completely ({type(error).__name__}: "
                     f"{str(error).strip()}). The file is truncated or corrupt; "
                     "no result is reported.")


def require_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError(
            "`logloss score` reads files with pyarrow, which is not installed. "
            f"Install the command-line extra: {INSTALL_HINT}"
        ) from None
    import pyarrow

    return pyarrow


_SUFFIXES = [
    (".parquet", "parquet"), (".pq", "parquet"),
    (".csv", "csv"), (".tsv", "csv"), (".tab", "csv"), (".txt", "csv"),
    (".feather", "ipc"), (".arrow", "ipc"), (".ipc", "ipc"),
    (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"),
    (".npy", "npy"), (".npz", "npz"),
]
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}


def _kind_of(path: str) -> tuple[str, str | None, str]:
    """(kind, compression, delimiter) from a file name such as ``x.tsv.gz``."""
    name = path.lower()
    compression = None
    for suffix, codec in _COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = codec, name[: -len(suffix)]
            break
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            delimiter = "\t" if suffix in (".tsv", ".tab") else ","
            if compression and kind not in ("csv", "jsonl"):
                raise UsageError(f"{path}: compressed {kind} files are not supported; "
                                 "Parquet and Arrow compress internally.")
            return kind, compression, delimiter
    known = ", ".join(s for s, _ in _SUFFIXES)
    raise UsageError(f"{path}: unknown file type. Known extensions: {known} "
                     "(CSV/TSV/JSON Lines may end in .gz or .zst), a directory of Parquet files, "
                     "or - for CSV on standard input.")


@dataclass
class Source:
    name: str
    kind: str
    paths: list[str]
    compression: str | None = None
    delimiter: str = ","
    size: int | None = None
    ignored: int = 0  # files under _ or . folders of a directory or glob, left out
    _schema_names: list[str] | None = field(default=None, repr=False)
    _schema: object = field(default=None, repr=False)  # CSV/JSON: types inferred from block 1
    python_json: bool = False  # JSON Lines through Python's json (see Reread)

    # -- metadata ------------------------------------------------------------------------------
    def column_names(self) -> list[str]:
        if self._schema_names is None:
            self._schema_names = self._read_column_names()
        return self._schema_names

    def _read_column_names(self) -> list[str]:
        try:
            if self.kind == "parquet":
                return list(next(self._parquet_files())[1].schema_arrow.names)
            if self.kind == "ipc":
                return list(self._ipc_reader().schema.names)
            if self.kind == "npy":
                return list(_npy_columns(self._npy()).keys())
            if self.kind == "npz":
                with open(self.paths[0], "rb") as handle, np.load(handle) as archive:
                    return list(archive.files)
            if self.kind == "jsonl" and self.python_json:
                return self._python_json_names()
            if self.kind == "jsonl":
                self._schema = self._json_first_block().schema
                return list(self._schema.names)
            self._schema = self._csv_first_table().schema
            return list(self._schema.names)
        except (UsageError, DataError):
            raise
        except _unreadable_types() as error:  # not Exception: a bug here is not a corrupt file
            if self.kind == "jsonl" and not self.python_json:
                # A line longer than the block, or types that change in the first block:
                # Python's json reads it, or names the line it cannot read.
                self.python_json = True
                return self._read_column_names()
            raise unreadable(self.name, error) from None

    def num_rows(self) -> int | None:
        try:
            if self.kind == "parquet":
                return sum(parquet.metadata.num_rows for _, parquet in self._parquet_files())
            if self.kind == "ipc":
                reader = self._ipc_reader()
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            if self.kind == "npy":
                return len(self._npy())
        except Exception:  # noqa: BLE001 - a count is only for the progress bar
            return None
        return None

    # -- reading -------------------------------------------------------------------------------
    def open(self, columns: list[str], text_columns=()) -> Iterator[tuple[dict, int, str]]:
        """Batches of the named columns; ``text_columns`` are read as strings (CSV, and JSON Lines
        read through Python's json: a value not a string as its JSON text)."""
        if self.kind == "parquet":
            return self._parquet_batches(columns)
        if self.kind == "ipc":
            return self._ipc_batches(columns)
        if self.kind == "npy":
            return self._npy_batches(columns)
        if self.kind == "npz":
            return self._npz_batches(columns)
        if self.kind == "jsonl" and self.python_json:
            return self._python_json_batches(columns, text_columns)
        return self._text_batches(columns, text_columns)

    def _parquet_files(self):
        import pyarrow.parquet as pq

        for path in self.paths:
            try:
                yield path, pq.ParquetFile(path, pre_buffer=False)
            except Exception as error:  # noqa: BLE001 - pyarrow raises several types
                raise unreadable(path, error) from None

    def _parquet_batches(self, columns):
        # Row group by row group, in file order, with a few row groups decoded ahead on a small
        # pool of threads (pyarrow releases the GIL), each thread with its own file handle. One
        # row group per thread balances the cores (pyarrow's own threads split a row group by
        # column, and an int8 label column takes twice as long as a float32 one). The read-ahead
        # is bounded: a dataset scanner reads ahead without limit when the consumer is slower,
        # so memory would grow with the file. Huge row groups are read in slices instead.
        import pyarrow.parquet as pq

        local = threading.local()

        def read(path, group):
            try:
                # One open file per thread: the row groups are taken in file order, so a thread
                # that reads the next file is done with the last. Kept open, a directory of
                # thousands of small files (Spark's part files) ran out of file descriptors.
                handle = getattr(local, "handle", None)
                if handle is None or handle[0] != path:
                    if handle is not None:
                        handle[1].close()
                    local.handle = handle = (path, pq.ParquetFile(path, pre_buffer=False))
                table = handle[1].read_row_group(group, columns=columns, use_threads=False)
                _check_utf8(_columns(table, columns))
                return table, path
            except Exception as error:  # noqa: BLE001 - named by file, not by the glob
                raise unreadable(path, error) from None

        with _ReadAhead("logloss-parquet") as ahead:
            done = 0
            for path, parquet in self._parquet_files():
                names = parquet.schema_arrow.names
                missing = [c for c in columns if c not in names]
                if missing:  # the columns were chosen from the first file of the directory or glob
                    raise UsageError(f"{path}: no column {missing[0]!r}, which the first file of "
                                     f"{self.name} has; the columns are: "
                                     f"{', '.join(repr(n) for n in names)}.")
                size, total = os.path.getsize(path), max(parquet.metadata.num_rows, 1)
                rows = 0
                for group in range(parquet.num_row_groups):
                    group_rows = parquet.metadata.row_group(group).num_rows
                    if group_rows <= 4 * BATCH_ROWS:
                        rows += group_rows
                        ahead.submit(done + int(size * rows / total), read, path, group)
                        for (table, at_path), position in ahead.ready():
                            yield _columns(table, columns), position, at_path
                        continue
                    for (table, at_path), position in ahead.drain():  # file order around slices
                        yield _columns(table, columns), position, at_path
                    try:
                        for piece in parquet.iter_batches(BATCH_ROWS, row_groups=[group],
                                                          columns=columns, use_threads=True):
                            rows += piece.num_rows
                            sliced = _columns(piece, columns)
                            _check_utf8(sliced)
                            yield sliced, done + int(size * rows / total), path
                    except (UsageError, DataError):
                        raise
                    except Exception as error:  # noqa: BLE001
                        raise unreadable(path, error) from None
                done += size
            for (table, at_path), position in ahead.drain():
                yield _columns(table, columns), position, at_path

    def _ipc_reader(self):
        """A file-format reader (the footer indexes every batch) or a checked stream reader."""
        import pyarrow as pa

        source = pa.memory_map(self.paths[0])
        try:
            return pa.ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            if source.read(6) == b"ARROW1":
                raise DataError(f"{self.name}: the Arrow IPC file has no footer (it ends before "
                                "the footer that lists its batches): the file is truncated or "
                                "corrupt; no result is reported.") from None
            _check_ipc_stream_end(source, self.name)
            source.seek(0)
            return pa.ipc.open_stream(source)

    def _ipc_batches(self, columns):
        import pyarrow as pa

        reader = self._ipc_reader()
        if isinstance(reader, pa.ipc.RecordBatchFileReader):
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(reader)
        rows, total = 0, self.num_rows() or 0
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                piece = batch.slice(start, BATCH_ROWS)
                rows += piece.num_rows
                position = int(self.size * rows / total) if total else 0
                read = _columns(piece, columns)
                for array in read.values():
                    # pyarrow's IPC reader checks the buffers' sizes, not their contents: a
                    # corrupt file can hold dictionary indices or string offsets out of range,
                    # which the checks and --by would read past their arrays with.
                    try:
                        array.validate(full=True)
                    except pa.ArrowException as error:
                        raise unreadable(self.name, error) from None
                yield read, position, self.paths[0]

    def _npy(self):
        try:
            return np.load(self.paths[0], mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            _refuse_pickled(self.name, error)
            raise

    def _npy_batches(self, columns):
        array = self._npy()
        named = _npy_columns(array)
        for column in columns:
            _check_column(column, named[column], self.name)
        row_bytes = array.itemsize * (1 if array.ndim == 1 else array.shape[1])
        for start in range(0, len(array), BATCH_ROWS):
            stop = min(start + BATCH_ROWS, len(array))
            batch = {c: np.asarray(named[c][start:stop]) for c in columns}
            _check_text(batch, self.name, start)
            yield batch, stop * row_bytes, self.paths[0]

    def _npz_batches(self, columns):
        with open(self.paths[0], "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            try:
                arrays = {c: archive[c] for c in columns}
            except ValueError as error:
                _refuse_pickled(self.name, error)
                raise
            except Exception as error:  # noqa: BLE001 - zipfile and zlib raise their own types
                raise unreadable(self.name, error) from None
        for column, array in arrays.items():
            _check_column(column, array, self.name)
        lengths = {c: len(a) for c, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"{self.name}: the arrays have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        for start in range(0, n, BATCH_ROWS):
            stop = min(start + BATCH_ROWS, n)
            batch = {c: a[start:stop] for c, a in arrays.items()}
            _check_text(batch, self.name, start)
            yield batch, int(self.size * stop / max(n, 1)), self.paths[0]

    def _stdin(self) -> _ReplayedStream:
        if not hasattr(self, "_stdin_stream"):
            self._stdin_stream = _ReplayedStream(_unbuffered_stdin())
        return self._stdin_stream

    def _byte_stream(self):
        """(the file as read, for progress; the bytes to parse). pyarrow's codecs refuse a
        gzip or zstd stream cut before its end ("Truncated compressed stream")."""
        import pyarrow as pa

        if self.paths == ["-"]:
            return self._stdin(), self._stdin()
        raw = pa.OSFile(self.paths[0], "rb")
        return raw, (pa.CompressedInputStream(raw, self.compression) if self.compression else raw)

    def _first_block_types(self, columns) -> dict:
        """Every column's type as the first block was read, for the blocks after it. A column
        that is empty throughout the first block (type null there) is read as text: a null
        column cannot hold the values that come later, and text holds any of them (the roles'
        own parsing and the --by grouping then see the same values in every block)."""
        import pyarrow as pa

        types = {name: self._schema.field(name).type for name in columns}
        return {name: pa.string() if pa.types.is_null(kind) else kind for name, kind in types.items()}

    def _text_batches(self, columns, text_columns):
        self.column_names()  # the first block's types, which every block is read with
        if self.kind == "jsonl":
            return self._json_blocks_in_parallel(columns)
        return self._csv_blocks_in_parallel(columns, text_columns)

    def _json_blocks_in_parallel(self, columns):
        """JSON Lines cut at line ends into blocks by this thread, each checked by the guard
        (_ObjectLines) and parsed by pyarrow from its own buffer on a pool of threads, with the
        first block's types for the columns used (other keys ignored: never built).

        pyarrow's streaming JSON reader would read the file through the guard, a stream written
        in Python, from its own read-ahead threads; a run that stopped early on a bad row then
        exited while they still called it, and the interpreter's shutdown aborted the process.
        Here no pyarrow thread runs Python code, and whole lines make every block stand alone.
        """
        import pyarrow as pa
        import pyarrow.json as pjson

        schema = pa.schema([self._schema.field(c) for c in columns])
        parse = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        path = self.paths[0]

        def parsed(block: bytes) -> dict:
            batch = _columns(_parse_json_block(block, parse), columns)
            _check_utf8(batch)  # ArrowInvalid, as a parse error: Python's json names the line
            return batch

        with _ReadAhead("logloss-json") as ahead:
            for block, position in self._json_blocks():
                ahead.submit(position, parsed, block)
                for batch, at in ahead.ready():
                    yield batch, at, path
            for batch, at in ahead.drain():
                yield batch, at, path

    def _json_blocks(self):
        """(whole lines, bytes of the file read so far) a block at a time, through the guard."""
        self._raw, stream = self._byte_stream()
        guard = _ObjectLines(stream, self.name)
        try:
            rest = b""
            while True:
                try:
                    # a line longer than a block is read on geometrically: a block at a time,
                    # its copies and searches were quadratic (33 s for a 200 MB line)
                    data = guard.read(max(CSV_BLOCK_BYTES, len(rest)))
                except Reread:
                    raise
                except Exception as error:  # noqa: BLE001 - a cut or corrupt compressed stream
                    raise unreadable(self.name, error) from None
                block = rest + data
                cut = block.rfind(b"\n") + 1 if data else len(block)
                if cut == 0 and data:  # one line longer than a block: keep reading
                    rest = block
                    continue
                block, rest = block[:cut], block[cut:]
                if block.strip():
                    yield block, self._raw.tell()
                if not data:
                    return
        finally:
            self._close_raw()

    def _json_first_block(self):
        """The first block of whole lines, parsed with every column's type inferred (what
        pyarrow's streaming reader fixes its schema from)."""
        blocks = self._json_blocks()
        try:
            block, _ = next(blocks, (b"", 0))
        finally:
            blocks.close()
        if not block:
            raise ValueError("the file has no line")  # read again by Python's json, which says so
        return _parse_json_block(block, None)

    def _csv_blocks(self):
        """(whole records, bytes of the file read so far, the line the block starts on) a block
        at a time; the first block starts with the header. The quoting is checked on the way
        (records.py)."""
        from .records import QuotingError, RecordBlocks

        self._raw, stream = self._byte_stream()

        def read(size: int) -> bytes:
            try:
                return stream.read(size)
            except Exception as error:  # noqa: BLE001 - a cut or corrupt compressed stream
                raise unreadable(self.name, error) from None

        try:
            records = RecordBlocks(read, self.delimiter, CSV_BLOCK_BYTES, LONGEST_CSV_RECORD)
            blocks = iter(records)
            while True:
                try:
                    block = next(blocks, None)
                except QuotingError as error:
                    raise DataError(f"{self.name}: {error} No result is reported.") from None
                if block is None:
                    return
                yield block, self._raw.tell(), records.line
        finally:
            self._close_raw()

    def _csv_first_table(self):
        """The first block parsed with every column's type inferred (the types every block is
        then read with); read on while it holds no row (a header longer than a block, or
        blank lines): types inferred from no value would all be null, read as text."""
        import pyarrow.csv as csv

        read = csv.ReadOptions(use_threads=False, block_size=1 << 30)
        parse = csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        convert = csv.ConvertOptions(null_values=[""], strings_can_be_null=True)
        blocks = self._csv_blocks()
        blank, ended = 0, True
        try:
            text, table = b"", None
            for block, _, _ in blocks:
                text += block
                if not bytes(block).strip(_UTF8_MARK + b"\r\n"):
                    blank += len(block)
                    if blank > 8 * CSV_BLOCK_BYTES:  # held in memory (and kept, on stdin):
                        ended = False  # endless blank lines are not read to their end
                        break
                    continue
                table = _parse_csv_block(text, 1, read, parse, convert, self.name)
                if table.num_rows:
                    break
        finally:
            blocks.close()
            if hasattr(self, "_stdin_stream"):
                self._stdin_stream.rewind()
        if table is None:  # pyarrow's "Empty CSV file" read as if the file were corrupt
            what = ("is empty: no header line and no rows" if not text else
                    f"holds only blank lines ({len(text):,} bytes): no header line and no rows"
                    if ended else f"starts with more than {8 * CSV_BLOCK_BYTES:,} bytes of "
                    "blank lines, with no header line in them (not read further)")
            raise DataError(f"{self.name}: the file {what}; no result is reported.")
        return table

    def _csv_blocks_in_parallel(self, columns, text_columns):
        """CSV (plain, compressed or standard input) cut into blocks of whole records by this
        thread (_csv_blocks), parsed on a pool of threads: pyarrow's streaming CSV reader parses
        on one thread. Every block gets the types the first block was read with, so a value that
        does not fit is the same conversion error wherever it is. Blocks are handed out in file
        order and only a few are in flight, so memory does not grow.
        """
        import pyarrow as pa
        import pyarrow.csv as csv

        names = list(self._schema.names)
        types = self._first_block_types(columns)
        types.update({c: pa.string() for c in text_columns})
        with_header = csv.ReadOptions(use_threads=False, block_size=1 << 30)
        after_it = csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 30)
        parse = csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        convert = csv.ConvertOptions(include_columns=columns, column_types=types,
                                     null_values=[""], strings_can_be_null=True)
        path = self.paths[0] if self.paths != ["-"] else self.name

        def parsed(block: memoryview, line: int, read):
            return _columns(_parse_csv_block(block, line, read, parse, convert, self.name, names),
                            columns)

        with _ReadAhead("logloss-csv") as ahead:
            for number, (block, position, line) in enumerate(self._csv_blocks()):
                ahead.submit(position, parsed, block, line, after_it if number else with_header)
                for batch, at in ahead.ready():
                    yield batch, at, path
            for batch, at in ahead.drain():
                yield batch, at, path

    def _close_raw(self) -> None:
        if self.paths != ["-"] and getattr(self, "_raw", None) is not None:
            self._raw.close()

    def _python_json_batches(self, columns, text_columns=()):
        """JSON Lines through Python's ``json``: a line at a time, any length, any mix of types
        (a column whose values are not all of one type is handed on as text, and so is each of
        ``text_columns``: in every batch, whatever its own values)."""
        rows: list[dict] = []
        path = self.paths[0]

        def batch():
            return {c: _python_values([r.get(c) for r in rows], c in text_columns)
                    for c in columns}

        for _, row in self._json_objects():
            rows.append(row)
            if len(rows) >= BATCH_ROWS:
                yield batch(), self._raw.tell(), path
                rows = []
        if rows:  # the file is read and closed by now
            yield batch(), self.size or 0, path

    def _python_json_names(self) -> list[str]:
        """The keys of the first thousand objects, in order of appearance."""
        names: dict = {}
        for count, (_, row) in enumerate(self._json_objects()):
            names.update(dict.fromkeys(row))
            if count >= 1000:
                break
        return list(names)

    def _json_objects(self):
        """(line number, object) for each non-blank line; a line that is not a JSON object
        (or holds a key twice) is an error naming the line."""

        def no_duplicates(pairs):
            seen = {}
            for key, value in pairs:
                if key in seen:
                    raise ValueError(f"the key {key!r} appears twice")
                seen[key] = value
            return seen

        self._raw, stream = self._byte_stream()
        try:
            yield from self._json_lines(stream, no_duplicates)
        finally:
            self._close_raw()

    def _json_lines(self, stream, no_duplicates):
        import json

        pending, line_number = b"", 0
        while True:
            try:
                chunk = stream.read(max(CSV_BLOCK_BYTES, len(pending)))  # geometric: a long
                # line is not copied and split again at every block
            except Exception as error:  # noqa: BLE001 - a cut or corrupt compressed stream
                raise unreadable(self.name, error) from None
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop() if chunk else b""
            for line in lines:
                line_number += 1
                if not line.strip():
                    continue
                try:
                    # NaN and Infinity are read as pyarrow reads them; the checks then name them.
                    value = json.loads(line, object_pairs_hook=no_duplicates)
                except ValueError as error:  # UnicodeDecodeError and JSONDecodeError too
                    raise DataError(f"{self.name}: line {line_number} is not valid JSON "
                                    f"({error}): {_shorten(line)}") from None
                if not isinstance(value, dict):
                    raise DataError(f"{self.name}: line {line_number} is not a JSON object: "
                                    f"{_shorten(line)}")
                yield line_number, value
            if not chunk:
                return


def _parse_csv_block(block, line: int, read, parse, convert, name: str, names=()):
    """One block of whole CSV records, starting on ``line`` of the file, parsed by pyarrow from
    its own buffer on one thread. pyarrow's errors count rows within the block ("Row #9"), which
    means nothing to the user: they are said with the line of the file."""
    import pyarrow as pa
    import pyarrow.csv as csv

    if block and bytes(block[-1:]) not in (b"\n", b"\r"):
        block = bytes(block) + b"\n"  # pyarrow refuses a header with no line end after it
    try:
        return csv.read_csv(pa.py_buffer(block), read_options=read, parse_options=parse,
                            convert_options=convert)
    except pa.ArrowInvalid as error:
        raise _located(error, block, line, name, parse.delimiter, names) from None


def _located(error, block, line: int, name: str, delimiter: str, names=()) -> Exception:
    """pyarrow's CSV error with its "Row #k" (the block's k-th record, empty lines left out) said
    as the line of the file the record starts on: a DataError for a record that does not parse,
    pyarrow's own error type otherwise (a conversion error makes the caller read again)."""
    from .records import record_line

    text = str(error)
    row = re.search(r"Row #(\d+)", text)
    found = row and record_line(bytes(block), int(row.group(1)), delimiter)
    if not found:
        return error
    at = line + found - 1
    shape = re.search(r"CSV parse error: Row #\d+: Expected (\d+) columns, got (\d+): (.*)",
                      text, re.DOTALL)
    if shape:
        expected, got, record = shape.groups()
        return DataError(f"{name}: line {at}: a record of {got} value{'s' * (got != '1')} where "
                         f"the header has {expected}: {_shorten(record.encode())}. No result "
                         "is reported.")
    if "CSV parse error" in text:
        return DataError(f"{name}: line {at}: {text.replace(row.group(0) + ': ', '')}. "
                         "No result is reported.")
    column = re.match(r"In CSV column #(\d+): ", text)
    if column and int(column.group(1)) < len(names):  # the file's column, counted from 0
        text = (f"line {at}, column {names[int(column.group(1))]!r}: "
                + text[column.end():].replace(row.group(0) + ": ", ""))
        return type(error)(text)
    return type(error)(text.replace(row.group(0), f"line {at}"))


def _parse_json_block(block: bytes, parse):
    """One block of whole JSON lines parsed by pyarrow from its own buffer, on one thread."""
    import pyarrow as pa
    import pyarrow.json as pjson

    read = pjson.ReadOptions(use_threads=False, block_size=max(len(block), 1))
    return pjson.read_json(pa.py_buffer(block), read_options=read, parse_options=parse)


def _python_values(values: list, text: bool = False):
    """A pyarrow array of one JSON column: typed when the values share a type, else text
    (always with ``text``)."""
    import json

    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None} if not text else {str, None}
    if bool in kinds and kinds <= {bool, int, float} and kinds != {bool}:
        values = [int(v) if isinstance(v, bool) else v for v in values]  # true is 1, as in a bool column
        kinds = {int, float}
    if kinds <= {bool} or kinds <= {int, float}:
        try:
            return pa.array(values)
        except (pa.ArrowException, OverflowError):
            pass  # an integer beyond int64: as text, which casts to float
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                    pa.string())


def _shorten(line: bytes) -> str:
    text = line.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _check_ipc_stream_end(source, name: str) -> None:
    """An IPC stream ends with an end-of-stream marker (0xFFFFFFFF 0x00000000, or 4 zero bytes
    in the pre-1.0 format). A writer killed between batches leaves whole batches and no
    marker, which pyarrow's reader takes for a complete stream."""
    import pyarrow as pa

    source.seek(0)
    size = source.size()
    messages = pa.ipc.MessageReader.open_stream(source)
    end = 0
    while True:
        try:
            messages.read_next_message()
        except StopIteration:
            break
        except Exception as error:  # noqa: BLE001 - cut inside a message
            raise unreadable(name, error) from None
        end = source.tell()
    source.seek(end)
    tail = source.read(8)
    if tail != b"\xff\xff\xff\xff\x00\x00\x00\x00" and tail[:4] != b"\x00\x00\x00\x00":
        raise DataError(f"{name}: the Arrow IPC stream has no end-of-stream marker after its "
                        f"last message (byte {end:,} of {size:,}): the writer stopped before "
                        "finishing it, so the stream is truncated; no result is reported.")


def _columns(batch, columns) -> dict:
    names = batch.schema.names
    return {c: _contiguous(batch.column(names.index(c))) for c in columns}


def _check_utf8(batch: dict) -> None:
    """Raise pyarrow's ArrowInvalid for a text column holding bytes that are not UTF-8. pyarrow's
    JSON and Parquet readers take text as it comes (its CSV reader checks, and reads such a
    column as binary); the checks, --by and --positive then fail on it with errors that name no
    file or row."""
    import pyarrow as pa

    for array in batch.values():
        kind = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            array.validate(full=True)


def _contiguous(column):
    """A table's column is a ChunkedArray; the checks want one Array."""
    if hasattr(column, "combine_chunks"):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _refuse_pickled(name: str, error: ValueError) -> None:
    """NumPy's refusal of an object array, said as what it is rather than as a corrupt file."""
    text = str(error)
    if "allow_pickle" in text or "Python objects" in text:
        raise DataError(
            f"{name}: holds Python objects (an array of dtype object, stored pickled), which "
            "logloss does not unpickle: loading a pickle can run code. Save the columns with a "
            "numeric dtype, e.g. np.save(path, array.astype(np.float64))."
        ) from None


def _check_column(column: str, array: np.ndarray, name: str) -> None:
    """A NumPy column is one value a row, of a type with values: a 2-D array (or a field of
    several values) would be scored value by value against a count of rows, and raw bytes
    (dtype V) have no value to read."""
    if array.ndim != 1:
        raise DataError(f"{name}: the column {column!r} has shape {array.shape}; a column must "
                        "be one-dimensional (one value a row).")
    if array.dtype.kind == "V":
        raise DataError(f"{name}: the column {column!r} holds raw bytes (dtype {array.dtype}), "
                        "not numbers or text.")


def _check_text(batch: dict, name: str, start: int) -> None:
    """NumPy text (dtype U) is UTF-32 that NumPy does not check: a corrupt file can hold values
    that are no code point (above 0x10FFFF, or surrogates), which pyarrow refuses with an error
    that names no file or row."""
    for column, array in batch.items():
        if array.dtype.kind != "U" or not array.size:
            continue
        codes = np.ascontiguousarray(array).view(np.dtype("u4").newbyteorder(array.dtype.byteorder))
        bad = (codes > 0x10FFFF) | ((codes >= 0xD800) & (codes <= 0xDFFF))
        if bad.any():
            row = int(np.argmax(bad.reshape(len(array), -1).any(axis=1)))
            raise DataError(f"{name}: row {start + row + 1}, column {column!r}: the text holds "
                            "values that are not Unicode characters; the file is corrupt, so no "
                            "result is reported.")


def _npy_columns(array: np.ndarray) -> dict[str, np.ndarray]:
    if array.dtype.names:
        return {name: array[name] for name in array.dtype.names}
    if array.ndim == 2 and array.shape[1] in (2, 3):
        names = ["label", "pred", "weight"][: array.shape[1]]
        return {name: array[:, i] for i, name in enumerate(names)}
    raise UsageError(
        "a .npy file must hold a structured array (named fields) or an (n, 2) / (n, 3) array of "
        f"label, pred[, weight] columns; this one has dtype {array.dtype} and shape {array.shape}."
    )


_UTF8_MARK = b"\xef\xbb\xbf"
_NOT_AN_OBJECT_LINE = re.compile(rb"\n[ \t\r]*+[^ \t\r\n{]")


class _ObjectLines:
    """The bytes of a JSON Lines file on their way to the blocks pyarrow parses, refused
    (``Reread`` with ``"python_json"``) at the first line whose first byte after blanks is not
    ``{``.

    pyarrow's JSON reader (26.0) reads past the end of its buffers, and crashes the process, on
    a line that starts with a bare ``null`` and goes on (``null}``, ``null]xx``: found by the
    fuzz target). Every other line that is not an object is an error anyway, so all of them go
    to Python's ``json``, which names the line. Blank lines and a UTF-8 byte order mark at the
    start of the file pass. The check counts line ends and line ends followed by ``{`` (two
    passes in C); only a block where the counts differ is searched with a regular expression.
    It runs on the thread that cuts the blocks, never on one of pyarrow's.
    """

    _BLANKS = b" \t\r"

    def __init__(self, stream, name: str):
        self._stream = stream
        self._name = name
        self._line_start = True  # no byte but blanks yet on the current line
        self._mark_left = _UTF8_MARK

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        start = 0
        if self._mark_left:  # the rest of a byte order mark that may open the file
            start = len(os.path.commonprefix([self._mark_left, data[:len(self._mark_left)]]))
            matched_before = len(_UTF8_MARK) - len(self._mark_left)
            if start == len(self._mark_left) or start == len(data):
                self._mark_left = self._mark_left[start:]
                if start == len(data):
                    return
            elif matched_before or start:  # a cut mark: not a line of an object
                raise Reread(self._name, "python_json")
            self._mark_left = b""
        if self._line_start:
            start = self._line_opening(data, start)
            if start is None:
                return
        ends = data.count(b"\n", start)
        if not ends:
            return
        if data.count(b"\n{", start) != ends - data.endswith(b"\n"):
            if _NOT_AN_OBJECT_LINE.search(data, start):
                raise Reread(self._name, "python_json")
        self._line_start = not data[data.rfind(b"\n") + 1:].strip(self._BLANKS)

    def _line_opening(self, data: bytes, at: int) -> int | None:
        """Check the line starting at ``at``; the index to go on from, or None at the data's end."""
        end = len(data)
        while at < end and data[at] in self._BLANKS:
            at += 1
        if at == end:
            self._line_start = True
            return None
        if data[at] not in b"{\n":
            raise Reread(self._name, "python_json")
        self._line_start = False
        return at


def _unbuffered_stdin():
    """Standard input's bytes without Python's buffered reader: its lock, held by the reader
    thread blocked in a read, made the interpreter's shutdown after Ctrl-C abort ("Fatal Python
    error: could not acquire lock for <_io.BufferedReader name='<stdin>'>"). A stdin without a
    file descriptor (replaced in tests) is read as it is."""
    if sys.stdin is None:  # started with standard input closed (`logloss score - <&-`)
        raise UsageError("-: standard input is closed, so there is no CSV to read from it.")
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return sys.stdin.buffer


def _wait_for_input(raw) -> None:
    """Until a non-blocking standard input has bytes (or its end) to read."""
    import select

    select.select([raw], [], [])


class _ReplayedStream(io.RawIOBase):
    """Standard input, whose first bytes (read for the header and the first block's types) are
    kept and read again once, by the pass that scores."""

    def __init__(self, raw):
        super().__init__()
        self._raw = raw
        self._kept: bytearray | None = bytearray()
        self._replay = b""
        self._pos = 0
        self._consumed = 0

    def rewind(self) -> None:
        if self._kept is None:
            raise RuntimeError("standard input is read again only once")
        self._replay, self._kept = bytes(self._kept), None
        self._pos = self._consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._pos < len(self._replay):
            chunk = self._replay[self._pos : self._pos + len(buffer)]
            self._pos += len(chunk)
        else:
            # as full as asked, as a buffered read gives it: a pipe hands an unbuffered read a
            # few KB at a time, and the first block's types would come from those rows only
            pieces, want = [], len(buffer)
            while want:
                piece = self._raw.read(want)
                if piece is None:  # non-blocking (O_NONBLOCK set by whoever shares the pipe)
                    _wait_for_input(self._raw)  # and nothing yet: not the end of the input
                    continue
                if not piece:
                    break
                pieces.append(piece)
                want -= len(piece)
            chunk = b"".join(pieces)
            if self._kept is not None:
                self._kept += chunk
        buffer[: len(chunk)] = chunk
        self._consumed += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._consumed


def _hidden(path: str, root: str) -> bool:
    """Whether a path below ``root`` has a part starting with ``_`` or ``.``: what pyarrow
    datasets, Spark and Hadoop skip (``_temporary/``, ``_SUCCESS``, ``.part-0.crc``), since
    those are a writer's leftovers or metadata, not data."""
    relative = os.path.relpath(path, root)
    return any(part.startswith(("_", ".")) for part in relative.split(os.sep) if part != "..")


def _glob_root(pattern: str) -> str:
    """The folders of a glob before its first wildcard: what the user named literally."""
    parts = pattern.split(os.sep)
    literal = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        literal.append(part)
    return os.sep.join(literal) or "."


def resolve(arguments: list[str]) -> list[Source]:
    """Turn command-line FILE arguments into sources, or raise UsageError."""
    sources = []
    for argument in arguments:
        if argument == "-":
            sources.append(Source("<stdin>", "csv", ["-"]))
            continue
        if os.path.isdir(argument):
            found = sorted(glob.glob(os.path.join(argument, "**", "*.parquet"), recursive=True,
                                     include_hidden=True)
                           + glob.glob(os.path.join(argument, "**", "*.pq"), recursive=True,
                                       include_hidden=True))
            paths = [p for p in found if not _hidden(p, argument)]
            if not paths:
                raise UsageError(f"{argument}: the directory holds no .parquet files"
                                 + (f" outside _ or . folders (ignored: {found[0]} ...)."
                                    if found else "."))
            sources.append(Source(argument, "parquet", paths, size=_size(paths),
                                  ignored=len(found) - len(paths)))
            continue
        if glob.has_magic(argument) and not os.path.exists(argument):
            found = sorted(glob.glob(argument, recursive=True))
            root = _glob_root(argument)
            paths = [p for p in found if not _hidden(p, root)]
            if not paths:
                raise UsageError(f"{argument}: no file matches"
                                 + (" outside _ or . folders." if found else "."))
            kinds = {_kind_of(p)[0] for p in paths}
            if kinds != {"parquet"}:
                sources.extend(resolve(paths))
            else:
                sources.append(Source(argument, "parquet", paths, size=_size(paths),
                                      ignored=len(found) - len(paths)))
            continue
        if not os.path.exists(argument):
            raise UsageError(f"{argument}: no such file.")
        kind, compression, delimiter = _kind_of(argument)
        sources.append(Source(argument, kind, [argument], compression, delimiter,
                              size=_size([argument])))
    return sources


def _size(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)
