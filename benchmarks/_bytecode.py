"""Bytecode for logloss's sources before the timed runs, as ``pip install`` writes it.

A checkout run with PYTHONPATH=src has none, and with PYTHONDONTWRITEBYTECODE set (as on the
machines these benchmarks ran on) never gets any: each CLI subprocess then compiled every module
it imported, about 0.06 s a run that no installed copy pays and no peer (compiled wheels with
their bytecode) pays either. compileall writes it whatever that variable says.
"""

from __future__ import annotations

import compileall
from pathlib import Path

SOURCES = Path(__file__).resolve().parents[1] / "src" / "logloss"


def compile_logloss() -> None:
    if not compileall.compile_dir(SOURCES, quiet=1):
        raise SystemExit(f"could not compile {SOURCES}")
