"""The check of CSV quoting in front of pyarrow's parser (logloss._cli.records).

pyarrow reads ``"ab"c`` as ``abc`` and a quote never closed as a value that runs to the end of
the file, so rows can vanish inside a value. The reference here is Python's ``csv`` module with
``strict=True`` over the whole text, which refuses exactly those files; the compiled scan, the
Python scan and the block reader, whatever its read sizes, must agree with it, and blocks must
never cut a record.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logloss._cli import records
from logloss._cli.records import QuotingError, RecordBlocks, _scan_in_python, scan_records

COMPILED = pytest.mark.skipif(records._compiled_scan is None, reason="no C compiler at install")


def strict_records(text: bytes, delimiter: str = ","):
    """Python's csv (strict): the records, or None where it refuses the text."""
    try:
        return list(csv.reader(io.StringIO(text.decode("latin-1"), newline=""),
                               delimiter=delimiter, strict=True))
    except csv.Error:
        return None


def scans(text: bytes, delimiter: str, final: bool):
    """(cut, bad_at, open_at, line ends before the cut), from each scan there is."""
    cut, bad_at, open_at = _scan_in_python(text, delimiter.encode(), final)
    yield cut, bad_at, open_at, len(re.findall(rb"\r\n|\r|\n", text[:cut]))
    if records._compiled_scan is not None:
        yield records._compiled_scan(text, ord(delimiter), final)


ENGINES = ["python"] + (["compiled"] if records._compiled_scan is not None else [])


def read_in_pieces(text: bytes, sizes: list[int], delimiter=",", block=8, longest=1 << 20,
                   engine="python"):
    """The blocks RecordBlocks hands out, the stream giving at most ``sizes`` bytes per read."""
    if engine == "compiled":
        return _read_in_pieces(text, sizes, delimiter, block, longest)
    compiled, records._compiled_scan = records._compiled_scan, None
    try:
        return _read_in_pieces(text, sizes, delimiter, block, longest)
    finally:
        records._compiled_scan = compiled


def _read_in_pieces(text, sizes, delimiter, block, longest):
    pieces = iter(sizes)

    class Stream:
        at = 0

        def read(self, size):
            step = min(size, next(pieces, size))
            piece = text[self.at:self.at + step]
            self.at += len(piece)
            return piece

    return [bytes(block) for block in RecordBlocks(Stream().read, delimiter, block, longest)]


TEXT = st.lists(st.sampled_from([b"a", b"1", b",", b";", b'"', b'""', b"\n", b"\r", b"\r\n", b" "]),
                max_size=40).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(text=TEXT, delimiter=st.sampled_from([",", ";"]))
def test_a_text_is_refused_exactly_when_strict_csv_refuses_it(text, delimiter):
    refused = strict_records(text, delimiter) is None
    for cut, bad_at, open_at, _ in scans(text, delimiter, final=True):
        assert (bad_at >= 0 or open_at >= 0) == refused
        if not refused:
            assert cut == len(text)


@settings(max_examples=600, deadline=None)
@given(text=TEXT, sizes=st.lists(st.integers(1, 7), max_size=30))
def test_blocks_are_whole_records_whatever_the_reads(text, sizes):
    expected = strict_records(text)
    for engine in ENGINES:
        try:
            blocks = read_in_pieces(text, sizes, engine=engine)
        except QuotingError:
            assert expected is None
            continue
        assert expected is not None
        assert b"".join(blocks) == text
        # a cut between \r and \n leaves an empty line, which pyarrow skips as it skips any
        assert ([row for block in blocks for row in strict_records(block) if row]
                == [row for row in expected if row])


@settings(max_examples=300, deadline=None)
@given(text=TEXT, end=st.integers(0, 40))
def test_the_compiled_and_python_scans_agree_on_any_prefix(text, end):
    prefix = text[:end]
    for final in (False, True):
        results = set(scans(prefix, ",", final))
        assert len(results) == 1, (prefix, final, results)


