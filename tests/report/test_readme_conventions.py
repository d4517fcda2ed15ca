"""The README's "Why it exists" and "Conventions" tables, recomputed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from logloss import conventions

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _script():
    spec = importlib.util.spec_from_file_location("conventions_script",
                                                  ROOT / "benchmarks" / "conventions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(header: str) -> list[str]:
    lines = README.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_why_it_exists_table_is_what_compare_gives():
    script = _script()
    y, p = script.make_data(100_000, 0.05, 1e-50)
    generated = script.comparison_table(y, p).splitlines()
    printed = [generated[0], generated[1], *_table(generated[0])]
    assert printed == generated
    # and the numbers are the conventions' own functions, not only compare's
    for line in generated[3:]:
        name = re.match(r"\| `(\w+)` \|", line).group(1)
        value = float(re.search(r"\| ([0-9.]+)( bits)? \|", line).group(1))
        assert float(conventions.loss(name, y, p)) == pytest.approx(value, abs=5e-5), name


def test_conventions_table_is_the_module_metadata():
    script = _script()
    generated = script.sources_table().splitlines()
    printed = [generated[0], generated[1], *_table(generated[0])]
    assert printed == generated
