"""Hostile CSV files through the whole reader (quoting check, blocks, pyarrow, the checks), each
read as a file, as .csv.gz and on standard input, with blocks of 64 bytes (every edge inside a
few rows, quotes and line ends at the edges) and of the default size, with either quoting scan.

Each file has the number Python's ``csv`` module and ``math.fsum`` of the formula give, or the
error it must be refused with: the same text, naming the line a text editor shows, whatever the
block size, the scan or the form.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

from logloss._cli import main, records, sources  # noqa: E402

ENGINES = ["python"] + (["compiled"] if records._compiled_scan is not None else [])
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def reference(data: bytes) -> float:
    """The mean log loss of columns label and pred, from Python's csv and math.fsum."""
    rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) if r]
    header, body = rows[0], rows[1:]
    y, p = header.index("label"), header.index("pred")
    losses = [-math.log(float(r[p])) if r[y] == "1" else -math.log1p(-float(r[p])) for r in body]
    return math.fsum(losses) / len(losses)


def noted(rows: int, seed: int, end: str = "\n") -> bytes:
    """label,pred,note rows whose notes hold delimiters, quoted line ends, doubled quotes."""
    rng = random.Random(seed)
    notes = ['"a, b"', '"line\nbreak"', '"cr\r\nlf"', '"say ""hi"""', "plain", '""', '"\r"',
             '""""', '","', "x\x00y", '"' + "q" * rng.randint(0, 90) + '"']
    lines = ["label,pred,note"] + [f"{rng.randint(0, 1)},{rng.uniform(0.01, 0.99)!r},"
                                   f"{rng.choice(notes)}" for _ in range(rows)]
    return (end.join(lines) + end).encode()


def mixed_ends(text: bytes, seed: int) -> bytes:
    """The record ends of ``text`` (one record a line, no quoted line end) as \n, \r\n or \r."""
    rng = random.Random(seed)
    return b"".join(line + rng.choice([b"\n", b"\r\n", b"\r"]) for line in text.splitlines())


def wide(rows: int) -> bytes:
    rng = random.Random(3)
    header = ",".join(["label"] + [f"c{i}" for i in range(300)] + ["pred"])
    body = [",".join([str(rng.randint(0, 1))] + [str(i) for i in range(300)]
                     + [repr(rng.uniform(0.01, 0.99))]) for _ in range(rows)]
    return ("\n".join([header, *body]) + "\n").encode()


PLAIN = b"label,pred\n" + b"".join(f"{i % 2},{(i % 97 + 1) / 99!r}\n".encode() for i in range(300))

CASES = [
    # (name, bytes, the error's text, or None for the number of `reference`)
    ("quoted-line-ends-delimiters-doubled-quotes", noted(300, 1), None),
    ("the-same-with-crlf", noted(300, 2, "\r\n"), None),
    ("the-same-with-lone-cr", noted(300, 3, "\r"), None),
    ("mixed-line-ends", mixed_ends(PLAIN, 4), None),
    ("bom-and-quoted-header", b'\xef\xbb\xbf"label","pred"\r\n' + PLAIN.split(b"\n", 1)[1], None),
    ("no-line-end-at-the-end", PLAIN.rstrip(b"\n"), None),
    ("blank-lines", PLAIN.replace(b"\n1,", b"\n\n\r\n1,"), None),
    ("very-wide-rows", wide(40), None),
    ("header-only", b"label,pred\n", "no row was left to score"),
    ("header-only-no-line-end", b"label,pred", "no row was left to score"),
    ("empty", b"", "the file is empty: no header line and no rows"),
    ("only-blank-lines", b"\n\r\n\r", "the file holds only blank lines (4 bytes)"),
    ("ends-inside-a-quote", noted(40, 5) + b'1,0.5,"never\nclosed\n',
     "line {line}: the quote that opens a value here is never closed"),
    ("closing-quote-then-text-lone-cr", b'label,pred\r0,0.2\r1,"0.3"x\r1,0.9\r',
     "line 3: a quoted value's closing quote is followed by 'x'"),
    ("a-record-too-many-values-after-quoted-line-ends", noted(60, 6) + b"1,0.5,a,b\n",
     "line {line}: a record of 4 values where the header has 3: '1,0.5,a,b'"),
    ("a-record-too-few-values-after-blank-lines", PLAIN + b"\n\n\r\n0\n" + b"1,0.5\n" * 20,
     "line 305: a record of 1 value where the header has 2: '0'"),
]


