"""A corpus of hostile files: each row is the bytes of a file (built here), the CLI arguments,
the exit code, a fragment of the message, and the row accounting when there is a result.

`counts` is (rows_read, rows_scored, rows_rejected) for a run that reports a result (it is
then run again with --format json to read them); None when the run must give no result.
`patch` sets module constants of logloss._cli.sources (small blocks and batches, so that block
boundaries fall inside a few rows of text).
"""

from __future__ import annotations

import gzip
import io
import json
import math
from decimal import Decimal

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from logloss._cli import main  # noqa: E402

SMALL = {"CSV_BLOCK_BYTES": 64, "BATCH_ROWS": 7}


def csv(*rows: str, header: str = "label,pred") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def jsonl(*objects) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects).encode()


def parquet(**columns) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def ipc_stream(batches: int = 2, eos: bool = True) -> bytes:
    table = pa.table({"label": [1, 0, 1], "pred": [0.9, 0.2, 0.7]})
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, table.schema)
    for _ in range(batches):
        writer.write_table(table)
    writer.close()
    data = sink.getvalue().to_pybytes()
    return data if eos else data[:-8]


def ipc_file() -> bytes:
    table = pa.table({"label": [1, 0, 1], "pred": [0.9, 0.2, 0.7]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def npy(array) -> bytes:
    sink = io.BytesIO()
    np.save(sink, array)
    return sink.getvalue()


def npz(**arrays) -> bytes:
    sink = io.BytesIO()
    np.savez(sink, **arrays)
    return sink.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def zst(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def ipc_unchecked(**columns) -> bytes:
    """An IPC stream of arrays pyarrow built without checking them (as a corrupt file reads)."""
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def dictionary_out_of_range() -> object:
    return pa.DictionaryArray.from_arrays(pa.array([0, 1, 8388609], pa.int32()),
                                          pa.array(["a", "b", "c"]), safe=False)


def strings_offset_out_of_range() -> object:
    offsets = pa.py_buffer(np.array([0, 3, 1 << 30, 9], np.int32).tobytes())
    return pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"0.50.20.7")])


def npz_bad_crc() -> bytes:
    """An .npz whose first member's data no longer matches its CRC (zipfile's BadZipFile)."""
    data = bytearray(npz(label=np.array([1, 0] * 20), pred=np.full(40, 0.5)))
    data[data.index(b"\x93NUMPY") + 140] ^= 1
    return bytes(data)


def npy_text_not_unicode() -> bytes:
    """A structured .npy with a text field holding 0x110000, no code point (a corrupt file)."""
    array = np.zeros(2, dtype=[("label", "i1"), ("pred", "f8"), ("g", "<U1")])
    array["label"], array["pred"], array["g"] = [1, 0], [0.5, 0.2], ["a", "b"]
    data = bytearray(npy(array))
    at = len(data) - 4  # the last row's g
    data[at:] = (0x110000).to_bytes(4, "little")
    return bytes(data)


def strings_not_utf8() -> object:
    """Two strings, the first the bytes a\\xff (pyarrow's JSON and Parquet readers pass them)."""
    offsets = pa.py_buffer(np.array([0, 2, 3], np.int32).tobytes())
    return pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(b"a\xffb")])


GOOD = csv("1,0.9", "0,0.2", "1,0.7")
QUOTED_NEWLINES = csv(*[f'{i % 2},0.{i + 1},"a note\nover two lines"' for i in range(9)],
                      header="label,pred,note")
LONG_LINE = csv(*["1,0.5,x"] * 5, "0,0.25," + "y" * 500, *["1,0.5,x"] * 5,
                header="label,pred,note")
PARQUET_GOOD = parquet(label=pa.array([1, 0, 1], pa.int8()), pred=[0.9, 0.2, 0.7])

