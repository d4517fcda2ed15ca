"""A coverage-guided fuzz target for the file readers of `logloss score` (CSV, TSV, JSON Lines,
plain and gzip) and for ``Accumulator.from_dict``.

The property: whatever the bytes, `logloss score` returns 0, 1 or 2 (never a traceback), a
result keeps rows_read = rows_scored + rows_rejected and finite-or-null JSON, and
``from_dict`` either returns an accumulator whose ``to_dict`` round-trips or raises
ValueError/TypeError.

    python tests/fuzz/fuzz_readers.py -max_total_time=3600 fuzz-corpus/   # by hand, atheris
    pytest tests/fuzz                                                    # CI: a short run

``one_input(data)`` is the entry point for atheris and for the hypothesis fallback.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import sys
import tempfile

KINDS = [("x.csv", False), ("x.tsv", False), ("x.jsonl", False), ("x.csv.gz", True),
         ("x.jsonl.gz", True), ("state", False)]
OPTIONS = [[], ["--on-invalid", "skip"], ["--by", "g"], ["--weight", "w"], ["--positive", "1"],
           ["--logits"], ["--label", "y", "--pred", "p"]]
_FOLDER = tempfile.mkdtemp(prefix="logloss-fuzz-")


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    name, compressed = KINDS[data[0] % len(KINDS)]
    options = OPTIONS[data[1] % len(OPTIONS)]
    body = data[2:]
    if name == "state":
        _from_dict(body)
        return
    path = os.path.join(_FOLDER, name)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(body, mtime=0) if compressed else body)
    _score(path, options)


def _score(path: str, options: list[str]) -> None:
    import logloss._cli.sources as sources
    from logloss._cli import main

    sources.CSV_BLOCK_BYTES = 64  # block edges inside a few rows
    sources.BATCH_ROWS = 5
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["score", path, "--format", "json", "-q", *options])
    assert code in (0, 1, 2), (code, err.getvalue())
    if code == 0:
        result = json.loads(out.getvalue())
        assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"], result
        assert sum(result["rejected_by_reason"].values()) == result["rows_rejected"], result
        assert result["rows_scored"] > 0
    else:
        assert out.getvalue() == ""
        assert err.getvalue().startswith("logloss score: "), err.getvalue()


def _from_dict(body: bytes) -> None:
    import warnings

    from logloss import Accumulator

    try:
        state = json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            accumulator = Accumulator.from_dict(state)
    except (ValueError, TypeError):
        return
    again = Accumulator.from_dict(json.loads(json.dumps(accumulator.to_dict(), allow_nan=False)))
    assert again.to_dict() == accumulator.to_dict()


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["logloss"]):
        import logloss._accumulator  # noqa: F401
        import logloss._cli.batches  # noqa: F401
        import logloss._cli.columns  # noqa: F401
        import logloss._cli.groups  # noqa: F401
        import logloss._cli.main  # noqa: F401
        import logloss._cli.score  # noqa: F401
        import logloss._cli.sources  # noqa: F401
        import logloss._core.statistics  # noqa: F401
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