def error_line(data: bytes) -> int:
    """The line a text editor shows the last record of ``data`` starting on."""
    head = data[:data.rstrip(b"\n").rfind(b"\n1,0.5,") + 1]
    return len(head.decode("latin-1").splitlines()) + 1


def run(tmp_path, monkeypatch, capsys, data: bytes, form: str, args=()):
    if form == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        target = "-"
    else:
        target = str(tmp_path / f"x{form}")
        with open(target, "wb") as out:
            out.write(gzip.compress(data) if form.endswith(".gz") else data)
    code = main(["score", target, "--format", "json", "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name, data, error", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("form", [".csv", ".csv.gz", "stdin"])
@pytest.mark.parametrize("block", [64, None])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_hostile_csv_gives_the_reference_number_or_its_error(tmp_path, monkeypatch, capsys,
                                                               name, data, error, form, block,
                                                               engine):
    if block:
        monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", block)
    if engine == "python":
        monkeypatch.setattr(records, "_compiled_scan", None)
    code, out, err = run(tmp_path, monkeypatch, capsys, data, form)
    if error is None:
        assert code == 0, err
        result = json.loads(out)
        assert result["log_loss"] == pytest.approx(reference(data), rel=1e-14)
    else:
        assert code == 1
        assert error.format(line=error_line(data)) in err, err
        assert ("x" + form if form != "stdin" else "<stdin>") + ": " in err or "no row" in err


def test_the_expected_lines_are_the_editors():
    """The lines the table expects, counted by Python's str.splitlines (a text editor's count)."""
    data = dict((name, data) for name, data, _ in CASES)
    text = data["ends-inside-a-quote"].decode()
    assert text.splitlines()[error_line(data["ends-inside-a-quote"]) - 1] == '1,0.5,"never'
    text = data["a-record-too-few-values-after-blank-lines"].decode()
    assert text.splitlines()[304] == "0"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_first_block_of_the_header_only_reads_on_for_the_types(tmp_path, monkeypatch, capsys,
                                                                 engine):
    """A header longer than a block: the first block is the header alone, and types inferred
    from no value were all null, so every column was read as text (--by keys "3", not 3)."""
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    if engine == "python":
        monkeypatch.setattr(records, "_compiled_scan", None)
    header = ",".join(["label", "pred", "g"] + [f"c{i:02d}" for i in range(20)])
    rows = [",".join(["1", "0.25", "3"] + ["7"] * 20), ",".join(["0", "0.5", "4"] + ["8"] * 20)]
    data = (header + "\n" + "\n".join(rows * 3) + "\n").encode()
    code, out, err = run(tmp_path, monkeypatch, capsys, data, ".csv", ["--by", "g"])
    assert code == 0, err
    result = json.loads(out)
    assert [g["group"]["g"] for g in result["groups"]] == [3, 4]
    source = sources.resolve([str(tmp_path / "x.csv")])[0]
    source.column_names()
    assert str(source._schema.field("g").type) == "int64"
    assert result["log_loss"] == pytest.approx(reference(data), rel=1e-14)


def test_a_conversion_error_on_standard_input_names_the_line_and_the_column(monkeypatch, capsys):
    """Standard input is read once: a column whose values change type after the first block is
    refused, naming the line of the file and the column, not a row counted inside a block."""
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    data = b"label,pred,g\n" + b"1,0.5,3\n" * 50 + b"1,0.5,x\n" + b"0,0.25,4\n" * 5
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["score", "-", "--by", "g", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "<stdin>: line 52, column 'g': CSV conversion error to int64: invalid value 'x'" in err
    assert "save it to a file" in err


def test_a_gzip_stream_cut_inside_a_quoted_record_is_refused(tmp_path, monkeypatch, capsys):
    data = noted(2000, 7)
    packed = gzip.compress(data)
    for cut in (len(packed) // 2, len(packed) - 9):
        (tmp_path / "x.csv.gz").write_bytes(packed[:cut])
        assert main(["score", str(tmp_path / "x.csv.gz"), "--quiet"]) == 1
        assert "truncated or corrupt" in capsys.readouterr().err


def test_standard_input_is_read_in_full_blocks_from_a_pipe():
    """Unbuffered, a pipe gives a few KB a read: the replayed stream still fills what is asked,
    so the first block (the types) is not just the first few rows."""

    class Trickle:
        def __init__(self, data):
            self.data = data

        def read(self, size):
            piece, self.data = self.data[:min(size, 5)], self.data[min(size, 5):]
            return piece

    stream = sources._ReplayedStream(Trickle(b"0123456789" * 10))
    assert stream.read(64) == (b"0123456789" * 10)[:64]
    stream.rewind()
    assert stream.read(100) == (b"0123456789" * 10)[:64]  # what was kept, then the rest
    assert stream.read(100) == (b"0123456789" * 10)[64:]


def _wait_until_read(read_end: int, child, limit: float = 60.0) -> None:
    """Until the bytes written into the pipe have all been read by ``child`` (FIONREAD of the
    read end, which the caller keeps open, is 0)."""
    import array
    import fcntl
    import termios

    deadline = time.monotonic() + limit
    unread = array.array("i", [1])
    while time.monotonic() < deadline and child.poll() is None:
        fcntl.ioctl(read_end, termios.FIONREAD, unread, True)
        if unread[0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the child read no input within {limit} s (exit {child.poll()})")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child")
def test_ctrl_c_while_reading_standard_input_exits_130_without_an_abort():
    """Ctrl-C while the reader thread waits on standard input: the interpreter's shutdown found
    the thread holding the BufferedReader's lock and aborted ("Fatal Python error: could not
    acquire lock for <_io.BufferedReader name='<stdin>'>", SIGABRT), some runs in three; and
    the exit waited 10 s for the reader to give up."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    for rows, wait in [(2000, 0.2), (400_000, 0.5), (400_000, 1.5)]:
        read, write = os.pipe()
        child = subprocess.Popen([sys.executable, "-m", "logloss", "score", "-"], stdin=read,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            os.write(write, b"label,pred\n" + b"1,0.5\n" * rows)  # the pipe stays open: it waits
            # Ctrl-C once the child has read everything written (it then waits on stdin), not
            # after a fixed time: on a loaded machine it may still be importing, where
            # KeyboardInterrupt is Python's own (a traceback, killed by SIGINT)
            _wait_until_read(read, child)
            time.sleep(wait)
            child.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            _, err = child.communicate(timeout=60)
            took = time.monotonic() - interrupted
        finally:
            os.close(write)
            os.close(read)
        assert child.returncode == 130, err.decode()
        assert took < 5, f"{took:.1f} s from Ctrl-C to the exit (the reader waited on stdin)"
        assert "Fatal Python error" not in err.decode()
        assert err.decode().strip().endswith("logloss: interrupted; no result is reported.")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("start, message", [
    (b'label,pred\n1,"', "line 2: the quote that opens a value here is not closed within 4,096"),
    (b'"label', "line 1: the quote that opens a value here is not closed within 4,096"),
    (b"label,pred\n1,0.5\n1,", "line 3: a line longer than 4,096 bytes"),
])
def test_a_record_longer_than_the_limit_is_refused_having_read_about_the_limit(
        monkeypatch, capsys, engine, start, message):
    """A quote left open (or a line never ended) on an endless-looking standard input: refused
    with the line, having read about the longest record (4 KiB here, 1 GiB for real), not 1 MB."""
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    monkeypatch.setattr(sources, "LONGEST_CSV_RECORD", 4096)
    if engine == "python":
        monkeypatch.setattr(records, "_compiled_scan", None)
    stdin = io.TextIOWrapper(io.BytesIO(start + b"x" * 1_000_000))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["score", "-", "--quiet"]) == 1
    assert f"<stdin>: {message}" in capsys.readouterr().err
    assert stdin.buffer.tell() <= 4096 + 64 + len(start)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell's <&-")
def test_a_closed_standard_input_is_a_usage_error_not_a_traceback():
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    run = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m logloss score - <&-'],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr == ("logloss score: error: -: standard input is closed, so there is no "
                          "CSV to read from it.\n")


@pytest.mark.skipif(sys.platform == "win32", reason="O_NONBLOCK pipes")
def test_a_non_blocking_standard_input_is_read_to_its_end():
    """A pipe left non-blocking (O_NONBLOCK, set by a parent that shares it) reads as None while
    the writer pauses: that is no end of the input, and the rows after the pause are scored."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    read, write = os.pipe()
    os.set_blocking(read, False)
    child = subprocess.Popen([sys.executable, "-m", "logloss", "score", "-", "--format", "json",
                              "--quiet"], stdin=read, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    os.close(read)
    try:
        first, then = b"label,pred\n" + b"1,0.5\n" * 1000, b"0,0.25\n" * 1000
        os.write(write, first)
        time.sleep(1.0)
        os.write(write, then)
    finally:
        os.close(write)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["rows_scored"] == 2000
    assert result["log_loss"] == pytest.approx(reference(first + then), rel=1e-14)


def test_blank_lines_without_end_are_not_held_without_end(monkeypatch, capsys):
    """The first block reads on while it holds no row, and on standard input what it reads is
    kept for the scoring pass: endless blank lines (`yes ''`) are refused after 8 blocks."""
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    stdin = io.TextIOWrapper(io.BytesIO(b"\n" * 100_000 + b"label,pred\n1,0.5\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["score", "-", "--quiet"]) == 1
    assert ("<stdin>: the file starts with more than 512 bytes of blank lines, with no header "
            "line in them" in capsys.readouterr().err)
    assert stdin.buffer.tell() < 1024


NOTES = ['"a, b"', '"line\nbreak"', '"cr\r\nlf"', '"say ""hi"""', "plain", '""', '"\r"', '""""',
         '","', "x\x00y", "", '"é\n"']
ROW = st.tuples(st.sampled_from(["0", "1", '"1"']),
                st.floats(0.001, 0.999).map(repr) | st.sampled_from(['"0.5"', "0.25"]),
                st.sampled_from(NOTES))


@settings(max_examples=150, deadline=None)  # 2,000 passed when it was written
@given(rows=st.lists(ROW, min_size=1, max_size=30),
       ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3),
       bad=st.sampled_from([None, "1,0.5,a,b", "1", '1,0.5,"q"x', '1,0.5,"never']),
       at=st.integers(0, 30), seed=st.integers(0, 9),
       block=st.sampled_from([1, 3, 16, 64, 1 << 20]),
       form=st.sampled_from([".csv", ".csv.gz", "stdin"]), engine=st.sampled_from(ENGINES),
       bom=st.booleans())
def test_any_mix_of_quoting_and_line_ends_gives_the_reference_or_names_the_editors_line(
        tmp_path_factory, rows, ends, bad, at, seed, block, form, engine, bom):
    """Rows of quoted delimiters and line ends, ended by any mix of \n, \r\n and \r, with a BOM
    or not, maybe one bad record: the number of Python's csv and math.fsum, or an error naming
    the line an editor shows the bad record on, whatever the block size, the form or the scan."""
    rng = random.Random(seed)
    lines = ["label,pred,note"] + [",".join(row) for row in rows]
    at = len(lines) if bad == '1,0.5,"never' else min(max(at, 1), len(lines))
    if bad:
        lines.insert(at, bad)
    pieces = [line + rng.choice(ends) for line in lines]
    mark = "\ufeff" if bom else ""
    data = (mark + "".join(pieces)).encode()
    line = len(re.findall(r"\r\n|\r|\n", "".join(pieces[:at]))) + 1
    compiled = records._compiled_scan
    saved = sources.CSV_BLOCK_BYTES, sys.stdin
    sources.CSV_BLOCK_BYTES = block
    records._compiled_scan = compiled if engine == "compiled" else None
    try:
        if form == "stdin":
            sys.stdin = io.TextIOWrapper(io.BytesIO(data))
            target = "-"
        else:
            target = str(tmp_path_factory.mktemp("csv") / f"x{form}")
            with open(target, "wb") as out:
                out.write(gzip.compress(data) if form.endswith(".gz") else data)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["score", target, "--format", "json", "--quiet"])
    finally:
        sources.CSV_BLOCK_BYTES, sys.stdin = saved
        records._compiled_scan = compiled
    if bad is None:
        assert code == 0, err.getvalue()
        assert json.loads(out.getvalue())["log_loss"] == pytest.approx(reference(data), rel=1e-14)
    else:
        assert code == 1
        assert f": line {line}: " in err.getvalue(), (line, err.getvalue())
