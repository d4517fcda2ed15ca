"""A coverage-guided fuzz target for the file readers of `logloss score` (CSV, TSV, JSON Lines,
plain and gzip) and for ``Accumulator.from_dict``.

The property: whatever the bytes, `logloss score` returns 0, 1 or 2 (never a traceback), a
result keeps rows_read = rows_scored + rows_rejected and finite-or-null JSON, and
``from_dict`` either returns an accumulator whose ``to_dict`` round-trips or raises
ValueError/TypeError. The second byte picks the options and the command: from its eighth value
on, the same file also goes through `logloss report --format json`, which must read it as
`score` does (the same exit code and message, the same rows read, scored and rejected, the same
log loss to 1e-12), and a "state" input goes to ``DiagnosticsState.from_dict`` instead, which
either returns a state whose strict-JSON ``to_dict`` round-trips and whose ``result`` works, or
raises ValueError/TypeError.

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
    report = data[1] // len(OPTIONS) % 2 == 1
    body = data[2:]
    if name == "state":
        (_diagnostics_from_dict if report else _from_dict)(body)
        return
    path = os.path.join(_FOLDER, name)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(body, mtime=0) if compressed else body)
    scored = _score(path, options)
    if report:
        _report(path, options, scored)


def _run(command: str, path: str, options: list[str]) -> tuple[int, str, str]:
    import logloss._cli.sources as sources
    from logloss._cli import main

    sources.CSV_BLOCK_BYTES = 64  # block edges inside a few rows
    sources.BATCH_ROWS = 5
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([command, path, "--format", "json", "-q", *options])
    assert code in (0, 1, 2), (code, err.getvalue())
    if code == 0:
        result = json.loads(out.getvalue(), parse_constant=_refuse_constant)
        assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"], result
        assert sum(result["rejected_by_reason"].values()) == result["rows_rejected"], result
        assert result["rows_scored"] > 0
    else:
        assert out.getvalue() == ""
        assert err.getvalue().startswith(f"logloss {command}: "), err.getvalue()
    return code, out.getvalue(), err.getvalue()


def _refuse_constant(name: str):
    raise AssertionError(f"the JSON output has {name}, which strict JSON parsers refuse")


def _score(path: str, options: list[str]) -> tuple[int, str, str]:
    return _run("score", path, options)


def _report(path: str, options: list[str], scored: tuple[int, str, str]) -> None:
    """`report` reads files as `score` does: the same refusals, rows and loss."""
    code, out, err = _run("report", path, options)
    assert code == scored[0], (code, err, scored)
    if code:
        assert err.replace("logloss report: ", "", 1) == scored[2].replace(
            "logloss score: ", "", 1), (err, scored[2])
        return
    got, want = json.loads(out), json.loads(scored[1])
    for key in ("rows_read", "rows_scored", "rows_rejected", "rejected_by_reason"):
        assert got[key] == want[key], (key, got[key], want[key])
    loss, expected = got["log_loss"], want["log_loss"]
    if expected is None and want.get("infinite"):  # score says null and counts the infinite
        expected = "inf"
    if isinstance(expected, (int, float)) and isinstance(loss, (int, float)):
        assert abs(loss - expected) <= 1e-12 * abs(expected), (loss, expected)
    else:
        assert loss == expected, (loss, expected)


def _loaded(body: bytes, cls, *, quiet: bool = False):
    """``cls.from_dict`` of the bytes as JSON, or None where they are no JSON or it refuses
    them as it must (ValueError, TypeError); then to_dict must be strict JSON that loads again
    to the same dict."""
    import warnings

    try:
        state = json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    try:
        with warnings.catch_warnings():
            if quiet:  # the Accumulator's loading may warn, as its update does
                warnings.simplefilter("ignore")
            loaded = cls.from_dict(state)
    except (ValueError, TypeError):
        return None
    saved = json.dumps(loaded.to_dict(), allow_nan=False)
    assert json.dumps(cls.from_dict(json.loads(saved)).to_dict(), allow_nan=False) == saved
    return loaded


def _diagnostics_from_dict(body: bytes) -> None:
    from logloss import DiagnosticsState

    loaded = _loaded(body, DiagnosticsState)
    if loaded is not None and loaded.names is not None and loaded.models[0].counts["count"]:
        try:
            loaded.result()
        except OverflowError:  # sums past float64 (a hand-made state): said as such
            pass


def _from_dict(body: bytes) -> None:
    from logloss import Accumulator

    _loaded(body, Accumulator, quiet=True)


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
        import logloss._core.saved  # noqa: F401
        import logloss._core.statistics  # noqa: F401
        import logloss._diagnostics  # noqa: F401
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