# (id, file name, bytes, arguments, exit code, message fragment, counts, patch)
CASES = [
    # -- CSV: values that are not numbers, or not valid ------------------------------------
    ("csv-text", "x.csv", csv("1,0.5", "0,abc"), [], 1,
     "x.csv: row 2, column 'pred': value 'abc' is not a number", None, {}),
    ("csv-underscore", "x.csv", csv("1,0.5", "0,0.9_9"), [], 1,
     "row 2, column 'pred': value '0.9_9' is not a number", None, {}),
    ("csv-underscore-int", "x.csv", csv("1,0.5", "1_0,0.5"), [], 1,
     "row 2, column 'label': value '1_0' is not a number", None, {}),
    ("csv-arabic-indic", "x.csv", csv("1,0.5", "0,٠.٥"), [], 1,
     "row 2, column 'pred': value '٠.٥' is not a number", None, {}),
    ("csv-full-width", "x.csv", csv("1,0.5", "0,０.５"), [], 1,
     "row 2, column 'pred': value '０.５' is not a number", None, {}),
    ("csv-devanagari-label", "x.csv", csv("१,0.5"), [], 1,
     "row 1, column 'label': value '१' is not a number", None, {}),
    ("csv-hex", "x.csv", csv("1,0.5", "0,0x1p-2"), [], 1, "value '0x1p-2' is not a number",
     None, {}),
    ("csv-comma-decimal", "x.csv", csv('1,"0,5"'), [], 1, "value '0,5' is not a number", None, {}),
    ("csv-nul-byte", "x.csv", csv("1,0.5", "0,0.5\x00"), [], 1,
     "row 2, column 'pred': value '0.5\\x00' is not a number", None, {}),
    ("csv-not-utf8", "x.csv", b"label,pred\n1,0.5\n0,\xff\xfe\n", [], 1,
     r"row 2, column 'pred': value b'\xff\xfe' is not a number", None, {}),
    ("csv-not-utf8-positive", "x.csv", b"label,pred\nyes,0.5\n\xad\xad,0.5\nno,0.5\n",
     ["--positive", "yes", "--negative", "no"], 1,
     r"row 2, column 'label': value b'\xad\xad' is neither", None, {}),
    ("csv-nan", "x.csv", csv("1,0.5", "0,nan"), [], 1, "row 2, column 'pred': value nan is NaN",
     None, {}),
    ("csv-inf", "x.csv", csv("1,0.5", "0,inf"), [], 1, "value inf is not a probability", None,
     {}),
    ("csv-overflow", "x.csv", csv("1,0.5", "0,1e400"), [], 1, "value inf is not a probability",
     None, {}),
    ("csv-above-one", "x.csv", csv("1,0.5", "0,1.0000001"), [], 1, "is not a probability",
     None, {}),
    ("csv-negative-zero-ok", "x.csv", csv("0,-0.0", "1,1.0"), [], 0, "", (2, 2, 0), {}),
    ("csv-label-2", "x.csv", csv("1,0.5", "2,0.5"), [], 1, "value 2 is neither 0 nor 1", None,
     {}),
    ("csv-label-half", "x.csv", csv("1,0.5", "0.5,0.5"), [], 1, "value 0.5 is neither 0 nor 1",
     None, {}),
    ("csv-label-missing", "x.csv", csv("1,0.5", ",0.5"), [], 1, "value None is missing", None,
     {}),
    ("csv-weight-negative", "x.csv", csv("1,0.5,-1", header="label,pred,w"), ["--weight", "w"],
     1, "column 'w': value -1 is not a finite", None, {}),
    ("csv-weight-inf", "x.csv", csv("1,0.5,inf", header="label,pred,w"), ["--weight", "w"], 1,
     "column 'w': value inf is not a finite", None, {}),
    ("csv-weight-text", "x.csv", csv("1,0.5,heavy", header="label,pred,w"), ["--weight", "w"],
     1, "column 'w': value 'heavy' is not a number", None, {}),
    ("csv-logit-nan", "x.csv", csv("1,nan"), ["--logits"], 1, "value nan is NaN", None, {}),
    ("csv-spaces-are-numbers", "x.csv", csv("1, 0.5", "0,\t0.25"), [], 0, "", (2, 2, 0), {}),
    # -- CSV: skipped rows are counted once, under their first reason ----------------------
    ("csv-skip-once", "x.csv", csv("1,0.9", ",nan", "2,abc", "0,0.2", "1,1.5"),
     ["--on-invalid", "skip"], 0, "", (5, 2, 3), {}),
    ("csv-skip-unicode", "x.csv", csv("1,0.9", "0,٠.٥", "0,0.2"), ["--on-invalid", "skip"], 0,
     "", (3, 2, 1), {}),
    ("csv-skip-all", "x.csv", csv("2,0.5", "1,abc"), ["--on-invalid", "skip"], 1,
     "no row was left to score (2 read, 2 rejected)", None, {}),
    # found by the fuzzer: a column with no value at all is pyarrow's null type
    ("csv-empty-columns-logits", "x.csv", csv(","), ["--logits"], 1,
     "row 1, column 'label': value None is missing", None, {}),
    ("csv-empty-label-weighted", "x.csv", csv(",10.5,-1", header="label,pred,w"),
     ["--weight", "w"], 1, "row 1, column 'label': value None is missing", None, {}),
    # -- CSV: structure ---------------------------------------------------------------------
    ("csv-empty", "x.csv", b"", [], 1, "x.csv", None, {}),
    ("csv-header-only", "x.csv", b"label,pred\n", [], 1, "no row was left to score", None, {}),
    ("csv-extra-field", "x.csv", csv("1,0.5", "0,0.5,7"), [], 1,
     "x.csv: line 3: a record of 3 values where the header has 2: '0,0.5,7'", None, {}),
    ("csv-missing-field", "x.csv", csv("1,0.5", "0"), [], 1,
     "x.csv: line 3: a record of 1 value where the header has 2: '0'", None, {}),
    ("csv-duplicate-header", "x.csv", csv("1,0.5,0.4", header="label,pred,pred"), [], 1,
     "the column name 'pred' appears 2 times (columns 2, 3)", None, {}),
    ("csv-duplicate-unused", "x.csv", csv("1,0.5,a,b", header="label,pred,x,x"), [], 0, "",
     (1, 1, 0), {}),
    ("csv-no-known-column", "x.csv", csv("1,0.5", header="a,b"), [], 2,
     "cannot tell which column holds the labels", None, {}),
    ("csv-bom", "x.csv", b"\xef\xbb\xbf" + GOOD, [], 0, "", (3, 3, 0), {}),
    ("csv-crlf", "x.csv", GOOD.replace(b"\n", b"\r\n"), [], 0, "", (3, 3, 0), SMALL),
    ("csv-quoted-newlines", "x.csv", QUOTED_NEWLINES, [], 0, "", (9, 9, 0), SMALL),
    ("csv-quoted-newlines-gz", "x.csv.gz", gz(QUOTED_NEWLINES), [], 0, "", (9, 9, 0), SMALL),
    ("csv-quoted-header", "x.csv", csv("1,0.5", header='"la\nbel",pred'), ["--label", "la\nbel"],
     0, "", (1, 1, 0), {}),
    ("csv-long-line", "x.csv", LONG_LINE, [], 0, "", (11, 11, 0), SMALL),
    # pyarrow reads a value on past a quote closed badly or never closed: rows vanish inside it
    ("csv-text-after-closing-quote", "x.csv", csv("0,0.2", '0,"0.2"x', "1,0.9"), [], 1,
     "x.csv: line 3: a quoted value's closing quote is followed by 'x'", None, {}),
    ("csv-quote-swallows-rows", "x.csv",
     csv("0,0.2,x", '0,0.2,"abc', '1,0.3,"def"', "1,0.9,z", header="label,pred,c"), [], 1,
     "line 4: a quoted value's closing quote is followed by 'd'", None, SMALL),
    ("csv-quote-never-closed", "x.csv", csv(*["1,0.5"] * 20, '0,"0.25', *["1,0.5"] * 20), [],
     1, "line 22: the quote that opens a value here is never closed", None, SMALL),
    ("csv-quote-never-closed-gz", "x.csv.gz", gz(csv(*["1,0.5"] * 20, '0,"0.25', "1,0.5")), [],
     1, "line 22: the quote that opens a value here is never closed", None, SMALL),
    ("csv-quote-never-closed-skip", "x.csv", csv("1,0.5", '0,"0.25', "1,0.5"),
     ["--on-invalid", "skip"], 1, "never closed", None, {}),
    ("tsv-text-after-closing-quote", "x.tsv", b'label\tpred\n1\t"0.5" \n', [], 1,
     "line 2: a quoted value's closing quote is followed by ' '", None, {}),
    ("csv-quote-inside-unquoted-value", "x.csv", csv('1,0.5,5\'10"', '0,0.2,a"b', header="label,pred,h"),
     [], 0, "", (2, 2, 0), SMALL),
    ("csv-doubled-quotes", "x.csv", csv('1,0.5,"say ""hi"", then go"', "0,0.2,x",
                                        header="label,pred,h"), [], 0, "", (2, 2, 0), SMALL),
    ("csv-long-first-line", "x.csv", csv(f"1,0.5,{'y' * 300}", "0,0.2,z", header="label,pred,x"),
     [], 0, "", (2, 2, 0), SMALL),
    ("csv-long-first-line-gz", "x.csv.gz",
     gz(csv(f"1,0.5,{'y' * 300}", "0,0.2,z", header="label,pred,x")), [], 0, "", (2, 2, 0), SMALL),
    ("csv-long-line-gz", "x.csv.gz", gz(LONG_LINE), [], 0, "", (11, 11, 0), SMALL),
    ("csv-long-line-zst", "x.csv.zst", zst(LONG_LINE), [], 0, "", (11, 11, 0), SMALL),
    ("csv-type-change", "x.csv", csv(*["1,0.5"] * 20, "0.0,0.25", "1,0.5"), [], 0, "",
     (22, 22, 0), SMALL),
    ("csv-by-type-change", "x.csv", csv(*[f"1,0.5,{i}" for i in range(20)], "0,0.25,x",
                                        header="label,pred,g"), ["--by", "g"], 0, "", (21, 21, 0),
     SMALL),
    ("csv-by-and-pred-type-change", "x.csv",
     csv(*[f"1,1,{i % 2 == 0}" for i in range(20)], "0,0.25,maybe", header="label,pred,g"),
     ["--by", "g"], 0, "", (21, 21, 0), SMALL),
    ("csv-text-after-block", "x.csv", csv(*["1,0.5"] * 20, "0,oops", "1,0.5"), [], 1,
     "row 21, column 'pred': value 'oops' is not a number", None, SMALL),
    ("csv-unicode-after-block", "x.csv", csv(*["1,0.5"] * 20, "0,0.9_9", "1,0.5"), [], 1,
     "row 21, column 'pred': value '0.9_9' is not a number", None, SMALL),
    ("csv-gz-cut", "x.csv.gz", gz(csv(*["1,0.5"] * 3000))[:-6], [], 1, "truncated or corrupt",
     None, {}),
    ("csv-gz-not-gzip", "x.csv.gz", GOOD, [], 1, "x.csv.gz", None, {}),
    ("csv-zst-cut", "x.csv.zst", zst(csv(*["1,0.5"] * 3000))[:-4], [], 1, "truncated or corrupt", None,
     {}),
    ("tsv-commas", "x.tsv", GOOD, [], 2, "cannot tell which column holds the labels", None, {}),
    ("csv-positive-float", "x.csv", csv("1.0,0.9", "0.0,0.2", "1.0,0.7"), ["--positive", "1.0"],
     0, "", (3, 3, 0), {}),
    ("csv-positive-int-given-as-float", "x.csv", csv("1,0.9", "0,0.2"), ["--positive", "1.0"],
     0, "", (2, 2, 0), {}),
    ("csv-positive-word-on-numbers", "x.csv", csv("1,0.9", "0,0.2"), ["--positive", "yes"], 2,
     "Received: --positive='yes'", None, {}),
    ("csv-positive-third-value", "x.csv", csv("1,0.9", "0,0.2", "2,0.5"),
     ["--positive", "1", "--negative", "0"], 1, "value 2 is neither the --positive", None, {}),
    # -- JSON Lines ---------------------------------------------------------------------------
    ("jsonl-int-then-float", "x.jsonl",
     jsonl(*[{"label": 1, "pred": 1}] * 20, {"label": 0, "pred": 0.5}), [], 0, "",
     (21, 21, 0), SMALL),
    ("jsonl-number-then-text", "x.jsonl",
     jsonl(*[{"label": 1, "pred": 0.5}] * 20, {"label": 0, "pred": "0.25"}), [], 0, "",
     (21, 21, 0), SMALL),
    ("jsonl-text-not-number", "x.jsonl",
     jsonl(*[{"label": 1, "pred": 0.5}] * 20, {"label": 0, "pred": "0.9_9"}), [], 1,
     "row 21, column 'pred': value '0.9_9' is not a number", None, SMALL),
    ("jsonl-long-line", "x.jsonl",
     jsonl(*[{"label": 1, "pred": 0.5}] * 5, {"label": 0, "pred": 0.25, "x": "y" * 500}),
     [], 0, "", (6, 6, 0), SMALL),
    ("jsonl-nan-literal", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, '{"label": 0, "pred": NaN}'),
     [], 1, "row 2, column 'pred': value nan is NaN", None, {}),
    ("jsonl-infinity-literal", "x.jsonl",
     jsonl({"label": 1, "pred": 0.5}, '{"label": 0, "pred": Infinity}'), [], 1,
     "row 2, column 'pred': value inf is not a probability", None, {}),
    ("jsonl-duplicate-key", "x.jsonl",
     jsonl({"label": 1, "pred": 0.5}, '{"label": 0, "pred": 0.5, "pred": 0.9}'), [], 1,
     "the key 'pred' appears twice", None, {}),
    ("jsonl-array-line", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, "[1, 0.5]"), [], 1,
     "line 2 is not a JSON object", None, {}),
    ("jsonl-broken-line", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, '{"label": 0, "pr'), [], 1,
     "line 2 is not valid JSON", None, {}),
    ("jsonl-null-pred", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, {"label": 0, "pred": None}),
     [], 1, "row 2, column 'pred': value None is missing", None, {}),
    ("jsonl-missing-key", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, {"label": 0}), [], 1,
     "row 2, column 'pred': value None is missing", None, {}),
    ("jsonl-nested-pred", "x.jsonl", jsonl({"label": 1, "pred": {"p": 0.5}}), [], 1,
     "the pred column has type struct", None, {}),
    ("jsonl-blank-lines", "x.jsonl", b'{"label": 1, "pred": 0.5}\n\n   \n{"label": 0, "pred": 0.5}\n',
     [], 0, "", (2, 2, 0), {}),
    ("jsonl-empty", "x.jsonl", b"", [], 1, "the file has no columns (it is empty)", None, {}),
    # pyarrow's JSON reader crashed the process on a bare null followed by more text
    ("jsonl-null-line", "x.jsonl", jsonl({"label": 1, "pred": 0.5}, "null"), [], 1,
     "line 2 is not a JSON object: 'null'", None, {}),
    ("jsonl-null-then-text-past-a-block", "x.jsonl",
     jsonl(*[{"label": 1, "pred": None}] * 2, " null}" + "\0" * 32), ["--on-invalid", "skip"], 1,
     "line 3 is not valid JSON", None, SMALL),
    ("jsonl-byte-order-mark", "x.jsonl", b"\xef\xbb\xbf" + jsonl({"label": 1, "pred": 0.5}), [], 0,
     "", (1, 1, 0), {}),
    ("jsonl-gz-cut", "x.jsonl.gz", gz(jsonl(*[{"label": 1, "pred": 0.5}] * 3000))[:-6], [], 1,
     "truncated or corrupt", None, {}),
    # -- Parquet ------------------------------------------------------------------------------
    ("parquet-cut", "x.parquet", PARQUET_GOOD[: len(PARQUET_GOOD) // 2], [], 1,
     "truncated or corrupt", None, {}),
    ("parquet-empty", "x.parquet", b"", [], 1, "truncated or corrupt", None, {}),
    ("parquet-is-text", "x.parquet", GOOD, [], 1, "truncated or corrupt", None, {}),
    ("parquet-text-pred", "x.parquet", parquet(label=[1, 0], pred=["0.5", "0.9_9"]), [], 1,
     "row 2, column 'pred': value '0.9_9' is not a number", None, {}),
    ("parquet-decimal-pred", "x.parquet",
     parquet(label=[1, 0], pred=pa.array([Decimal("0.5"), Decimal("0.25")], pa.decimal128(5, 3))), [], 0, "",
     (2, 2, 0), {}),
    ("parquet-date-pred", "x.parquet",
     parquet(label=[1], pred=pa.array([0], pa.date32())), [], 1,
     "x.parquet: the pred column has type date32", None, {}),
    ("parquet-struct-by", "x.parquet", parquet(label=[1], pred=[0.5], s=[{"a": 1}]),
     ["--by", "s"], 2, "--by 's': the column holds struct<a: int64> values", None, {}),
    ("parquet-list-by", "x.parquet", parquet(label=[1], pred=[0.5], s=[[1, 2]]),
     ["--by", "s"], 2, "the column holds list<", None, {}),
    ("parquet-zero-weight-group", "x.parquet",
     parquet(label=[1, 0, 1], pred=[0.9, 0.2, 0.7], w=[0.0, 0.0, 1.0], g=["a", "a", "b"]),
     ["--weight", "w", "--by", "g"], 0, "", (3, 3, 0), {}),
    ("parquet-all-weights-zero", "x.parquet", parquet(label=[1, 0], pred=[0.9, 0.2], w=[0.0, 0.0]),
     ["--weight", "w"], 1, "every weight is zero", None, {}),
    # -- Arrow IPC ------------------------------------------------------------------------------
    ("ipc-stream", "x.arrow", ipc_stream(), [], 0, "", (6, 6, 0), {}),
    ("ipc-stream-no-eos", "x.arrow", ipc_stream(eos=False), [], 1,
     "has no end-of-stream marker", None, {}),
    ("ipc-stream-cut-in-batch", "x.arrow", ipc_stream()[:-60], [], 1, "truncated or corrupt",
     None, {}),
    ("ipc-stream-schema-only", "x.arrow", ipc_stream(batches=0, eos=False), [], 1,
     "has no end-of-stream marker", None, {}),
    ("ipc-file", "x.arrow", ipc_file(), [], 0, "", (3, 3, 0), {}),
    ("ipc-file-no-footer", "x.arrow", ipc_file()[:-20], [], 1, "has no footer", None, {}),
    ("ipc-empty", "x.arrow", b"", [], 1, "x.arrow", None, {}),
    ("ipc-stream-sliced", "x.arrow", ipc_stream(), [], 0, "", (6, 6, 0), {"BATCH_ROWS": 2}),
    ("ipc-dictionary-index-out-of-range", "x.arrow",
     ipc_unchecked(label=[1, 0, 1], pred=[0.9, 0.2, 0.7], g=dictionary_out_of_range()),
     ["--by", "g"], 1, "Dictionary indices invalid", None, {}),
    ("ipc-dictionary-pred-out-of-range", "x.arrow",
     ipc_unchecked(label=[1, 0, 1], pred=dictionary_out_of_range()), [], 1,
     "Dictionary indices invalid", None, {}),
    # -- NumPy ---------------------------------------------------------------------------------
    ("npy-cut", "x.npy", npy(np.array([[1, 0.5]] * 50))[:-40], [], 1, "truncated or corrupt",
     None, {}),
    ("npy-1d", "x.npy", npy(np.array([0.5, 0.5])), [], 2, "a .npy file must hold", None, {}),
    ("npy-nan", "x.npy", npy(np.array([[1, 0.5], [0, np.nan]])), [], 1,
     "row 2, column 'pred': value nan is NaN", None, {}),
    ("npz-lengths", "x.npz", npz(label=np.array([1, 0]), pred=np.array([0.5])), [], 1,
     "the arrays have different lengths", None, {}),
    ("npz-cut", "x.npz", npz(label=np.array([1, 0] * 50), pred=np.full(100, 0.5))[:300], [], 1,
     "truncated or corrupt", None, {}),
    ("npz-text-pred", "x.npz", npz(label=np.array([1, 0]), pred=np.array(["0.5", "0.9_9"])), [],
     1, "row 2, column 'pred': value '0.9_9' is not a number", None, {}),
    ("npz-bad-crc", "x.npz", npz_bad_crc(), [], 1, "truncated or corrupt", None, {}),
    ("npz-2d", "x.npz", npz(label=np.array([[1, 0], [0, 1]]), pred=np.full((2, 2), 0.5)), [], 1,
     "the column 'label' has shape (2, 2); a column must be one-dimensional", None, {}),
    ("npz-0d", "x.npz", npz(label=np.array(1), pred=np.array(0.5)), [], 1,
     "the column 'label' has shape ()", None, {}),
    ("npy-field-of-two", "x.npy",
     npy(np.zeros(2, dtype=[("label", "i1"), ("pred", "f8", (2,))])), [], 1,
     "the column 'pred' has shape (2, 2)", None, {}),
    ("npz-void-by", "x.npz", npz(label=np.array([1, 0]), pred=np.array([0.5, 0.2]),
                                g=np.array([b"ab", b"cd"], dtype="V2")), ["--by", "g"], 1,
     "the column 'g' holds raw bytes (dtype |V2)", None, {}),
    ("npy-text-not-unicode", "x.npy", npy_text_not_unicode(), ["--by", "g"], 1,
     "row 2, column 'g': the text holds values that are not Unicode characters", None, {}),
    # -- predicted classes and pickles ----------------------------------------------------------
    ("csv-true-false-pred", "x.csv", csv("1,true", "0,false"), [], 1,
     "holds true/false values, which are predicted classes", None, {}),
    ("jsonl-bool-pred", "x.jsonl", jsonl({"label": 1, "pred": True}, {"label": 0, "pred": False}),
     [], 1, "holds true/false values", None, {}),
    ("parquet-bool-pred", "x.parquet", parquet(label=[1, 0], pred=[True, False]), [], 1,
     "holds true/false values", None, {}),
    ("npz-bool-pred", "x.npz", npz(label=np.array([1, 0]), pred=np.array([True, False])), [], 1,
     "holds true/false values", None, {}),
    ("jsonl-bool-label", "x.jsonl", jsonl({"label": True, "pred": 0.9}, {"label": False, "pred": 0.2}),
     [], 0, "", (2, 2, 0), {}),
    ("jsonl-bool-label-missing", "x.jsonl",
     jsonl({"pred": 0.9}, {"label": False, "pred": 0.2}, {"label": True, "pred": 0.7}),
     ["--on-invalid", "skip"], 0, "", (3, 2, 1), {}),
    ("csv-bool-label-missing", "x.csv", csv(",0.9", "false,0.2", "true,0.7"), [], 1,
     "row 1, column 'label': value None is missing", None, {}),
    ("jsonl-not-utf8-by", "x.jsonl",
     b'{"label": 1, "pred": 0.5, "g": "a\xff"}\n{"label": 0, "pred": 0.2, "g": "b"}\n',
     ["--by", "g"], 1, "line 1 is not valid JSON ('utf-8' codec can't decode", None, {}),
    ("jsonl-not-utf8-label", "x.jsonl", b'{"label": "\xc3", "pred": 0.5}\n{"label": "n", "pred": 0.2}\n',
     ["--positive", "n"], 1, "line 1 is not valid JSON ('utf-8' codec can't decode", None, {}),
    ("parquet-not-utf8-by", "x.parquet",
     parquet(label=[1, 0], pred=[0.5, 0.2], g=strings_not_utf8()), ["--by", "g"], 1,
     "Invalid UTF8 sequence", None, {}),
    ("parquet-not-utf8-by-sliced", "x.parquet",
     parquet(label=[1, 0] * 3, pred=[0.5, 0.2] * 3,
             g=pa.concat_arrays([pa.array(["c", "d", "e", "f"]), strings_not_utf8()])),
     ["--by", "g"], 1, "Invalid UTF8 sequence", None, {"BATCH_ROWS": 1}),
    ("npy-object", "x.npy", npy(np.array([[1, 0.5], [0, 0.2]], dtype=object)), [], 1,
     "holds Python objects", None, {}),
    ("npz-object", "x.npz", npz(label=np.array([1, 0], dtype=object), pred=np.array([0.5, 0.2])), [],
     1, "holds Python objects", None, {}),
]