@pytest.mark.parametrize("text, cut, bad_at, open_at", [
    (b'a,b\n1,2\n3', 8, -1, -1),                # the last record may still go on
    (b'a,"b\nc"\n1', 8, -1, -1),                # a quoted line end is not a record's end
    (b'a,"b\nc', 0, -1, 2),                     # still open at the end of the text
    (b'a,"b"c\n', 0, 5, -1),                    # text after a closing quote
    (b'a,"b" \n', 0, 5, -1),                    # a space too (RFC 4180, strict csv)
    (b'a,"b""c"\n', 9, -1, -1),                 # a doubled quote is a quote
    (b'a,b"c\n1,d"e\n', 12, -1, -1),            # a quote inside an unquoted value is text
    (b'a,"b"', 0, -1, 2),                       # undecided: "" may follow in the next read
    (b'1,"a\rb"\r2,d\r3', 12, -1, -1),          # lines ended by a lone \r
    (b'1,"a\rb"\r2,d\r', 8, -1, -1),            # a last \r may be half of a \r\n: undecided
    (b'1,2\r\n3,4\r', 5, -1, -1),
    (b'1,"2"\r', 0, -1, -1),
    (b'1,"2"\r\n', 7, -1, -1),
])
def test_written_cases(text, cut, bad_at, open_at):
    for result in scans(text, ",", final=False):
        assert result[:3] == (cut, bad_at, open_at)


