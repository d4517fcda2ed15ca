"""Process settings for the `logloss` command, made before NumPy is imported.

`logloss/__init__.py` imports this module first. When the process is the command itself
(`logloss ...` or `python -m logloss ...`), never a program that imports the library, it sets
two defaults (a value already set wins), each for CPU the command would otherwise lose to
something it does not use, taken from the file reader and the kernels on a small machine:

- ``OPENBLAS_NUM_THREADS=1``: the command never calls BLAS, and NumPy's OpenBLAS otherwise starts
  a thread per core at import that spins through its first tenth of a second or so of CPU.
- ``MIMALLOC_PURGE_DELAY=-1``: pyarrow's allocator (mimalloc) otherwise hands a batch's freed
  buffers back to the system after 10 ms, and the next batch's buffers are then page-faulted
  and zeroed again by the kernel. Kept, they are reused; the peak memory is the same working set
  (a few tens of MB more resident at the end of a 10^8-row run).
"""

from __future__ import annotations

import os
import sys


def started_as_the_command() -> bool:
    """Whether this process is `logloss ...` or `python -m logloss ...`."""
    if sys.argv[:1] == ["-m"]:  # while `python -m PACKAGE` imports its package
        argv = list(getattr(sys, "orig_argv", ()))
        return "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["logloss"]
    main = sys.modules.get("__main__")
    return (bool(sys.argv) and os.path.basename(sys.argv[0]) in ("logloss", "logloss.exe")
            and getattr(main, "__file__", None) == sys.argv[0])


DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "MIMALLOC_PURGE_DELAY": "-1"}

# both libraries read their variable when loaded: NumPy here next, pyarrow later, on demand
if "numpy" not in sys.modules and "pyarrow" not in sys.modules and started_as_the_command():
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
