"""The guard in front of pyarrow's JSON reader: every line it hands on starts with ``{``.

pyarrow's JSON reader (26.0) crashes the process on a line that starts with a bare ``null``
and goes on (found by the fuzz target). The guard must see such a line wherever the reads cut
the file, and must not refuse a file of objects, blank lines, indentation or a byte order mark.
The reference below decides line by line on the whole file, without the guard's counting.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

from logloss._cli.sources import Reread, _ObjectLines  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
BOM = b"\xef\xbb\xbf"


def every_line_is_an_object(content: bytes) -> bool:
    if content.startswith(BOM):
        content = content[len(BOM):]
    return all(line.lstrip(b" \t\r")[:1] in (b"", b"{") for line in content.split(b"\n"))


class _Pieces(io.RawIOBase):
    """Hands out the content in the given piece sizes, as a stream cut at odd places would."""

    def __init__(self, content: bytes, sizes: list[int]):
        self._content, self._sizes, self._at = content, list(sizes), 0

    def read(self, size=-1):
        step = self._sizes.pop(0) if self._sizes else len(self._content)
        piece = self._content[self._at:self._at + step]
        self._at += len(piece)
        return piece


def guard_refuses(content: bytes, sizes: list[int]) -> bool:
    guard = _ObjectLines(_Pieces(content, sizes), "x.jsonl")
    try:
        while guard.read(1 << 20):
            pass
    except Reread as reread:
        assert reread.change == "python_json"
        return True
    return False


LINES = st.sampled_from([b'{"label": 1, "pred": 0.5}', b"", b"  ", b"\t{}", b" {", b"\r",
                         b"null", b" null}", b"nullx", b"1", b"[1]", b'"a"', b"}", b"x{",
                         b"\x00", b"\t\r null", BOM + b"{}", b"\xef{"])


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(LINES, min_size=1, max_size=12), bom=st.booleans(),
       sizes=st.lists(st.integers(1, 9), max_size=40), end=st.sampled_from([b"", b"\n", b"\r\n"]))
def test_the_guard_refuses_exactly_the_lines_that_are_not_objects(lines, bom, sizes, end):
    content = (BOM if bom else b"") + b"\n".join(lines) + end
    assert guard_refuses(content, sizes) is not every_line_is_an_object(content)


@pytest.mark.parametrize(("content", "refused"), [
    (b'{"a": 1}\n' * 3, False),
    (BOM + b'{"a": 1}\n', False),
    (b'{"a": 1}\n' + BOM + b'{"a": 1}\n', True),  # a byte order mark only opens the file
    (b'\n\n  \r\n\t{"a": 1}\r\n', False),
    (b'{"a": 1}\nnull\n', True),
    (b'{"a": 1}\n   ', False),
    (b'{"a": 1}\n   null', True),
    (b"null", True),
    (b"", False),
])
def test_the_guard_on_written_cases(content, refused):
    for sizes in ([], [1] * len(content), [2, 3, 5, 7, 11]):
        assert guard_refuses(content, sizes) is refused, sizes


@pytest.mark.parametrize("tail", [b" null}" + b"\x00" * 40, b'null]null"a"' + b"x" * 40,
                                  b"\tnull}" + b"x" * 40, BOM + b"null}" + b"x" * 40])
def test_a_bare_null_line_after_the_first_block_is_named_not_a_crash(tmp_path, tail):
    # In a child process: without the guard, pyarrow's reader ends it with SIGSEGV. Real block
    # sizes: the bad line lies past the first 2 MiB block, where pyarrow's reader meets it.
    path = tmp_path / "x.jsonl"
    row = b'{"label": 1, "pred": 0.5, "note": null}\n'
    rows = (3 << 20) // len(row)
    path.write_bytes(row * rows + tail + b"\n")
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from logloss._cli import main
            sys.exit(main(["score", sys.argv[1], "-q"]))
        """), str(path)],
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": SRC, "PATH": ""})
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert f"line {rows + 1} is not" in run.stderr
    assert "Traceback" not in run.stderr


def test_columns_not_used_are_not_built_by_pyarrow(tmp_path, monkeypatch, capsys):
    """An unused column of lists with leading nulls (which pyarrow 26 builds as an invalid array)
    and an unused column whose type changes past the first block (which made pyarrow refuse the
    file and sent it to Python's json) leave the fast reader alone and the number right."""
    import json
    import math

    import logloss._cli.sources as sources
    from logloss._cli import main

    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 256)
    rows = [{"label": i % 2, "pred": 0.2 + 0.6 * (i % 3 == 0), "tags": [None, i],
             "x": i if i < 20 else f"text {i}"} for i in range(200)]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    slow = []
    monkeypatch.setattr(sources.Source, "_python_json_batches",
                        lambda self, columns: slow.append(columns) or iter(()))
    assert main(["score", str(path), "-q", "--format", "json"]) == 0
    assert slow == []
    result = json.loads(capsys.readouterr().out)
    exact = math.fsum(-math.log(r["pred"]) if r["label"] else -math.log1p(-r["pred"]) for r in rows)
    assert result["rows_scored"] == 200
    assert math.isclose(result["log_loss"], exact / 200, rel_tol=1e-15)


def test_a_run_that_stops_early_exits_with_its_code_not_an_abort(tmp_path):
    # The guard was once a stream that pyarrow's streaming reader read from its own read-ahead
    # threads, calling into Python: a bad row 2 ended the run while they still read the rest of
    # the file, and the interpreter's shutdown aborted the process (terminate called without an
    # active exception), crashed it or left it deadlocked, in most runs. The blocks are now cut
    # and checked on logloss's thread. `python -m logloss`, as the console script runs it, a few
    # times (each run with the old reader failed ~9 times in 10).
    import gzip

    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b'{"label": 1, "pred": 0.5}\n{"label": 0, "pred": 7}\n')
        for _ in range(30):
            out.write(b'{"label": 1, "pred": 0.5}\n' * 100_000)
    for _ in range(4):
        run = subprocess.run([sys.executable, "-m", "logloss", "score", str(path), "-q"],
                             capture_output=True, text=True, timeout=120,
                             env={"PYTHONPATH": SRC, "PATH": ""})
        assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
        assert "row 2, column 'pred': value 7.0 is not a probability" in run.stderr
        assert "terminate" not in run.stderr and "Fatal Python error" not in run.stderr


def test_a_line_longer_than_a_block_is_read_on_geometrically(tmp_path, monkeypatch, capsys):
    """A block at a time, a long line was copied and searched again at every read: quadratic
    (33 s for one 200 MB line). Reads now double: a 200 KB line in 64-byte blocks takes a few
    dozen reads, not 3,000."""
    from logloss._cli import main, sources

    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    sizes = []
    read = sources._ObjectLines.read

    def counted(self, size=-1):
        sizes.append(size)
        return read(self, size)

    monkeypatch.setattr(sources._ObjectLines, "read", counted)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"label": 1, "pred": 0.25, "x": "' + b"a" * 200_000 + b'"}\n'
                     + b'{"label": 0, "pred": 0.5}\n')
    assert main(["score", str(path), "--quiet", "--format", "json"]) == 0
    assert len(sizes) < 100, len(sizes)
