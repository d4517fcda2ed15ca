"""The file readers after a fork: a process that scored a file (so pyarrow's pools, logloss's
read-ahead pools and the compiled kernels have all run) forks, and the child scores again. It
must neither hang nor die, and must give the number computed here from the rows.

Each format has its own reader: CSV and JSON Lines are cut into blocks by logloss's thread and
parsed on a pool; compressed CSV also decompresses on that thread; Parquet row groups are decoded
on the pool.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
import warnings

import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from logloss._cli import main, sources  # noqa: E402

ROWS = 5000
TIMEOUT = 120  # seconds: a hang fails the test instead of blocking the suite


def _rows():
    labels = [int(i % 3 == 0) for i in range(ROWS)]
    preds = [0.01 + 0.98 * i / (ROWS - 1) for i in range(ROWS)]
    return labels, preds


def _expected() -> float:
    labels, preds = _rows()
    return math.fsum(-math.log(p) if y else -math.log1p(-p) for y, p in zip(labels, preds)) / ROWS


def _write(path, kind: str) -> None:
    labels, preds = _rows()
    if kind == "parquet":
        pq.write_table(pa.table({"label": labels, "pred": preds}), path, row_group_size=700)
        return
    if kind == "jsonl":
        text = "".join(json.dumps({"label": y, "pred": p}) + "\n" for y, p in zip(labels, preds))
    else:  # quoted labels: the quoting check runs too
        text = "label,pred\n" + "".join(f'"{y}",{p!r}\n' for y, p in zip(labels, preds))
    data = text.encode()
    path.write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def _score(path) -> float:
    out = path.with_suffix(".json.out")
    code = main(["score", str(path), "--format", "json", "--quiet", "-o", str(out)])
    assert code == 0
    return json.loads(out.read_text())["log_loss"]


@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz", "x.jsonl", "x.parquet"])
def test_a_forked_child_reads_the_file_again(tmp_path, monkeypatch, name):
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 4096)  # many blocks: the pools are busy
    path = tmp_path / name
    _write(path, name.split(".")[1])
    expected = _expected()
    assert _score(path) == pytest.approx(expected, rel=1e-13)
    read, write = os.pipe()
    with warnings.catch_warnings():  # the hazard under test (Python 3.12+, JAX's hook warn of it)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # the child: the value through the pipe, never back into pytest
        try:
            os.write(write, repr(_score(path)).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {TIMEOUT} s reading {name}")
        time.sleep(0.05)
    value = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0, f"the child was killed or failed: {status}"
    assert float(value) == pytest.approx(expected, rel=1e-13)
