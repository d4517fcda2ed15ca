"""Hostile tests of threads, imports racing, forks and interrupted runs around `logloss report`,
`logloss score`, `logloss.diagnose`, `DiagnosticsState` and the kernels' thread pool.

Each test pins a bug found by racing threads against each other (or a neighbour of one): the
kernels' first use from two threads at once, one DiagnosticsState fed from several threads,
the report's pictures drawn from several threads, and the command's ends (Ctrl-C, a full disk,
a closed pipe, a bad file while the report's libraries are still importing). Reference numbers
are computed here from the rows (NumPy float64 or math.fsum), never taken from logloss.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from logloss._numpy import kernels as kernel_paths

SRC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "src")


def _reference_log_loss(y, p) -> float:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _only_model(result: dict) -> dict:
    (figures,) = result["models"].values()
    return figures


# -- the kernels' first use from two threads -----------------------------------------------


@pytest.mark.parametrize("forced", [None, "first-supported"])
def test_kernels_first_used_from_two_threads_are_found_by_both(monkeypatch, forced):
    """Two threads that use the kernels for the first time at once must both get them. The
    path modules were listed into a dict published before it was filled: a second thread saw
    it empty, was told no kernel was built (the NumPy paths, ~10x slower) and, when it wrote
    last, turned the kernels off for the whole process."""
    supported = kernel_paths.supported_paths()
    if not supported:
        pytest.skip("no compiled kernels in this build")
    if forced is not None:
        monkeypatch.setenv("LOGLOSS_CPU_PATH", supported[0])
    monkeypatch.setattr(kernel_paths, "_built", None)
    monkeypatch.setattr(kernel_paths, "_active", kernel_paths._UNSET)
    runnable = kernel_paths._runnable
    inside, release = threading.Event(), threading.Event()

    def slow_runnable(name):  # the first thread stays inside the listing until released
        inside.set()
        release.wait(5)
        return runnable(name)

    monkeypatch.setattr(kernel_paths, "_runnable", slow_runnable)
    got: dict = {}

    def first_use(key):
        try:
            got[key] = kernel_paths.module()
        except Exception as error:  # noqa: BLE001 - compared below
            got[key] = error

    first = threading.Thread(target=first_use, args=("first",))
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=first_use, args=("second",))
    second.start()
    time.sleep(0.2)  # the second thread looks while the first is still listing
    release.set()
    first.join(10)
    second.join(10)
    assert got["first"] is not None and got["first"].PATH == supported[0]
    assert got["second"] is got["first"]
    assert kernel_paths.module() is got["first"]
