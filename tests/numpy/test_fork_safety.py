"""A call after a fork, a spawn or inside a multiprocessing.Pool must neither hang nor be killed.

The parent calls first, so its thread pool (and the compiled kernels) exist before the child is
made: a forked child inherits the pool's bookkeeping without its threads. (The C kernels start no
thread of their own; the numba kernels they replaced were killed by GNU OpenMP in a forked child.)
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import threading
import time
import warnings

import numpy as np
import pytest

import logloss
from logloss._numpy import chunked, kernels

N = 1 << 17  # above chunked.MIN_SIZE and KERNEL_MIN_SIZE: the pooled paths are taken
TIMEOUT = 120  # seconds; a hang fails the test instead of blocking the suite

ENGINES = ["numpy", pytest.param("kernels", marks=pytest.mark.skipif(
    not kernels.supported_paths(), reason="no compiled kernels were built (no C compiler at install)"))]


def _inputs():
    y = (np.arange(N) % 3 == 0)
    p = np.linspace(0.01, 0.99, N)
    return y, p


def _expected() -> float:
    y, p = _inputs()
    return math.fsum(-math.log(q) if t else -math.log1p(-q) for t, q in zip(y.tolist(), p.tolist())) / N


def _score(engine: str) -> float:
    """The mean, after checking that the per-element path (also pooled) agrees with it."""
    y, p = _inputs()
    # threads=2 uses the pool even on a one-CPU runner.
    with logloss.config_context(engine=engine, threads=2):
        mean = float(logloss.bce(y, p))
        per_element = math.fsum(logloss.bce(y, p, reduction="none").tolist()) / N
    assert abs(per_element - mean) <= 1e-14 * mean
    return mean


@pytest.fixture(scope="module")
def expected() -> float:
    return _expected()


def _parent_call(engine: str, expected: float) -> None:
    assert _score(engine) == pytest.approx(expected, rel=1e-14)
    if engine == "kernels":
        with logloss.config_context(engine=engine):
            assert chunked.compiled_kernels() is not None  # the compiled path really ran in the parent


@contextlib.contextmanager
def _forking():
    """Python 3.12+ (DeprecationWarning) and JAX, once another test imported it (RuntimeWarning
    from its at-fork hook), warn that forking a process with threads may deadlock: that is the
    hazard under test here, for our own threads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def _fork():
    with _forking():
        return os.fork()


@pytest.mark.parametrize("engine", ENGINES)
def test_forked_child(engine, expected):
    _parent_call(engine, expected)
    read, write = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: report the value through the pipe, never return into pytest
        try:
            os.write(write, repr(_score(engine)).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {TIMEOUT} s")
        time.sleep(0.05)
    value = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0, f"the child was killed or failed: {status}"
    assert float(value) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("engine", ENGINES)
def test_multiprocessing_pool(engine, method, expected):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    _parent_call(engine, expected)
    context = multiprocessing.get_context(method)
    with _forking():
        with context.Pool(2) as pool:
            values = pool.map_async(_score, [engine] * 3).get(timeout=TIMEOUT)
    assert values == pytest.approx([expected] * 3, rel=1e-14)


@pytest.mark.parametrize("engine", ENGINES)
def test_process_after_fork_and_spawn(engine, expected):
    """A plain multiprocessing.Process of each kind, joined with a timeout."""
    _parent_call(engine, expected)
    for method in ("fork", "spawn"):
        context = multiprocessing.get_context(method)
        queue = context.Queue()
        with _forking():
            process = context.Process(target=_score_into, args=(engine, queue))
            process.start()
        process.join(TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
            pytest.fail(f"the {method} child hung for {TIMEOUT} s")
        assert process.exitcode == 0, f"the {method} child exited with {process.exitcode}"
        assert queue.get(timeout=5) == pytest.approx(expected, rel=1e-14)


def _score_into(engine, queue):
    queue.put(_score(engine))


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_threads(engine, expected):
    """Several Python threads calling at once (each may use the pool) all get the right value."""
    results, errors = [], []

    def run():
        try:
            for _ in range(3):
                results.append(_score(engine))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert not errors, errors
    assert results == pytest.approx([expected] * 12, rel=1e-14)
