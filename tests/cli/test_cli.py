from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logloss._cli import main


def test_explain_tells_the_story_with_computed_numbers(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for fragment in ["-[ y*log(p) + (1 - y)*log(1 - p) ]", "loss = 0.01005", "loss = 2.99573",
                     "minus sign", "mean = ", "good p", "bad  p", "16.12", "+inf", "KL"]:
        assert fragment in out


def test_no_command_prints_help_and_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "explain" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_installed_console_script_runs_end_to_end():
    script = Path(sys.executable).parent / "logloss"
    found = str(script) if script.exists() else shutil.which("logloss")
    if found is None:
        pytest.skip("the logloss console script is not installed (run the README's install command)")
    result = subprocess.run([found, "explain"], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONWARNINGS": "error"})
    assert "Binary cross-entropy" in result.stdout


def test_output_closed_early_exits_quietly_with_141():
    # Closing our end before the CLI writes anything makes its first write fail (EPIPE).
    proc = subprocess.Popen([sys.executable, "-m", "logloss", "explain"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err
