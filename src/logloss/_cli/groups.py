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
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
