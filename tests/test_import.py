import os
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


# What `import logloss` may load beyond `import numpy`: its own modules and these of the standard
# library (the thread pool, dataclasses, logging for warnings). A timed test flaked on a loaded
# machine; the time itself is measured by benchmarks/bench_kernels.py (the first call, import
# included) and benchmarks/bench_startup.py.
STANDARD_LIBRARY_AT_IMPORT = {
    "__future__", "_heapq", "_queue", "_string", "atexit", "concurrent", "concurrent.futures",
    "concurrent.futures._base", "concurrent.futures.thread", "copy", "dataclasses", "heapq",
    "logging", "queue", "string", "threading", "traceback", "weakref", "_weakrefset",
    "contextlib", "functools", "collections", "types", "enum", "re", "warnings", "math",
}


def test_import_logloss_loads_only_its_own_modules_and_a_few_standard_ones():
    code = ("import sys, numpy; before = set(sys.modules); import logloss; "
            "print(','.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    added = set(filter(None, out.stdout.strip().split(",")))
    others = {name for name in added if name != "logloss" and not name.startswith("logloss.")}
    assert others <= STANDARD_LIBRARY_AT_IMPORT, sorted(others - STANDARD_LIBRARY_AT_IMPORT)
    assert "logloss._cli" not in added and "logloss.report" not in added


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


def test_score_without_by_and_report_keep_freed_buffers_longer_before_pyarrow_loads(tmp_path):
    """`score` without --by, and `report`, build nothing after the read: mimalloc keeps freed
    batch buffers for 1000 ms and uses no transparent huge pages (none handed back and zeroed
    again during the read); with `score --by`, the 100 ms default stays (the report is built
    after the read) and mimalloc's huge pages too; NumPy madvises no huge pages in either; values
    the user set, or a library process, are left alone; and the values are set before pyarrow
    loads (mimalloc reads them then)."""
    data = tmp_path / "preds.csv"
    data.write_text("y,p,g\n1,0.9,a\n0,0.2,b\n")
    names = ("MIMALLOC_PURGE_DELAY", "MIMALLOC_ALLOW_THP")
    env = {k: v for k, v in os.environ.items() if k not in (*names, "NUMPY_MADVISE_HUGEPAGE")}
    command = "import sys; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', 'logloss']; "
    show = ("import os, numpy; from logloss._cli import main; "
            "arrow = 'pyarrow' in sys.modules; code = main(%r); "
            "core = getattr(numpy, '_core', None) or numpy.core; "  # NumPy 2, NumPy 1
            "huge = core.multiarray._set_madvise_hugepage(True); "
            "print(arrow, code, *(os.environ.get(n) for n in %r), huge)")

    def run(prefix, argv, environment=env):
        code = prefix + "import sys, logloss; " + show % (argv, names)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=environment).stdout.strip().splitlines()[-1]

    plain, grouped = ["score", str(data), "-q"], ["score", str(data), "--by", "g", "-q"]
    assert run(command, plain) == "False 0 1000 0 False"
    assert run(command, grouped) == "False 0 100 None False"  # NumPy's huge pages off for --by too
    # report builds its state as the files stream, with --by too
    for report in (["report", str(data), "-q", "--format", "json"],
                   ["report", str(data), "-q", "--by", "g", "--format", "json"]):
        assert run(command, report) == "False 0 1000 0 False"
    chosen = dict(env, MIMALLOC_PURGE_DELAY="10", MIMALLOC_ALLOW_THP="1",
                  NUMPY_MADVISE_HUGEPAGE="1")
    assert run(command, plain, chosen) == "False 0 10 1 True"
    assert run("", plain) == "False 0 None None True"  # a program calling main() is not the command
