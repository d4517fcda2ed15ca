import os
import statistics
import subprocess
import sys

import pytest

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


# (how the process started: sys.argv while logloss is imported, sys.orig_argv, __main__'s file;
#  whether it is the `logloss` command, which alone gets OPENBLAS_NUM_THREADS=1 by default)
_STARTS = [
    ("python -m logloss score f", ["-m", "score", "f"], ["python", "-m", "logloss", "score", "f"],
     None, True),
    ("python -X importtime -m logloss", ["-m"], ["python", "-X", "importtime", "-m", "logloss"],
     None, True),
    ("python -m another tool importing logloss", ["-m", "x"], ["python", "-m", "tool", "x"], None,
     False),
    ("python -m logloss_plugin", ["-m"], ["python", "-m", "logloss_plugin"], None, False),
    ("the console script", ["/venv/bin/logloss", "score"], ["/venv/bin/python",
                                                           "/venv/bin/logloss", "score"],
     "/venv/bin/logloss", True),
    ("the console script as an .exe", [os.path.join("venv", "Scripts", "logloss.exe")], [],
     os.path.join("venv", "Scripts", "logloss.exe"), True),
    ("a user's script", ["train.py"], ["python", "train.py"], "train.py", False),
    ("python -c", ["-c"], ["python", "-c", "import logloss"], None, False),
    ("a notebook or embedded interpreter", [], [], None, False),
    ("a script named logloss that is not __main__", ["/venv/bin/logloss"], ["python"],
     "/elsewhere/main.py", False),
    # Python makes __main__.__file__ absolute; sys.argv[0] stays as typed
    ("the console script by a relative path", [os.path.join(".", "bin", "logloss")],
     ["python", os.path.join(".", "bin", "logloss")],
     os.path.join(os.getcwd(), ".", "bin", "logloss"), True),
    ("python bin/logloss", [os.path.join("bin", "logloss")],
     ["python", os.path.join("bin", "logloss")], os.path.join(os.getcwd(), "bin", "logloss"),
     True),
    ("python -mlogloss", ["-m"], ["python", "-mlogloss"], None, True),
    ("python -Im logloss", ["-m"], ["python", "-Im", "logloss"], None, True),
    ("python -W ignore -m logloss", ["-m"], ["python", "-W", "ignore", "-m", "logloss"], None,
     True),
    ("python -W-m -m tool (-m as a value)", ["-m"], ["python", "-W", "-m", "-m", "tool"], None,
     False),
    ("python -mtool importing logloss", ["-m"], ["python", "-mtool", "logloss"], None, False),
    ("python -m logloss.__main__", ["-m"], ["python", "-m", "logloss.__main__"], None, True),
    ("python -m tool.logloss", ["-m"], ["python", "-m", "tool.logloss"], None, False),
    ("an embedding host without sys.argv", None, [], None, False),
]


def test_only_the_logloss_command_counts_as_the_command(monkeypatch):
    import types

    from logloss import _command

    for name, argv, orig_argv, main_file, expected in _STARTS:
        main = types.ModuleType("__main__")
        if main_file is not None:
            main.__file__ = main_file
        if argv is None:
            monkeypatch.delattr(sys, "argv")
        else:
            monkeypatch.setattr(sys, "argv", argv)
        monkeypatch.setattr(sys, "orig_argv", orig_argv)
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert _command.started_as_the_command() is expected, name


_SHOW_SETTINGS = ("import os; print(os.environ.get('OPENBLAS_NUM_THREADS'), "
                  "os.environ.get('MIMALLOC_PURGE_DELAY'))")


@pytest.mark.parametrize("setup", ["del sys.argv", "sys.argv = None", "sys.argv = []",
                                   "sys.argv = [None]"])
def test_an_embedding_without_sys_argv_imports_the_library_untouched(setup):
    """A host that embeds Python may leave sys.argv out (or empty): `import logloss` works there
    and leaves the process settings alone, as in any library process."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "MIMALLOC_PURGE_DELAY")}
    out = subprocess.run([sys.executable, "-c", f"import sys; {setup}; import logloss; "
                          + _SHOW_SETTINGS], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None None"


def test_the_command_sets_its_process_defaults_and_a_library_process_keeps_its_own():
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "MIMALLOC_PURGE_DELAY")}
    # python -m logloss, as the package import sees it
    as_command = ("import sys; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', 'logloss']; "
                  "import logloss; " + _SHOW_SETTINGS)
    as_library = "import logloss; " + _SHOW_SETTINGS
    chosen = dict(env, OPENBLAS_NUM_THREADS="4", MIMALLOC_PURGE_DELAY="10")

    def run(code, environment):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=environment).stdout.strip()

    assert run(as_command, env) == "1 100"
    assert run(as_library, env) == "None None"
    assert run(as_command, chosen) == "4 10"  # values the user set win
    # NumPy already imported (its OpenBLAS already started): nothing is changed
    assert run("import sys, numpy; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', "
               "'logloss']; import logloss; " + _SHOW_SETTINGS, env) == "None None"
