"""What reaches a terminal: values read from a file are shown, never obeyed.

The CLI runs in a subprocess whose standard output is a pseudo-terminal, as when a user types
the command; the same run into a pipe must keep the values byte for byte.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

SRC = str(Path(__file__).resolve().parents[2] / "src")
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\x00\x7f"  # retitle, clear, C1 CSI, NUL, DEL


def _run(arguments, terminal: bool) -> bytes:
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-m", "logloss", *arguments]
    if not terminal:
        return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                              timeout=60, check=True).stdout
    parent, child = pty.openpty()
    try:
        process = subprocess.Popen(command, stdout=child, stderr=subprocess.DEVNULL, env=env)
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 1 << 16)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(parent)
    return b"".join(chunks)


@pytest.fixture
def hostile_file(tmp_path):
    path = tmp_path / "preds.jsonl"
    import json

    rows = [{"label": 1, "pred": 0.9, "seg": HOSTILE}, {"label": 0, "pred": 0.2, "seg": "plain"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("output_format", ["csv", "table", "json"])
def test_control_characters_reach_a_terminal_escaped(hostile_file, output_format):
    shown = _run(["score", hostile_file, "--by", "seg", "--format", output_format, "--quiet"],
                 terminal=True)
    text = shown.decode("utf-8")
    assert "plain" in text
    controls = [c for c in text if (ord(c) < 0x20 and c not in "\r\n\t") or 0x7f <= ord(c) <= 0x9f]
    assert controls == [], f"control characters reached the terminal: {controls!r}"
    if output_format == "csv":
        assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\x00\\x7f" in text  # shown, escaped


def test_csv_into_a_pipe_keeps_the_value(hostile_file):
    piped = _run(["score", hostile_file, "--by", "seg", "--format", "csv", "--quiet"], terminal=False)
    assert b"\ngroup," + HOSTILE.encode("utf-8") + b",1,1," in piped
