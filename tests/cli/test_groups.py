"""GroupEncoder: group numbers that stay the same across batches, whatever the column holds."""

from __future__ import annotations

import math

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from logloss._cli import groups  # noqa: E402
from logloss._cli.groups import GroupEncoder  # noqa: E402
from logloss._cli.sources import UsageError  # noqa: E402


def _printed(value):
    """The key a value prints as (module doc of groups): NaN and infinities as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _check(encoder, arrays, keep=None):
    codes = encoder.encode(arrays, keep)
    assert codes.dtype.kind == "i" and (codes.size == 0 or codes.max() < encoder.count)
    keys = encoder.keys()
    rows = range(len(arrays[0])) if keep is None else np.flatnonzero(keep)
    expected = [tuple(_printed(a[r].as_py() if hasattr(a, "type") else a[r].item()) for a in arrays)
                for r in rows]
    assert [keys[c] for c in codes.tolist()] == expected
    return codes


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])
def test_integers_keep_their_numbers_as_the_range_grows_each_way(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    encoder = GroupEncoder(["a"])
    first = None
    starts = [0, 40, max(info.min, -300), info.max - 60, info.min]
    for batch, start in enumerate(starts):
        values = np.array([start + i for i in range(60)] if start != info.min else
                          [info.min, 0, info.max], dtype=dtype)
        values = rng.permutation(values)
        array = pa.array(values) if batch % 2 else values  # Arrow and NumPy columns alike
        codes = _check(encoder, [array])
        if first is None:
            first = dict(zip(values.tolist(), codes.tolist()))
    again = np.array(sorted(first), dtype=dtype)
    assert encoder.encode([again]).tolist() == [first[v] for v in again.tolist()]


def test_wide_integers_switch_to_hashing_and_keep_numbers(monkeypatch):
    monkeypatch.setattr(groups, "LOOKUP_SPAN", 1000)
    encoder = GroupEncoder(["a"])
    before = _check(encoder, [pa.array([5, 6, 7, 5], pa.int64())])
    _check(encoder, [pa.array([5, 10**12, -(10**15), 7], pa.int64())])
    after = encoder.encode([pa.array([5, 6, 7, 5], pa.int64())])
    assert after.tolist() == before.tolist()


def test_text_floats_nulls_booleans_and_dictionaries():
    encoder = GroupEncoder(["s"])
    _check(encoder, [pa.array(["a", None, "b", "a"])])
    _check(encoder, [pa.array(["c", "b", None, "\u00e9"])])
    _check(encoder, [pa.array(["b", "a", None], pa.large_string())])  # another type, same keys
    _check(encoder, [pa.array(["d", "a", None, "d"]).dictionary_encode()])
    assert encoder.count == 6  # a, None, b, c, é, d
    floats = GroupEncoder(["f"])
    codes = floats.encode([pa.array([0.0, -0.0, math.nan, -math.nan, None, math.inf, 1.5])])
    keys = floats.keys()
    assert keys[codes[0]] == keys[codes[1]] == (0.0,)  # 0 and -0 are one group, as printed
    assert codes[2] == codes[3] and keys[codes[2]] == ("NaN",)
    assert keys[codes[4]] == (None,) and keys[codes[5]] == ("Infinity",)
    codes = floats.encode([pa.array([math.nan, 1.5, None])])  # a later batch: the same numbers
    assert [keys[c] for c in codes.tolist()] == [("NaN",), (1.5,), (None,)]
    flags = GroupEncoder(["b"])
    _check(flags, [pa.array([True, False, True])])
    _check(flags, [pa.array([False, None, True])])


def test_several_columns_and_kept_rows():
    rng = np.random.default_rng(8)
    encoder = GroupEncoder(["a", "b", "c"])
    seen = {}
    for batch in range(6):
        n = 50
        a = pa.array(rng.integers(0, 4 + batch, n).astype(np.int16))
        b = pa.array(rng.choice(["x", "y", None], n).tolist())
        c = pa.array(rng.integers(-(10**14), 10**14, n) // (10**13))
        keep = rng.uniform(size=n) < 0.7
        codes = _check(encoder, [a, b, c], keep)
        for code, row in zip(codes.tolist(), np.flatnonzero(keep).tolist()):
            key = (a[row].as_py(), b[row].as_py(), c[row].as_py())
            assert seen.setdefault(key, code) == code  # one number per key, in every batch
    assert len(set(seen.values())) == len(seen)


def test_nested_column_is_refused_by_name():
    encoder = GroupEncoder(["tags"])
    with pytest.raises(UsageError, match="--by 'tags'.*list"):
        encoder.encode([pa.array([[1], [2]])])


def test_integers_far_from_zero_still_use_a_narrow_table():
    encoder = GroupEncoder(["a"])
    values = np.arange(10**12, 10**12 + 50, dtype=np.int64)
    _check(encoder, [values])
    _check(encoder, [values[::-1] + 3])
    table = encoder._columns[0]._tables[(np.dtype(np.int64).str, groups._Lookup)]
    assert not table.wide and table.table.size == 53


@pytest.mark.parametrize("batches", [
    [pa.array([None, None], pa.string())],                       # the first batch all null
    [pa.array(["a"]), pa.array([None, None], pa.string())],      # a later batch all null
    [pa.array([None], pa.float64()), pa.array([None, None], pa.float64())],
    [pa.nulls(3), pa.nulls(2)],                                 # the null type itself
    [pa.array([None, None], pa.int64()), pa.array([1, None], pa.int64())],
])
def test_all_null_batches_are_the_null_group(batches):
    # An all-null batch has an empty dictionary: its rows were taken from an empty array
    # (IndexError) rather than given the number of None.
    encoder = GroupEncoder(["g"])
    for array in batches:
        _check(encoder, [array])
