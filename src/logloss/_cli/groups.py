"""``--by``: per-row group numbers and the keys they stand for.

A key is a tuple of plain values that JSON, CSV and the table all print the same way: text,
integers, floats (NaN and infinities as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``),
booleans, None for a missing value, dates and times as ISO 8601 text, decimals as their exact
text, durations as an integer and unit (``"90 s"``), and binary values as hexadecimal text.
"""

from __future__ import annotations

import math

import numpy as np

from .batches import is_arrow, numpy_view
from .sources import UsageError


def group_codes(arrays, keep, names=None):
    """Per-row group numbers 0..k-1 and the k key tuples, for the rows that are kept.

    The codes of several columns are combined two at a time and renumbered 0..k-1 after each
    step, so a combined code is below rows * (distinct values + 1) and never overflows int64,
    however many values the columns hold together.
    """
    import pyarrow as pa

    names = names or [f"#{i}" for i in range(len(arrays))]
    codes = None
    columns = []
    for name, array in zip(names, arrays):
        if not is_arrow(array):
            array = pa.array(array)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if _is_nested(array.type):
            raise UsageError(f"--by {name!r}: the column holds {array.type} values; --by takes "
                             "a column of single values (text, numbers, booleans, dates, times, "
                             "decimals, binary).")
        encoded = array.dictionary_encode()
        values = _plain_values(encoded.dictionary) + [None]
        index = numpy_view(encoded.indices.fill_null(len(values) - 1))
        index = index.astype(np.int64)
        if codes is None:
            codes = index
        else:
            _, codes = np.unique(codes * len(values) + index, return_inverse=True)
            codes = codes.reshape(-1).astype(np.int64)
        columns.append((index, values))
    if keep is not None:
        codes = codes[keep]
        columns = [(index[keep], values) for index, values in columns]
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    keys = [tuple(values[index[row]] for index, values in columns) for row in first.tolist()]
    return inverse.reshape(-1), keys


