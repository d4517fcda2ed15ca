"""Process settings for the `logloss` command, made before NumPy is imported.

`logloss/__init__.py` imports this module first. When the process is the command itself
(`logloss ...` or `python -m logloss ...`), never a program that imports the library, it sets
``OPENBLAS_NUM_THREADS=1`` unless already set: the command never calls BLAS, and NumPy's OpenBLAS
otherwise starts a thread per core at import that spins through its first tenth of a second or so
of CPU, taken from the file reader and the kernels on a small machine.
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


if "numpy" not in sys.modules and started_as_the_command():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
