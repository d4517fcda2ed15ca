"""CSV text cut into blocks of whole records, with its quoting checked on the way.

pyarrow's CSV parser reads a quoted value leniently: a value whose closing quote is followed by
more text (``"ab"c``) is read on as ``abc``, and a quote never closed takes the rest of the file
as one value. Either can hide rows inside a value without a word: a quote left open in row 2
of a million-row file gives a file of one row, and a wrong number. logloss refuses both, as
Python's ``csv`` module does with ``strict=True`` and as RFC 4180 reads:

- a quoted value starts at a field's start (a quote inside an unquoted value is text, as
  pyarrow, Python's ``csv`` and DuckDB read it);
- inside it a quote is written twice (``""``);
- its closing quote is followed by the delimiter, a line end or the end of the file.

Knowing where each quoted value ends also says where each record ends, so a file is cut into
blocks of whole records that pyarrow then parses independently, on several threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

try:
    from ._quotes import scan_records as _compiled_scan
except ImportError:  # no C compiler at install: the same rules in Python, slower on quoted text
    _compiled_scan = None

BOM = b"\xef\xbb\xbf"


def scan_engine() -> str:
    """Which scan checks CSV quoting here (``logloss --version`` says)."""
    if _compiled_scan is not None:
        return "compiled (C)"
    return "Python (the C extension was not built: no C compiler at install), slower on quoted text"


def scan_records(text: bytes, delimiter: str, final: bool) -> tuple[int, int, int, int]:
    """``(cut, bad_at, open_at, lines)`` for ``text``, which starts at a record's start.

    ``cut``: one past the last line end outside quotes (``len(text)`` when ``final``, the text
    being the end of the file), 0 if none. A ``\r`` as the last byte of ``text`` is no record's
    end unless ``final``: a ``\n`` may follow in the next read, and a block never ends between
    the two. ``bad_at``: the offset of the byte after a closing quote that is neither the
    delimiter nor a line end, or -1. ``open_at``: the offset of the quote that opens a value
    still open at the end of ``text``, or -1 (with ``final``, a value never closed). A quote as
    the last byte of ``text`` is undecided unless ``final``. ``lines``: the line ends in
    ``text[:cut]``, quoted or not, as a text editor counts them (``\n``, ``\r\n`` and a lone
    ``\r`` each end a line).
    """
    if _compiled_scan is not None:
        return _compiled_scan(text, ord(delimiter), final)
    cut, bad_at, open_at = _scan_in_python(text, delimiter.encode(), final)
    return cut, bad_at, open_at, count_lines(text, cut)


def count_lines(text: bytes, end: int, start: int = 0) -> int:
    """The line ends in ``text[start:end]``: ``\n``, ``\r\n`` and a lone ``\r``, one each (a
    ``\r`` at ``end - 1`` counts alone: the caller never ends a stretch inside a ``\r\n``)."""
    return (text.count(b"\n", start, end) + text.count(b"\r", start, end)
            - text.count(b"\r\n", start, end))


def _scan_in_python(text: bytes, delimiter: bytes, final: bool) -> tuple[int, int, int]:
    ends = (delimiter, b"\n", b"\r")
    n = len(text)
    cut = 0
    at = outside_from = 0
    while True:
        opened = -1
        start = at
        while (q := text.find(b'"', start)) >= 0:
            if q == 0 or text[q - 1 : q] in ends:
                opened = q
                break
            start = q + 1
        stop = n if opened < 0 else opened
        # a \r that ends the text may be half of a \r\n: no record's end yet
        cr_stop = n - 1 if stop == n and not final else stop
        end = max(text.rfind(b"\n", outside_from, stop), text.rfind(b"\r", outside_from, cr_stop))
        if end >= 0:
            cut = end + 1
        if opened < 0:
            return (n if final else cut), -1, -1
        start, closed = opened + 1, -1
        while (q := text.find(b'"', start)) >= 0:
            if q + 1 == n:
                closed = n if final else -1
                break
            if text[q + 1 : q + 2] == b'"':
                start = q + 2
                continue
            if text[q + 1 : q + 2] not in ends:
                return cut, q + 1, -1
            closed = q + 1
            break
        if closed < 0:
            return cut, -1, opened
        if closed == n:
            return n, -1, -1
        at = outside_from = closed


class QuotingError(ValueError):
    """The quoting of a CSV file hides where its records end (see the module's text)."""


class RecordBlocks:
    """Iterate over a CSV byte stream as blocks (memoryviews) of whole records, about ``block_bytes``
    each; the first block starts with the header, and ``line`` is the line (counted as a text
    editor does) that the block last handed out starts on. Raises :class:`QuotingError`, naming
    the line, for a quoted value closed badly or never closed, or a record longer than
    ``max_bytes``, which is refused having read at most about ``max_bytes`` beyond the records
    before it (a quote left open at the start is not read to the end of the file)."""

    def __init__(self, read, delimiter: str, block_bytes: int, max_bytes: int):
        self._read = read
        self._delimiter = delimiter
        self._block_bytes = block_bytes
        self._max_bytes = max_bytes
        self._lines = 0  # line ends in the blocks handed out
        self.line = 1

    def __iter__(self) -> Iterator[memoryview]:
        rest, first = b"", True
        while True:
            want = self._block_bytes
            if len(rest) >= self._block_bytes:  # a record not yet whole: read on geometrically
                # (no quadratic rescans), but never past the longest record
                want = min(len(rest), self._max_bytes + 1 - len(rest))
            data = self._read(want)
            final = not data
            text = rest + data if rest else data
            skip = len(BOM) if first and text.startswith(BOM) else 0
            cut, bad_at, open_at, lines = scan_records(text[skip:] if skip else text,
                                                       self._delimiter, final)
            if skip:  # offsets in the text after the byte order mark
                cut = cut + skip if cut or final else 0
                bad_at, open_at = (x + skip if x >= 0 else -1 for x in (bad_at, open_at))
            if bad_at >= 0:
                raise QuotingError(
                    f"line {self._line_of(text, bad_at)}: a quoted value's closing quote is "
                    f"followed by {_character_at(text, bad_at)}, not by the delimiter or a line "
                    "end (a quote inside a quoted value is written twice: \"\"). Read "
                    "leniently, the value would go on past it, over any rows after it.")
            if open_at >= 0 and final:
                raise QuotingError(
                    f"line {self._line_of(text, open_at)}: the quote that opens a value here is "
                    "never closed, so the rest of the file would be read as one value.")
            if not final and len(text) - cut > self._max_bytes:  # the record after the cut
                if open_at >= 0:
                    raise QuotingError(
                        f"line {self._line_of(text, open_at)}: the quote that opens a value here "
                        f"is not closed within {self._max_bytes:,} bytes, the longest record "
                        "read here.")
                raise QuotingError(f"line {self._line_of(text, cut)}: a line longer than "
                                   f"{self._max_bytes:,} bytes, the longest read here.")
            if cut == 0 and not final:
                rest = text
                continue
            first = False
            block, rest = memoryview(text)[:cut], text[cut:]
            if cut:
                self.line = self._lines + 1
                yield block
                self._lines += lines
            if final:
                return

    def _line_of(self, text: bytes, offset: int) -> int:
        return self._lines + count_lines(text, offset) + 1


def _character_at(text: bytes, at: int) -> str:
    """The character starting at ``at``, quoted: UTF-8 if it is (``'é'``, not ``'Ã'``), else the
    byte (``b'\\xff'``)."""
    for size in (1, 2, 3, 4):
        try:
            return repr(text[at : at + size].decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return repr(text[at : at + 1])


def record_line(block: bytes, number: int, delimiter: str) -> int | None:
    """The line of ``block`` (1 for its first) that its ``number``-th record starts on, records
    counted as pyarrow's "Row #" counts them: from 1, empty lines left out. None if there are
    fewer. For an error's place in the file: a record is not a line when values hold line ends.
    ``block`` is whole records, its quoting checked."""
    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"]+|"")*"|[^"' + d + rb'\r\n][^' + d + rb'\r\n]*|)'
    record = re.compile(field + rb"(?:" + d + field + rb")*")
    pos = len(BOM) if block.startswith(BOM) else 0
    line, seen, n = 1, 0, len(block)
    while pos < n:
        end = record.match(block, pos).end()
        if end > pos:
            seen += 1
            if seen == number:
                return line
            line += count_lines(block, end, pos)
        # the record's line end: \r\n, \n or \r
        step = 2 if block[end : end + 2] == b"\r\n" else 1
        line += end < n
        pos = end + step
    return None