def one_column_codes(array, keep, name):
    """For one --by column: per-row group numbers and the keys they stand for, as group_codes
    gives them, but from pyarrow's dictionary encoding alone (a hash table, no sort), or from the
    column's own dictionary where it is dictionary-encoded. The keys may include values no kept
    row has (their groups are empty) and may repeat a key; callers merge groups by key."""
    import pyarrow as pa

    if not is_arrow(array):
        array = pa.array(array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        if _is_nested(array.type):
            return group_codes([array], keep, [name])  # its UsageError
        array = array.dictionary_encode()
    values = _plain_values(array.dictionary) + [None]
    indices = array.indices
    if indices.null_count:
        indices = indices.fill_null(len(values) - 1)
    codes = numpy_view(indices)
    return (codes if keep is None else codes[keep]), [(value,) for value in values]


def _is_nested(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_nested(kind) or pa.types.is_union(kind)


def _plain_values(dictionary) -> list:
    """The distinct values of a column as plain text/number/bool values (see the module doc)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = dictionary.type
    if pa.types.is_floating(kind):
        return [_float_key(v) for v in dictionary.to_pylist()]
    if (pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_string(kind)
            or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        return dictionary.to_pylist()
    if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
            or pa.types.is_fixed_size_binary(kind)):
        return [None if v is None else v.hex() for v in dictionary.to_pylist()]
    if pa.types.is_timestamp(kind):
        # ISO 8601 with the unit's fraction (%S prints it) and the offset when zoned.
        text = pc.strftime(dictionary, format="%Y-%m-%dT%H:%M:%S" + ("%z" if kind.tz else ""))
        if kind.tz:  # +0100 -> +01:00, the extended form that goes with the date's dashes
            text = pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")
        return text.to_pylist()
    if pa.types.is_duration(kind):
        return [None if v is None else f"{v} {kind.unit}"
                for v in dictionary.cast(pa.int64()).to_pylist()]
    if pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_decimal(kind):
        return pc.cast(dictionary, pa.string()).to_pylist()  # ISO dates and times, exact decimals
    try:
        return pc.cast(dictionary, pa.string()).to_pylist()
    except pa.ArrowException:
        raise UsageError(f"--by: a column of {kind} values cannot be printed as text.") from None


def _float_key(value):
    if value is None:
        return value
    if math.isfinite(value):
        return value + 0.0  # -0.0 -> 0.0: the zeros' group prints alike whichever came first
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# -- group numbers kept across batches ---------------------------------------------------------

LOOKUP_SPAN = 1 << 22  # integer values spread wider than this are hashed, not looked up


class GroupEncoder:
    """``--by`` columns -> per-row group numbers that stay the same across batches, so the grouped
    kernel adds every batch into the same arrays; :meth:`keys` gives each number's key tuple, as
    :func:`group_codes` gives them.

    Each column keeps its distinct values once: a narrow integer column through a lookup table
    (value - lowest -> number), any other through pyarrow's hash table (the batch's dictionary
    matched against the values seen so far), so a batch costs a pass over its rows plus work in
    proportion to its dictionary and new values, never a sort. Values that print as the same key
    (0 and -0.0, every NaN) share a number, as they share a group. With several columns, each
    pair (groups so far, next column) is numbered the same way, as one int64."""

    def __init__(self, names):
        self.names = list(names)
        self._columns = [_ColumnNumbers(name) for name in self.names]
        self._pairs = [_ColumnNumbers(None) for _ in self.names[1:]]

    @property
    def count(self) -> int:
        """Group numbers given so far (a number may stand for rejected rows only)."""
        return (self._pairs[-1] if self._pairs else self._columns[0]).count

    def encode(self, arrays, keep=None) -> np.ndarray:
        """The group number (int32 or int64) of every kept row."""
        codes = None
        for i, (column, array) in enumerate(zip(self._columns, arrays)):
            index = column.encode(array)
            if codes is None:
                codes = index
            else:
                pair = codes.astype(np.int64) << 32  # numbers stay below 2**31 (checked below)
                pair |= index
                codes = self._pairs[i - 1].encode(pair)
            if max(column.count, self._pairs[i - 1].count if i else 0) > 1 << 31:
                raise UsageError(f"--by: more than 2**31 distinct values of {column.name!r} or "
                                 "of the combinations up to it.")
        return codes if keep is None else codes[keep]

    def keys(self) -> list:
        """The key tuple of every group number."""
        keys = [(value,) for value in self._columns[0].values]
        for pairs, column in zip(self._pairs, self._columns[1:]):
            packed = np.array(pairs.values, dtype=np.int64)
            values = column.values
            keys = [keys[a] + (values[b],)
                    for a, b in zip((packed >> 32).tolist(), (packed & 0xFFFFFFFF).tolist())]
        return keys


class _ColumnNumbers:
    """One column's distinct keys -> numbers 0..count-1, kept across batches (``name`` None: the
    int64 pairs of GroupEncoder, their own keys). The key dict decides; the lookup tables and
    hash tables per Arrow type only spare it the rows."""

    def __init__(self, name):
        self.name = name
        self.values: list = []  # the key of each number
        self._number: dict = {}
        self._tables: dict = {}

    @property
    def count(self) -> int:
        return len(self.values)

    def numbers_of(self, keys) -> np.ndarray:
        """The numbers of these keys, a new key numbered next."""
        if not self.values:  # the first batch: distinct keys (the common case) at C speed
            numbers = dict(zip(keys, range(len(keys))))
            if len(numbers) == len(keys):
                self._number, self.values = numbers, list(keys)
                return np.arange(len(keys), dtype=np.int64)
        out = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            number = self._number.get(key)
            if number is None:
                number = self._number[key] = len(self.values)
                self.values.append(key)
            out[i] = number
        return out

    def encode(self, array) -> np.ndarray:
        import pyarrow as pa

        if isinstance(array, np.ndarray) and array.dtype.kind in "iub" and array.ndim == 1:
            codes = self._table(array.dtype.str, _Lookup).encode(array, self)
            if codes is not None:
                return codes
        if not is_arrow(array):
            array = _arrow_numbers(array) if array.dtype.kind in "iuf" else pa.array(array)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        kind = array.type
        if pa.types.is_dictionary(kind):  # the column's own dictionary: nothing to hash
            if _is_nested(kind.value_type):
                raise _nested(self.name, kind.value_type)
            return self._table(kind.value_type, _Hashed).encode_dictionary(
                array.dictionary, array.indices, self)
        if _is_nested(kind):
            raise _nested(self.name, kind)
        if (pa.types.is_integer(kind) or pa.types.is_boolean(kind)) and not array.null_count:
            codes = self._table(kind, _Lookup).encode(numpy_view(array), self)
            if codes is not None:
                return codes
        return self._table(kind, _Hashed).encode(array, self)

    def _table(self, kind, make):
        table = self._tables.get((kind, make))
        if table is None:
            table = self._tables[(kind, make)] = make(kind)
        return table


def _nested(name, kind) -> UsageError:
    return UsageError(f"--by {name!r}: the column holds {kind} values; --by takes a column of "
                      "single values (text, numbers, booleans, dates, times, decimals, binary).")


class _Lookup:
    """Integers and booleans: number = table[value - lowest] (-1: not seen yet). One- and two-byte
    values index a table of every bit pattern; wider ones a table over the span seen so far, until
    it passes LOOKUP_SPAN (then None: the type is hashed from then on)."""

    def __init__(self, kind):
        self.boolean = str(kind) in ("bool", "|b1")
        self.low = 0
        self.table = np.zeros(0, dtype=np.int32)
        self.wide = False

    def encode(self, values: np.ndarray, column: _ColumnNumbers) -> np.ndarray | None:
        if self.wide:
            return None
        if values.dtype.itemsize <= 2:
            index = values.view(f"u{values.dtype.itemsize}")  # the bit pattern
            if not self.table.size:
                self.table = np.full(1 << (8 * values.dtype.itemsize), -1, dtype=np.int32)
        elif not values.size:
            return np.zeros(0, dtype=np.int32)
        else:
            low, high = int(values.min()), int(values.max())
            if high < LOOKUP_SPAN:  # a table from 0 (or below): values >= 0 index it as they are
                low = min(low, 0)
            if self.table.size:
                low, high = min(low, self.low), max(high, self.low + self.table.size - 1)
            if high - low >= LOOKUP_SPAN:
                self.wide = True
                return None
            if low != self.low or high - low + 1 != self.table.size:
                table = np.full(high - low + 1, -1, dtype=np.int32)
                table[self.low - low:self.low - low + self.table.size] = self.table
                self.table, self.low = table, low
            # values - low stays within the span: no overflow
            index = values if low == 0 else values - values.dtype.type(low)
        codes = self.table[index]
        if codes.size and codes.min() < 0:  # new values, found by marking their slots (no sort)
            missing = codes < 0
            mark = np.zeros(self.table.size, dtype=bool)
            mark[index[missing]] = True
            slots = np.flatnonzero(mark)
            if values.dtype.itemsize <= 2:
                new = slots.astype(index.dtype).view(values.dtype)
            else:
                new = slots.astype(values.dtype) + values.dtype.type(low)
            keys = [bool(v) for v in new.tolist()] if self.boolean else new.tolist()
            self.table[slots] = column.numbers_of(keys)
            codes = self.table[index]
        return codes


class _Hashed:
    """Any type, by pyarrow's hash tables: a batch whose values were all seen before is matched
    row by row against them (pyarrow.compute.index_in); otherwise the batch's dictionary is, and
    only its unmatched entries reach the key dict. Where the values seen outnumber the batch's
    rows many times over (small batches, many groups), the dictionary goes to the key dict
    directly, so no batch pays for a hash table of everything seen."""

    def __init__(self, kind):
        self.seen = None  # the values numbered so far, as Arrow (its own equality)
        self.numbers = np.zeros(0, dtype=np.int64)
        self.matchable = True  # False where index_in does not take the type

    def _match(self, values, rows: int):
        """index_in of ``values`` in the values seen, or None (nothing seen, too many, or a type
        index_in does not take)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.seen is None or not self.matchable or len(self.seen) > 16 * max(rows, 1):
            return None
        try:
            return pc.index_in(values, value_set=self.seen, skip_nulls=True)
        except pa.ArrowNotImplementedError:
            self.matchable = False
            return None

    def encode(self, array, column: _ColumnNumbers) -> np.ndarray:
        at = self._match(array, len(array))
        if at is not None and at.null_count == array.null_count:  # every value seen before
            return _take(self.numbers, at, column)
        encoded = array.dictionary_encode()
        return self.encode_dictionary(encoded.dictionary, encoded.indices, column)

    def encode_dictionary(self, dictionary, indices, column: _ColumnNumbers) -> np.ndarray:
        import pyarrow as pa

        n = len(dictionary)
        local = np.full(n + 1, -1, dtype=np.int64)  # the last: a null row's number
        found = np.zeros(n, dtype=bool)
        at = self._match(dictionary, len(indices)) if n else None
        if at is not None:
            found = numpy_view(at.is_valid())
            if found.any():
                local[:n][found] = self.numbers[numpy_view(at)[found]]
        missing = np.flatnonzero(~found)
        if missing.size:
            new = dictionary.take(_arrow_indices(missing)) if missing.size < n else dictionary
            keys = _plain_values(new) if column.name is not None else new.to_pylist()
            numbers = column.numbers_of(keys)
            local[missing] = numbers
            if self.matchable and (at is not None or self.seen is None):  # only values not seen
                valid = numpy_view(new.is_valid())
                added = new.drop_null()
                self.seen = added if self.seen is None else pa.concat_arrays([self.seen, added])
                self.numbers = np.concatenate([self.numbers, numbers[valid]])
        return _take(local[:n], indices, column)


# pyarrow's conversions from Python or NumPy objects (pa.array, a fill value) import pandas, which
# costs more than encoding a batch: these stay on Arrow buffers and NumPy.

def _arrow_indices(rows: np.ndarray):
    return _arrow_numbers(np.asarray(rows, dtype=np.int64))


def _arrow_numbers(values: np.ndarray):
    """A 1-d NumPy array of numbers as Arrow, sharing its memory where it can."""
    import pyarrow as pa

    values = np.ascontiguousarray(values.ravel(), dtype=values.dtype.newbyteorder("="))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values),
                                 [None, pa.py_buffer(values)])


def _take(numbers: np.ndarray, indices, column: _ColumnNumbers) -> np.ndarray:
    """numbers[indices] for Arrow integer indices, a null index giving the number of None."""
    index = numpy_view(indices)
    if not indices.null_count:
        return numbers[index]
    if not numbers.size:  # every row null (an all-null batch): nothing to take from
        return np.full(len(index), column.numbers_of([None])[0], dtype=np.int64)
    valid = numpy_view(indices.is_valid())
    codes = numbers[np.where(valid, index, 0)]  # a null slot's index may be anything
    codes[~valid] = column.numbers_of([None])[0]
    return codes
