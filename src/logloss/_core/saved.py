"""Checks for saved states read back from JSON: every field is named by its path in the error
(``state['models'][0]['hist'][3][17]``), with what was expected and what was received.

A saved state is a file a user may have edited, cut or built by hand; a value that only looks
right (a negative count, a NaN in a histogram, a string where a list was) would otherwise flow
into figures that are reported as complete. Infinite values are written as the string "inf"
(strict JSON, which other languages' parsers read); ``inf`` as a float, what Python's ``json``
makes of ``Infinity``, is accepted where an older version wrote it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from itertools import chain

import numpy as np

INF = "inf"


def child(where: str, key) -> str:
    return f"{where}[{key!r}]"


def mapping(value, where: str, keys, optional=()) -> Mapping:
    """A mapping with every key of ``keys``, some of ``optional``, nothing else."""
    if not isinstance(value, Mapping):
        raise TypeError(f"`{where}` must be a mapping (a JSON object). Received "
                        f"{type(value).__name__}: {_short(value)}.")
    missing = sorted(set(keys) - set(value))
    unknown = sorted(map(str, set(value) - set(keys) - set(optional)))
    if missing or unknown:
        raise ValueError(f"`{where}` must have the keys {sorted(keys)}"
                         + (f" (and may have {sorted(optional)})" if optional else "")
                         + f". Missing: {missing}; unknown: {unknown}.")
    return value


def sequence(value, where: str, length: int | None = None) -> list:
    if not isinstance(value, list):
        raise TypeError(f"`{where}` must be a list (a JSON array). Received "
                        f"{type(value).__name__}: {_short(value)}.")
    if length is not None and len(value) != length:
        raise ValueError(f"`{where}` must have {length} entries. Received {len(value)}.")
    return value


def integer(value, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"`{where}` must be an integer {bounds}. Received {_short(value)}.")
    return value


def boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{where}` must be true or false. Received {_short(value)}.")
    return value


def text(value, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"`{where}` must be a string. Received {_short(value)}.")
    return value


def number(value, where: str, *, signed: bool = False, infinite: bool = False) -> float:
    """A finite number (non-negative unless ``signed``), or +infinity where ``infinite``."""
    if infinite and (value == INF or (isinstance(value, float) and value == math.inf)):
        return math.inf
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not _in_range(value)
            or not math.isfinite(value)):
        expected = 'a finite number or "inf"' if infinite else "a finite number"
        raise ValueError(f"`{where}` must be {expected}. Received {_short(value)}.")
    if not signed and value < 0:
        raise ValueError(f"`{where}` must be non-negative. Received {value!r}.")
    return float(value)


def array(value, where: str, shape: tuple, *, signed=False, infinite=None) -> np.ndarray:
    """Nested lists of numbers of this shape as float64: finite and non-negative (unless
    ``signed``), but +infinity where ``infinite`` (a boolean mask over the array, or True for
    every entry) allows it. Every bad entry is named by its index."""
    flat = _flatten(value, where, shape)
    kinds = set(map(type, flat))
    if not kinds <= {int, float, str}:
        bad = next(i for i, v in enumerate(flat) if type(v) not in (int, float, str))
        _refuse(flat, bad, where, shape, "a number")
    if int in kinds:  # JSON integers have no bound: past float64's range is no number here
        bad = next((i for i, v in enumerate(flat) if type(v) is int and not _in_range(v)), None)
        if bad is not None:
            _refuse(flat, bad, where, shape, "a finite number")
    if str in kinds:
        strings = [i for i, v in enumerate(flat) if isinstance(v, str)]
        bad = next((i for i in strings if flat[i] != INF), None)
        if bad is not None:
            _refuse(flat, bad, where, shape, 'a number or "inf"')
        flat = list(flat)
        for i in strings:
            flat[i] = math.inf
    values = np.array(flat, dtype=np.float64).reshape(shape)
    allowed = np.zeros(shape, dtype=bool) if infinite is None else np.broadcast_to(infinite, shape)
    bad_mask = np.isnan(values) | (np.isinf(values) & ~(allowed & (values > 0)))
    if not signed:
        bad_mask |= values < 0
    if bad_mask.any():
        index = int(np.argmax(bad_mask.ravel()))
        expected = "a finite number" if not allowed.any() else 'a finite number or "inf"'
        _refuse(flat, index, where, shape, expected if signed else f"{expected} >= 0")
    return values


def _flatten(value, where: str, shape: tuple) -> list:
    if not shape:
        return [value]
    sequence(value, where, shape[0])
    if len(shape) == 1:
        return value
    return list(chain.from_iterable(_flatten(row, f"{where}[{i}]", shape[1:])
                                    for i, row in enumerate(value)))


def _refuse(flat, index: int, where: str, shape: tuple, expected: str):
    position = "".join(f"[{i}]" for i in np.unravel_index(index, shape)) if shape else ""
    raise ValueError(f"`{where}{position}` must be {expected}. Received {_short(flat[index])}.")


def encode(values):
    """Python numbers (nested lists) for JSON, +infinity written as "inf"."""
    if isinstance(values, list):
        return [encode(v) for v in values]
    return INF if values == math.inf else values


def encode_array(values: np.ndarray) -> list:
    """``values.tolist()``, +infinity written as "inf" (cheap where there is none)."""
    listed = values.tolist()
    return encode(listed) if np.isinf(values).any() else listed


def _in_range(value) -> bool:
    return not isinstance(value, int) or abs(value) <= _LARGEST


_LARGEST = int(sys.float_info.max)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
