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

Once the arguments of `logloss score`, `compare` or `report` are read, before pyarrow is loaded,
:func:`streaming_settings` makes more, each for CPU lost to the kernel zeroing memory again (a value
the user set wins; measures in benchmarks/results-2core-epyc-avx512-parquet-mem-s10.txt, on a
2-core VM). For every such run:

- NumPy madvises no array MADV_HUGEPAGE (as ``NUMPY_MADVISE_HUGEPAGE=0`` would, set at run time
  since NumPy is imported by then): its arrays of 4 MB or more otherwise get huge pages, and a
  `score --by` allocates one such array a batch (a million 4-byte values; strace shows 21
  madvise calls in a 20M-row run), each first touch of it zeroing 2 MB whole. A 20M-row,
  2*10^4-group `score --by`: CPU median 1.40 -> 1.15 s, system time 0.41 -> 0.27 s (50 groups:
  0.94 -> 0.90 s), peak RSS within noise (243 MB at most).

`logloss score` without ``--by``, and `logloss report` (its state is built during the read, with
or without ``--by``), have nothing to build after the read, so they also set (a 100M-row Parquet
file; for `report` in s11, same file, every variant: system time 0.4-1.0 s -> 0.23-0.34 s, and
`report --format json` 1.65-1.79 -> 1.48-1.65 s):

- ``MIMALLOC_PURGE_DELAY=1000``: at 100 ms, mimalloc still hands back 100-350 MB of batch buffers
  during the read (its decode threads take fresh ranges of its arena while the ranges the scoring
  thread freed wait), and each is page-faulted and zeroed again when reused: 31,000-41,000 page
  faults where 1000 ms leaves 8,000-10,000, and about 7-20% of the run's CPU. A run with ``--by``
  keeps 100 ms: its report is built after the read, in the memory the read handed back.
- ``MIMALLOC_ALLOW_THP=0``: mimalloc otherwise madvises its arena MADV_HUGEPAGE, so each first
  touch of 2 MB of it is a huge page the kernel zeroes whole (``clear_page_erms``: 4-30% of the
  CPU samples, varying from run to run: on this VM, whose kernel reports free pages to its host
  (page_reporting in the profile), a free huge page is likely one the host must supply again),
  even where the read uses a few 64 KB of it. Without: under 1% of the samples, the system time
  steady (0.15-0.26 s in 34 of 35 runs, was 0.11-0.74 s with the longer delay alone), a peak RSS
  of 155 MB rather than 166-169 MB. mimalloc turns transparent huge pages off for the whole
  process (prctl PR_SET_THP_DISABLE), so NumPy's MADV_HUGEPAGE on large arrays has no effect
  there either; the process starts no other program.
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
COMMAND = False  # whether this process is the command, its settings made here

EXIT_INTERRUPTED = 130  # as _cli.runs: 128 + SIGINT


def interrupted_while_starting(signum, frame) -> None:
    """Ctrl-C while the command's libraries import (half a second, longer on a busy machine):
    the line ``entrypoint`` prints for a Ctrl-C later on, not a traceback from inside NumPy.
    Nothing is open yet, so the process ends here; ``entrypoint`` restores Python's handler."""
    os.write(2, b"logloss: interrupted; no result is reported.\n")
    os._exit(EXIT_INTERRUPTED)


# both libraries read their variable when loaded: NumPy here next, pyarrow later, on demand
if "numpy" not in sys.modules and "pyarrow" not in sys.modules and started_as_the_command():
    COMMAND = True
    for name, value in DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
            APPLIED.add(name)
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        signal.signal(signal.SIGINT, interrupted_while_starting)


def streaming_settings(builds_after_read: bool) -> None:
    """For `score`, `compare` and `report`, once their arguments are read and before pyarrow is
    loaded: NumPy madvises no array MADV_HUGEPAGE; unless the command builds its result after the
    read (`score --by`), mimalloc keeps freed buffers for 1000 ms rather than 100 and the process
    uses no transparent huge pages. Changes nothing that the user set, nor mimalloc's settings
    once pyarrow (its allocator) is loaded, nor anything in a process that is not the command."""
    if not COMMAND:
        return
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        import numpy as np

        core = getattr(np, "_core", None) or np.core  # NumPy 2, NumPy 1
        getattr(core.multiarray, "_set_madvise_hugepage", bool)(False)
    if builds_after_read or "pyarrow" in sys.modules:
        return
    if "MIMALLOC_PURGE_DELAY" in APPLIED:
        os.environ["MIMALLOC_PURGE_DELAY"] = STREAMING_PURGE_DELAY
    os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
