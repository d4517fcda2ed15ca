"""Process settings for the `logloss` command, made before NumPy is imported.

`logloss/__init__.py` imports this module first. When the process is the command itself
(`logloss ...` or `python -m logloss ...`), never a program that imports the library, it sets
two defaults (a value already set wins), each for CPU the command would otherwise lose to
something it does not use, taken from the file reader and the kernels on a small machine:

- ``OPENBLAS_NUM_THREADS=1``: the command never calls BLAS, and NumPy's OpenBLAS otherwise starts
  a thread per core at import that spins through its first tenth of a second or so of CPU.
- ``MIMALLOC_PURGE_DELAY=100``: pyarrow's allocator (mimalloc) otherwise hands a batch's freed
  buffers back to the system after 10 ms, sooner than the next batches come, whose buffers are
  then page-faulted and zeroed again by the kernel. After 100 ms, they are reused; memory freed
  for longer still goes back, so the peak stays within about 15 MB of the default's (never
  handing it back, -1, raised a 10^5-group `score --by` from 314 to 420 MB).

`logloss score` without ``--by`` has nothing to build after the read, so once its arguments are
read it lengthens that delay to 1000 ms (:func:`streaming_settings`, before pyarrow is loaded;
only where the 100 ms above is this module's default, not the user's): at 100 ms, mimalloc still
hands back some 100-350 MB of a 100M-row Parquet file's batch buffers during the read (its decode
threads take fresh ranges of the arena while ranges freed by the scoring thread wait), and the
kernel zeroes them again as they are reused, on huge pages (mimalloc madvises its arena
MADV_HUGEPAGE): 10-35% of the run's CPU samples in ``clear_page_erms`` on a 2-core VM. At 1000 ms,
31,000 page faults become 8,000, about 7% of the run's CPU is saved, and the peak RSS is about
10 MB higher (172 MB); a run with ``--by`` keeps 100 ms, since its report is built after the read,
within memory the read handed back (measures in benchmarks/results-2core-epyc-avx512-parquet-mem-s10.txt).
"""

from __future__ import annotations

import os
import sys


def _module_run(argv) -> str | None:
    """MODULE of `python [options] -m MODULE ...` (also `-mMODULE`, `-Im MODULE`), read from the
    interpreter's own arguments; None for a script, `-c` or anything else."""
    args = iter(list(argv)[1:])
    for arg in args:
        if not isinstance(arg, str) or not arg.startswith("-") or arg in ("-", "--"):
            return None  # a script, stdin, or the end of the options
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":  # the only long option that takes a value
                next(args, None)
            continue
        for i, flag in enumerate(arg[1:], 1):
            if flag in "cmWX":  # the short options that take a value: the rest, or the next
                value = arg[i + 1:] or next(args, None)
                if flag == "m":
                    return value
                if flag == "c":
                    return None
                break
    return None


def started_as_the_command() -> bool:
    """Whether this process is `logloss ...` or `python -m logloss ...`."""
    # sys.argv may be missing or empty where Python is embedded (a notebook kernel, a host
    # program): such a process is never the command, and importing the library must not fail
    argv = getattr(sys, "argv", None)
    if not isinstance(argv, list) or not argv or not isinstance(argv[0], str):
        return False
    if argv[0] == "-m":  # while `python -m PACKAGE` imports its package
        return _module_run(getattr(sys, "orig_argv", ())) in ("logloss", "logloss.__main__")
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if os.path.basename(argv[0]) not in ("logloss", "logloss.exe") or not main_file:
        return False
    # __main__.__file__ is made absolute by Python (3.9+); sys.argv[0] is the path as typed
    # (`./bin/logloss`, `python bin/logloss`)
    try:
        return os.path.abspath(main_file) == os.path.abspath(argv[0])
    except OSError:  # the working directory is gone: a relative argv[0] can't be told apart
        return False


DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "MIMALLOC_PURGE_DELAY": "100"}
STREAMING_PURGE_DELAY = "1000"  # ms: `score` without --by, see the module's docstring

APPLIED: set[str] = set()  # the DEFAULTS this module set (the rest were the user's)

# both libraries read their variable when loaded: NumPy here next, pyarrow later, on demand
if "numpy" not in sys.modules and "pyarrow" not in sys.modules and started_as_the_command():
    for name, value in DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
            APPLIED.add(name)


def streaming_settings() -> None:
    """For a run that only streams (`score` without --by), before pyarrow is loaded: mimalloc
    keeps freed buffers for 1000 ms rather than 100. Changes nothing where the delay is the
    user's, or pyarrow (its allocator) is loaded already, or this process is not the command."""
    if "MIMALLOC_PURGE_DELAY" in APPLIED and "pyarrow" not in sys.modules:
        os.environ["MIMALLOC_PURGE_DELAY"] = STREAMING_PURGE_DELAY
