"""The compiled kernels (``kernels.c``), built when the package is installed, one extension module
per CPU path: ``avx512`` (AVX-512F/DQ/VL), ``avx2`` (AVX2 + FMA) and ``baseline`` (x86-64-v2:
SSE4.2) on x86-64; elsewhere one ``neon`` (aarch64) or ``generic`` module, vectorized by the
compiler for its target.

The best path this CPU supports is picked on first use. ``LOGLOSS_CPU_PATH`` (or
:func:`set_cpu_path`, for tests) forces one. When no module was built (a source install without a C
compiler: the extensions are optional), :func:`module` is None and the NumPy paths compute
everything, with the same results within the same error bounds.
"""

from __future__ import annotations

import importlib
import os


def _machine() -> str:
    if hasattr(os, "uname"):
        return os.uname().machine.lower()
    import platform  # Windows: 10 ms of import, so only where os.uname is missing

    return platform.machine().lower()


_machine = _machine()
if _machine in ("x86_64", "amd64"):
    PATHS = ("avx512", "avx2", "baseline")  # best first
elif _machine in ("aarch64", "arm64"):
    PATHS = ("neon",)
else:
    PATHS = ("generic",)

_UNSET = object()
_active = _UNSET
_built: dict | None = None


def _runnable(name: str) -> bool:
    """Whether this CPU runs a path, asked of the flag-free _cpu module (x86-64 only)."""
    if name in ("neon", "generic"):
        return True
    try:
        from . import _cpu
    except ImportError:
        return False
    return _cpu.cpu_supports(name)


def _modules() -> dict:
    """The path modules that were built and that this CPU runs, best first. A path module is
    imported only after the CPU was found to run it: its code uses that path's instructions."""
    global _built
    if _built is None:
        # Filled here and published whole: another thread's first use, seeing a half-filled
        # dict, took "no kernel built" for the answer (and could keep it for the process).
        built = {}
        for name in PATHS:
            if not _runnable(name):
                continue
            try:
                built[name] = importlib.import_module(f"{__name__}._kernels_{name}")
            except ImportError:
                continue
        _built = built
    return _built


def supported_paths() -> list[str]:
    """The built paths this CPU can run, best first."""
    return list(_modules())


def _choose(name: str | None):
    paths = supported_paths()
    if not paths:
        return None
    if name is None or name == "auto":
        return _modules()[paths[0]]
    if name not in PATHS:
        raise ValueError(
            f"Invalid value for `LOGLOSS_CPU_PATH`. Expected one of {('auto', *PATHS)}. Received: {name!r}"
        )
    if name not in paths:
        raise ValueError(f"The CPU path {name!r} was not built or this CPU cannot run it. Available: {paths}.")
    return _modules()[name]


def module():
    """The active path's module, or None when none was built."""
    global _active
    if _active is _UNSET:
        _active = _choose(os.environ.get("LOGLOSS_CPU_PATH", "").strip().lower() or None)
    return _active


def set_cpu_path(name: str | None) -> None:
    """Use this path from now on (None or "auto": the best). For tests and benchmarks."""
    global _active
    _active = _choose(name)


def active_path() -> str | None:
    kernels = module()
    return None if kernels is None else kernels.PATH
