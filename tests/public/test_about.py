"""``logloss.show_config()`` and ``logloss --version``: the engine, CPU path and threads in force."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import logloss
from logloss._cli import main
from logloss._numpy import kernels


def test_show_config_names_the_engine_path_and_threads(capsys):
    with logloss.config_context(engine="auto", threads=3):
        logloss.show_config()
        info = logloss.show_config(mode="dicts")
    out = capsys.readouterr().out
    assert out.startswith(f"logloss {logloss.__version__}\n")
    assert "threads: 3 (set to 3" in out and info["threads"] == 3
    if kernels.supported_paths():
        assert "engine: C kernels" in out and info["cpu_path"] == kernels.active_path()
        assert f"cpu path: {kernels.active_path()}" in out
    else:
        assert "no compiled kernels were built" in out and info["cpu_path"] is None
    with logloss.config_context(engine="numpy"):
        assert logloss.show_config(mode="dicts")["engine"] == "NumPy (engine='numpy' is set)"
    with pytest.raises(ValueError, match="Invalid value for argument `mode`.*Received: mode='text'"):
        logloss.show_config(mode="text")


def test_show_config_without_built_kernels(monkeypatch):
    """A source install without a C compiler: no kernel module, the NumPy engine says so."""
    monkeypatch.setattr(kernels, "_built", {})
    monkeypatch.setattr(kernels, "_active", kernels._UNSET)
    info = logloss.show_config(mode="dicts")
    assert info["engine"].startswith("NumPy (no compiled kernels were built")
    assert info["cpu_path"] is None and info["cpu_paths_available"] == []


@pytest.mark.skipif(not kernels.supported_paths(), reason="no compiled kernels were built")
def test_version_prints_the_config_and_the_forced_path():
    env = dict(os.environ, LOGLOSS_CPU_PATH=kernels.supported_paths()[-1], LOGLOSS_ENGINE="auto")
    out = subprocess.run([sys.executable, "-m", "logloss", "--version"], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.startswith(f"logloss {logloss.__version__}\n")
    assert f"cpu path: {kernels.supported_paths()[-1]} " in out


def test_version_flag_exits_zero(capsys):
    assert main(["--version"]) == 0
    assert "engine:" in capsys.readouterr().out


def test_version_says_which_scan_checks_csv_quoting(capsys, monkeypatch):
    from logloss._cli import records

    assert main(["--version"]) == 0
    compiled = records._compiled_scan is not None
    assert capsys.readouterr().out.rstrip().endswith(
        "CSV quoting check: compiled (C)" if compiled else "slower on quoted text")
    monkeypatch.setattr(records, "_compiled_scan", None)
    assert main(["--version"]) == 0
    assert "CSV quoting check: Python (the C extension was not built" in capsys.readouterr().out
