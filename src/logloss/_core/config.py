"""Settings a caller can pass or scope: how many threads the NumPy engine may use, and which
engine computes NumPy input.

``threads``: a positive int, or None for the default: the CPUs this process may run on (its
affinity mask and cgroup quota), or 1 when called from a thread other than the main thread,
since such a caller (a Dask task, a thread pool, a web server's worker) already shares the
cores with its siblings and more threads would only oversubscribe them.

``engine``: "auto" (compiled kernels where installed and worth it, else NumPy), "numpy" (the
NumPy fast and reference paths only) or "kernels" (the same as "auto" when kernels are present;
it never fails for their absence, since results are identical either way).

Precedence: ``config_context`` (per thread and per asyncio task, through a ContextVar) over
``set_config`` over the environment (``LOGLOSS_NUM_THREADS``, ``LOGLOSS_ENGINE``; the older
``LOGLOSS_DISABLE_NUMBA=1`` means ``engine="numpy"``) over the defaults.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
from collections.abc import Iterator

ENGINES = ("auto", "numpy", "kernels")
_UNSET = object()


def _check_threads(threads: object, origin: str) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"Invalid value for argument `threads` ({origin}). Expected a positive int or None. "
            f"Received: threads={threads!r}"
        )
    return threads


def _check_engine(engine: object, origin: str) -> str:
    if engine not in ENGINES:
        raise ValueError(
            f"Invalid value for argument `engine` ({origin}). Expected one of {ENGINES}. "
            f"Received: engine={engine!r}"
        )
    return engine  # type: ignore[return-value]


def _from_environment() -> dict:
    settings: dict = {}
    threads = os.environ.get("LOGLOSS_NUM_THREADS", "").strip()
    if threads:
        value = int(threads) if threads.isdigit() else threads
        settings["threads"] = _check_threads(value, "environment variable LOGLOSS_NUM_THREADS")
    engine = os.environ.get("LOGLOSS_ENGINE", "").strip().lower()
    if engine:
        settings["engine"] = _check_engine(engine, "environment variable LOGLOSS_ENGINE")
    elif os.environ.get("LOGLOSS_DISABLE_NUMBA", "").strip().lower() not in ("", "0", "false", "no"):
        settings["engine"] = "numpy"
    return settings


_global: dict = {"threads": None, "engine": "auto"}
_global.update(_from_environment())
_scoped: contextvars.ContextVar[dict | None] = contextvars.ContextVar("logloss_config", default=None)


def get_config() -> dict:
    """The settings in force here: ``{"threads": int | None, "engine": str}``."""
    scoped = _scoped.get()
    return dict(_global if scoped is None else scoped)


def set_config(*, threads=_UNSET, engine=_UNSET) -> None:
    """Change the process-wide settings (``config_context`` scopes them instead)."""
    if threads is not _UNSET:
        _global["threads"] = _check_threads(threads, "set_config")
    if engine is not _UNSET:
        _global["engine"] = _check_engine(engine, "set_config")


@contextlib.contextmanager
def config_context(*, threads=_UNSET, engine=_UNSET) -> Iterator[None]:
    """Use these settings inside the ``with`` block, in this thread (or asyncio task) only."""
    settings = get_config()
    if threads is not _UNSET:
        settings["threads"] = _check_threads(threads, "config_context")
    if engine is not _UNSET:
        settings["engine"] = _check_engine(engine, "config_context")
    token = _scoped.set(settings)
    try:
        yield
    finally:
        _scoped.reset(token)


_cgroup_quota: float | None = None


def _cgroup_cpus() -> float:
    """The CPU quota of this process's cgroup, read once per process: two file reads per call
    were most of a small call's overhead (a quota changed while the process runs is not seen)."""
    global _cgroup_quota
    if _cgroup_quota is None:
        _cgroup_quota = _read_cgroup_cpus()
    return _cgroup_quota


def _read_cgroup_cpus() -> float:
    """The CPU quota of this process's cgroup (v2 ``cpu.max``, v1 ``cfs_quota_us``), or inf."""
    candidates = (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    for quota_path, period_path in candidates:
        try:
            with open(quota_path) as file:
                fields = file.read().split()
            if period_path is not None:
                with open(period_path) as file:
                    fields.append(file.read().strip())
        except (OSError, ValueError):
            continue
        if len(fields) >= 2 and fields[0] not in ("max", "-1"):
            try:
                return max(1.0, int(fields[0]) / int(fields[1]))
            except (ValueError, ZeroDivisionError):
                continue
    return math.inf


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, bounded by its cgroup's quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, cpus if quota == math.inf else min(cpus, int(quota)))


def thread_count() -> int:
    """How many threads a call made here may use (see the module docstring)."""
    threads = get_config()["threads"]
    if threads is not None:
        return threads
    if threading.current_thread() is not threading.main_thread():
        return 1
    return available_cpus()


def engine() -> str:
    return get_config()["engine"]