@pytest.mark.parametrize(("name", "content", "args", "code", "message", "counts", "patch"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file(tmp_path, capsys, monkeypatch, name, content, args, code, message, counts,
                      patch):
    import logloss._cli.sources as sources

    for constant, value in patch.items():
        monkeypatch.setattr(sources, constant, value)
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["score", str(path), "-q", *args]) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    if code != 0:
        assert captured.out == ""
        return
    assert main(["score", str(path), "-q", "--format", "json", *args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["rows_read"], result["rows_scored"], result["rows_rejected"]) == counts
    assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"]
    assert sum(result["rejected_by_reason"].values()) == result["rows_rejected"]
    if result["log_loss"] is not None:
        assert math.isfinite(result["log_loss"])


def test_the_corpus_has_at_least_sixty_files():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("args", [[], ["--label", "label", "--pred", "label", "--by", "g"]])
def test_ipc_string_offsets_past_the_data_are_refused_not_a_crash(tmp_path, args):
    # In a child process: pyarrow's IPC reader checks buffer sizes only, and parsing these
    # strings as numbers (or grouping by them) read past the data: SIGBUS/SIGSEGV.
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "x.arrow"
    path.write_bytes(ipc_unchecked(label=[1, 0, 1], pred=strings_offset_out_of_range(),
                                   g=strings_offset_out_of_range()))
    run = subprocess.run([sys.executable, "-m", "logloss", "score", str(path), "-q", *args],
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
                              "PATH": ""})
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "Offset invariant failure" in run.stderr and "truncated or corrupt" in run.stderr


def test_a_parquet_directory_with_a_file_without_the_columns_names_it(tmp_path, capsys):
    # It was "cannot be read completely (ValueError: 'label' is not in list) ... truncated or
    # corrupt": the file is whole, it has other columns than the first file the run chose from.
    (tmp_path / "a.parquet").write_bytes(parquet(label=[1, 0], pred=[0.9, 0.2]))
    (tmp_path / "b.parquet").write_bytes(parquet(y=[1], p=[0.5]))
    assert main(["score", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b.parquet'}: no column 'label', which the first file of" in err
    assert "corrupt" not in err
