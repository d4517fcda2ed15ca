"""``--by``: per-row group numbers and the keys they stand for."""

from __future__ import annotations

import numpy as np

from .batches import is_arrow, numpy_view


def group_codes(arrays, keep):
    """Per-row group numbers 0..k-1 and the k key tuples, for the rows that are kept."""
    import pyarrow as pa

    codes = None
    dictionaries = []
    for array in arrays:
        if not is_arrow(array):
            array = pa.array(array)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        encoded = array.dictionary_encode()
        values = encoded.dictionary.to_pylist() + [None]
        index = numpy_view(encoded.indices.fill_null(len(values) - 1))
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