@pytest.mark.parametrize("text, message", [
    (b'y,p\n0,0.2\n0,0.2,"abc\n1,0.3,"def"\n1,0.9\n', "line 4: a quoted value's closing quote is "
                                                     "followed by 'd'"),
    (b'y,p\n0,0.2\n1,"0.3\n1,0.9\n', "line 3: the quote that opens a value here is never closed"),
    (b'y,p\r0,0.2\r1,"0.3\r1,0.9\r', "line 3: the quote that opens a value here is never closed"),
    (b'\xef\xbb\xbf"y",p\n"1"x,0.2\n', "line 2: a quoted value's closing quote is followed by 'x'"),
])
@pytest.mark.parametrize("block", [4, 16, 1 << 10])
@pytest.mark.parametrize("engine", ENGINES)
def test_errors_name_the_line(text, message, block, engine):
    with pytest.raises(QuotingError, match=message.replace("(", r"\(")):
        read_in_pieces(text, [], block=block, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quote_left_open_stops_at_the_longest_record_not_at_the_end_of_memory(engine):
    text = b'y,p\n1,"' + b"x" * 5000
    with pytest.raises(QuotingError, match=r"line 2: the quote that opens a value here is not "
                                           r"closed within 1,024 bytes"):
        read_in_pieces(text, [], block=64, longest=1024, engine=engine)
    with pytest.raises(QuotingError, match=r"line 2: a line longer than 1,024 bytes"):
        read_in_pieces(b"y,p\n1," + b"x" * 5000, [], block=64, longest=1024, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_byte_order_mark_before_a_quoted_header_is_not_text(engine):
    text = b'\xef\xbb\xbf"y\nz",p\n1,2\n'
    # the first read ends inside the header, after its quoted line end
    assert read_in_pieces(text, [9], block=64, engine=engine) == [text]


@COMPILED
def test_the_compiled_scan_reads_any_bytes_like_object():
    text = bytearray(b'a,"b"\n' * 1000)
    assert scan_records(bytes(text), ",", False) == (len(text), -1, -1, 1000)
    assert scan_records(memoryview(text), ",", True) == (len(text), -1, -1, 1000)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_score_reads_quoted_values_across_blocks_with_either_scan(tmp_path, capsys, monkeypatch,
                                                                   engine, suffix):
    """Quoted delimiters, line ends and doubled quotes in every few rows, 64-byte blocks: the
    number is the one computed here from Python's csv and math.fsum."""
    import gzip
    import json
    import math
    import random

    from logloss._cli import main, sources

    pytest.importorskip("pyarrow")
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    if engine == "python":
        monkeypatch.setattr(records, "_compiled_scan", None)
    rng = random.Random(5)
    notes = ['"a, b"', '"line\nbreak"', '"say ""hi"""', "plain", '""', '"\r\n"']
    rows = [(rng.randint(0, 1), rng.uniform(0.01, 0.99), rng.choice(notes)) for _ in range(400)]
    text = "label,pred,note\n" + "".join(f"{y},{p!r},{n}\n" for y, p, n in rows)
    path = tmp_path / f"x{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    parsed = list(csv.reader(io.StringIO(text, newline="")))[1:]
    expected = math.fsum(-math.log(float(p)) if y == "1" else -math.log1p(-float(p))
                         for y, p, _ in parsed) / len(parsed)
    assert main(["score", str(path), "--by", "note", "--format", "json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows_scored"] == len(rows)
    assert result["log_loss"] == pytest.approx(expected, rel=1e-14)
    counts = {}
    for *_, note in parsed:  # an empty value, quoted or not, is a missing one
        counts[note or None] = counts.get(note or None, 0) + 1
    assert {g["group"]["note"]: g["rows_scored"] for g in result["groups"]} == counts


def test_a_bug_while_reading_the_header_is_not_reported_as_a_corrupt_file(tmp_path, monkeypatch):
    """Only what a corrupt file raises becomes "truncated or corrupt"; anything else is a bug in
    logloss and must surface as one, not send the user to check a good file."""
    from logloss._cli import main, sources

    pytest.importorskip("pyarrow")
    path = tmp_path / "x.csv"
    path.write_text("label,pred\n1,0.5\n")

    def broken(self):
        raise AttributeError("a bug")

    monkeypatch.setattr(sources.Source, "_csv_first_table", broken)
    with pytest.raises(AttributeError, match="a bug"):
        main(["score", str(path), "--quiet"])


def editor_line(text: bytes, offset: int) -> int:
    """The line a text editor shows the byte at ``offset`` on (\n, \r\n and a lone \r each end
    one)."""
    return len(re.findall(rb"\r\n|\r|\n", text[:offset])) + 1


BYTES = st.one_of(
    st.binary(max_size=60),
    st.lists(st.sampled_from([b"\x00", b"a", b",", b"\t", b'"', b'""', b"\n", b"\r", b"\r\n",
                              b"\xef\xbb\xbf", b"\xff", b" "]), max_size=50).map(b"".join))


@settings(max_examples=1500, deadline=None)
@given(text=BYTES, delimiter=st.sampled_from([",", "\t", ";", "\x00"]), final=st.booleans())
def test_the_compiled_and_python_scans_agree_on_any_bytes(text, delimiter, final):
    python = _scan_in_python(text, delimiter.encode(), final)
    lines = len(re.findall(rb"\r\n|\r|\n", text[:python[0]]))
    if records._compiled_scan is not None:
        assert records._compiled_scan(text, ord(delimiter), final) == (*python, lines)
    compiled, records._compiled_scan = records._compiled_scan, None
    try:
        assert scan_records(text, delimiter, final) == (*python, lines)
    finally:
        records._compiled_scan = compiled


@settings(max_examples=400, deadline=None)
@given(text=TEXT, sizes=st.lists(st.integers(1, 7), max_size=30))
def test_an_error_names_the_line_an_editor_shows_whatever_the_reads(text, sizes):
    """The line of a quoting error, for a file read in any pieces, is the line of the offending
    byte in the whole text, lone \r, \r\n and \n each ending a line."""
    _, bad_at, open_at = _scan_in_python(text, b",", True)
    if bad_at < 0 and open_at < 0:
        return
    line = editor_line(text, bad_at if bad_at >= 0 else open_at)
    for engine in ENGINES:
        with pytest.raises(QuotingError, match=rf"^line {line}: "):
            read_in_pieces(text, sizes, engine=engine)


@pytest.mark.parametrize("text, line", [
    (b'y,p\r0,0.2\r1,"0.3"x\r1,0.9\r', 3),                  # old Mac: lone \r
    (b'y,p\r\n0,0.2\r\n1,"0.3"x\r\n1,0.9\r\n', 3),          # Windows
    (b'y,p\n0,0.2\r\n0,0.1\r1,"0.3"x\n', 4),                # all three mixed
    (b'y,p\r0,"a\nb"\r1,"0.3"x\r', 4),                     # \n inside quotes in a lone-\r file
    (b'y,p\r\n0,"a\r\nb"\r\n1,"0.3\r\n', 4),                # never closed, after a quoted \r\n
])
@pytest.mark.parametrize("block", [3, 16, 1 << 10])
@pytest.mark.parametrize("engine", ENGINES)
def test_errors_name_the_editor_line_for_any_line_ends(text, line, block, engine):
    with pytest.raises(QuotingError, match=rf"^line {line}: "):
        read_in_pieces(text, [], block=block, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_longest_record_is_measured_from_the_record_not_from_the_text_held(engine):
    """A long record (900 bytes, the limit 1,024) and then short quoted values: the text held
    while the long record is read on reaches past the limit and ends inside a quoted value, and
    that value is 40 bytes, not 1,024."""
    text = b'y,p\n1,' + b"x" * 900 + b"\n" + b'0,"' + b"a" * 40 + b'"\n' * 1 
    text += b''.join(b'0,"' + b"a" * 40 + b'"\n' for _ in range(100))
    for sizes in ([], [5] * 300, [1000, 7, 300]):
        assert b"".join(read_in_pieces(text, sizes, block=64, longest=1024, engine=engine)) == text


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("start", [b'y,p\n1,"', b'"y', b"y,p\n1,"])
def test_a_record_too_long_is_refused_having_read_about_the_limit_only(engine, start):
    """A quote left open at the start (or a line with no end) of an endless stream: refused
    after about the longest record, never reading on (memory stays bounded)."""
    read = []

    def endless(size):
        read.append(size)
        return start if len(read) == 1 else b"x" * size

    compiled = records._compiled_scan
    if engine == "python":
        records._compiled_scan = None
    try:
        with pytest.raises(QuotingError, match=r"1,024 bytes"):
            for _ in RecordBlocks(endless, ",", 64, 1024):
                pass
    finally:
        records._compiled_scan = compiled
    assert sum(read) <= 1024 + 64 + len(start)
    assert max(read) <= 1024


@COMPILED
@pytest.mark.parametrize("unit", [b"\n", b"\r", b"\r\n", b"\n\r", b"a\r\n", b"\r\r\n",
                                  b"x" * 254 + b"\r"])
@pytest.mark.parametrize("count", [1, 254, 255, 256, 511, 1000])
def test_the_compiled_line_count_holds_past_its_byte_wide_counters(unit, count):
    """The C count adds byte-wide counters a 255-byte stretch at a time: every line end, a
    \r\n split by a stretch's edge counted once."""
    text = unit * count + b"\n"
    expected = len(re.findall(rb"\r\n|\r|\n", text))
    assert scan_records(text, ",", False)[3] == expected
    assert scan_records(text, ",", True)[3] == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_the_text_after_a_closing_quote_is_shown_as_the_character_it_is(engine):
    with pytest.raises(QuotingError, match="closing quote is followed by 'é', not"):
        read_in_pieces('y,p\n"1"é,0.2\n'.encode(), [], block=1 << 10, engine=engine)
    with pytest.raises(QuotingError, match=r"closing quote is followed by b'\\xff', not"):
        read_in_pieces(b'y,p\n"1"\xff,0.2\n', [], block=1 << 10, engine=engine)
