import subprocess
import sys

HEAVY = ["torch", "jax", "tensorflow", "keras", "dask", "cupy", "pyarrow", "matplotlib", "pandas", "scipy", "numba"]


def test_import_logloss_pulls_in_no_heavy_library():
    code = "import sys, logloss; print(','.join(m for m in %r if m in sys.modules))" % HEAVY
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
