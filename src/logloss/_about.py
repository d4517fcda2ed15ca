"""``logloss.show_config()``: which engine computes NumPy input, on which CPU path, with how many
threads (also printed by ``logloss --version``)."""

from __future__ import annotations

import sys

import numpy as np

from ._core.config import available_cpus, engine, get_config, thread_count
from ._numpy import kernels

MODES = ("stdout", "dicts")


def _info() -> dict:
    import platform

    from . import __version__

    built = kernels.supported_paths()
    active = kernels.active_path()
    setting = engine()
    if setting == "numpy":
        name = "NumPy (engine='numpy' is set)"
    elif active is None:
        name = "NumPy (no compiled kernels were built: a source install without a C compiler)"
    else:
        name = "C kernels"
    threads = get_config()["threads"]
    return {
        "logloss": __version__,
        "engine": name,
        "engine_setting": setting,
        "cpu_path": None if setting == "numpy" else active,
        "cpu_paths_available": built,
        "threads": thread_count(),
        "threads_setting": threads,
        "cpus_available": available_cpus(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def config_text() -> str:
    info = _info()
    threads = info["threads_setting"]
    available = ", ".join(info["cpu_paths_available"]) or "none"
    origin = f"set to {threads}" if threads else "default: the CPUs this process may use"
    lines = [
        f"logloss {info['logloss']}",
        f"engine: {info['engine']}",
        f"cpu path: {info['cpu_path'] or '-'} (available here: {available}; LOGLOSS_CPU_PATH forces one)",
        f"threads: {info['threads']} ({origin}, {info['cpus_available']} available)",
        f"numpy {info['numpy']}, Python {info['python']}, {info['machine']}",
    ]
    return "\n".join(lines)


def show_config(*, mode: str = "stdout") -> dict | None:
    """Print which engine computes NumPy input (the compiled C kernels, or NumPy where none was
    built or ``engine="numpy"`` is set), which CPU path the kernels run (``avx512``, ``avx2``,
    ``baseline``, ``neon``, ``generic``), and how many threads a call here may use.

    ``mode="dicts"`` returns the same facts as a dict instead of printing them."""
    if mode not in MODES:
        raise ValueError(f"Invalid value for argument `mode`. Expected one of {MODES}. Received: mode={mode!r}")
    if mode == "dicts":
        return _info()
    print(config_text(), file=sys.stdout)
    return None
