"""Every wait in `logloss score` has an exit: a failure injected at each stage of the pipeline
(reader, parser, checker, writer) ends the process with the right exit code, in time.

Each case runs the CLI in a subprocess with a timeout, so a hang fails the test instead of
hanging the suite. The failures are injected by wrapping the stage's function in the child.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")

# The child: many small batches, a slow checker (so the reader fills the queue), and a failure
# injected where the case says. `after` counts batches handed out by the reader.
DRIVER = textwrap.dedent("""
    import sys, time
    import pyarrow as pa
    import logloss._cli.score as score
    import logloss._cli.sources as sources
    from logloss._cli import main

    stage, path = sys.argv[1], sys.argv[2]
    sources.BATCH_ROWS = 100
    sources.CSV_BLOCK_BYTES = 4096
    original_open, original_batch = sources.Source.open, score._score_batch

    def open_(self, columns, text_columns=()):
        for i, item in enumerate(original_open(self, columns, text_columns)):
            if stage == "reader" and i == 6:
                raise OSError("injected: the disk went away")
            if stage == "checker_then_reader" and i == 4:  # queue full: batches 1, 2, 3
                raise OSError("injected: the disk went away")
            if stage == "parser" and i == 6:
                raise pa.ArrowInvalid("CSV parse error: injected")
            if stage == "reader_crash" and i == 6:
                raise RuntimeError("injected: a bug in the reader")
            yield item

    calls = [0]
    def score_batch(*args, **kwargs):
        calls[0] += 1
        time.sleep(0.05)  # slower than the reader: its queue is full when it fails
        if stage == "checker_then_reader" and calls[0] == 1:
            time.sleep(0.5)
            raise sources.DataError("injected: a bad value in the first batch")
        if stage == "checker_crash" and calls[0] == 2:
            raise RuntimeError("injected: a bug in the checker")
        if stage == "interrupt" and calls[0] == 2:
            raise KeyboardInterrupt
        return original_batch(*args, **kwargs)

    def silent_reader(*args):
        return None  # ends without a batch, an end or an error

    sources.Source.open = open_
    score._score_batch = score_batch
    if stage == "reader_vanishes":
        score._reader = silent_reader
    argv = ["score", path, "-q"] + sys.argv[3:]
    sys.exit(main(argv))
""")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(1)
    n = 3000
    p = rng.uniform(0.05, 0.95, n).round(6)
    y = (rng.random(n) < p).astype(np.int8)
    pq.write_table(pa.table({"label": y, "pred": p}), folder / "x.parquet", row_group_size=100)
    lines = ["label,pred"] + [f"{a},{b}" for a, b in zip(y, p)]
    lines[5] = "0,1.5"  # a bad value in the first batch...
    lines[-10] = "1,0.5,7"  # ...and a parse error later in the file
    (folder / "bad_then_broken.csv").write_text("\n".join(lines) + "\n")
    with gzip.open(folder / "bad_then_broken.csv.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return folder


def run(stage: str, path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", DRIVER, stage, str(path), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={"PYTHONPATH": SRC, "LOGLOSS_DISABLE_NUMBA": "1",
                                   "PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"`logloss score` with a failure injected at {stage!r} did not exit "
                    f"within {timeout} s (a thread waits for another that will never answer)")


@pytest.mark.parametrize(("stage", "code", "message"), [
    ("none", 0, ""),
    ("reader", 1, "the disk went away"),
    ("parser", 1, "truncated or corrupt"),
    ("checker_then_reader", 1, "a bad value in the first batch"),
    ("reader_crash", 1, "a bug in the reader"),
    ("checker_crash", 1, "a bug in the checker"),
    ("reader_vanishes", 1, "the reader thread ended without a result"),
    ("interrupt", None, "KeyboardInterrupt"),
])
def test_a_failure_at_any_stage_ends_the_run_in_time(data, stage, code, message):
    result = run(stage, data / "x.parquet")
    if code is None:  # Ctrl-C: whatever Python does, but promptly
        assert result.returncode != 0
    else:
        assert result.returncode == code, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("name", ["bad_then_broken.csv", "bad_then_broken.csv.gz"])
def test_bad_value_followed_by_a_parse_error_is_named_not_a_hang(data, name):
    # The example: the checker stops at the bad value while the reader, further on,
    # hits the parse error with the queue full. It used to join a reader blocked forever.
    result = run("none", data / name)
    assert result.returncode == 1
    assert "row 5, column 'pred': value 1.5" in result.stderr or "corrupt" in result.stderr


def test_output_that_fails_when_written_exits_3_without_a_traceback(data):
    result = run("none", data / "x.parquet", "-o", "/dev/full")
    assert result.returncode == 3
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", DRIVER, "none", str(data / "x.parquet")],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                              env={"PYTHONPATH": SRC, "LOGLOSS_DISABLE_NUMBA": "1"})
    assert done.returncode == 3 and "standard output" in done.stderr
    assert "Traceback" not in done.stderr
