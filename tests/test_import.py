import os
import statistics
import subprocess
import sys

HEAVY = [
    "torch", "jax", "tensorflow", "keras", "dask", "cupy", "array_api_compat", "array_api_strict",
    "pyarrow", "matplotlib", "jinja2", "pandas", "scipy", "numba",
]


def test_import_logloss_pulls_in_no_heavy_library():
    code = "import sys, logloss; print(','.join(m for m in %r if m in sys.modules))" % HEAVY
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _import_ms(module: str, env: dict) -> float:
    """Cumulative import time of `module` (ms) as `python -X importtime` reports it: no startup."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True, env=env,
    )
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].rstrip() == f" {module}":
            return int(parts[1]) / 1000
    raise AssertionError(f"no import time for {module} in:\n{out.stderr[-2000:]}")


def test_import_logloss_takes_at_most_one_and_a_half_numpys(tmp_path):
    # Bytecode cached in a private folder (also where PYTHONDONTWRITEBYTECODE is set), one warm-up
    # each, then alternating runs; medians make the comparison robust on a loaded 2-core machine.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path)
    _import_ms("numpy", env), _import_ms("logloss", env)
    numpy_ms, logloss_ms = [], []
    for _ in range(9):
        numpy_ms.append(_import_ms("numpy", env))
        logloss_ms.append(_import_ms("logloss", env))
    ratio = statistics.median(logloss_ms) / statistics.median(numpy_ms)
    print(f"import numpy {statistics.median(numpy_ms):.1f} ms, import logloss {statistics.median(logloss_ms):.1f} ms, ratio {ratio:.2f}")
    assert ratio <= 1.5
