"""Settings: threads and engine, passed, scoped, inherited from the environment, and honoured."""

from __future__ import annotations

import concurrent.futures
import os
import select
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import logloss
from logloss._core import config
from logloss._numpy import chunked


def test_defaults_and_process_wide_setting():
    assert set(logloss.get_config()) == {"threads", "engine"}
    logloss.set_config(threads=3)
    assert logloss.get_config()["threads"] == 3
    assert config.thread_count() == 3


def test_context_is_scoped_to_the_block_and_the_thread():
    logloss.set_config(threads=None)
    seen = {}
    with logloss.config_context(threads=2, engine="numpy"):
        assert logloss.get_config() == {"threads": 2, "engine": "numpy"}
        other = threading.Thread(target=lambda: seen.update(logloss.get_config()))
        other.start()
        other.join()
    assert seen == {"threads": None, "engine": logloss.get_config()["engine"]}
    assert logloss.get_config()["threads"] is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match=r"Invalid value for argument `threads`.*Received: threads="):
        logloss.set_config(threads=bad)
    with pytest.raises(ValueError, match="`threads`"):
        with logloss.config_context(threads=bad):
            pass


def test_unknown_engine_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Expected one of \('auto', 'numpy', 'kernels'\)"):
        logloss.set_config(engine="cuda")


def _thread_count_with(threads):
    with logloss.config_context(threads=threads):
        return config.thread_count()


def test_default_threads_follow_the_affinity_mask_and_one_off_the_main_thread():
    logloss.set_config(threads=None)
    assert config.thread_count() == config.available_cpus() <= len(os.sched_getaffinity(0))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(config.thread_count).result() == 1  # a worker thread: no oversubscription
    with logloss.config_context(threads=2):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # A context does not follow into a thread the caller did not start in it...
            assert pool.submit(config.thread_count).result() == 1
            # ...but an explicit setting made there is honoured.
            assert pool.submit(_thread_count_with, 2).result() == 2


def test_the_thread_count_reaches_the_chunked_path(monkeypatch):
    chunks_per_call = []
    original = chunked._workers
    monkeypatch.setattr(chunked, "_workers", lambda chunks: chunks_per_call.append(original(chunks)) or chunks_per_call[-1])
    y = (np.arange(200_000) % 3 == 0).astype(np.int8)
    p = np.linspace(0.01, 0.99, y.size)
    for threads in (1, 2):
        with logloss.config_context(threads=threads, engine="numpy"):
            logloss.bce(y, p)
    assert chunks_per_call == [1, 2]


@pytest.mark.parametrize(("variables", "expected"), [
    ({"LOGLOSS_NUM_THREADS": "3"}, "3 auto"),
    ({"LOGLOSS_ENGINE": "numpy"}, "None numpy"),
    ({"LOGLOSS_DISABLE_NUMBA": "1"}, "None numpy"),
])
def test_environment_sets_the_process_defaults(variables, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGLOSS_")} | variables
    code = "import logloss; c = logloss.get_config(); print(c['threads'], c['engine'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == expected.split()


def test_a_bad_environment_value_names_the_variable():
    env = dict(os.environ, LOGLOSS_NUM_THREADS="many")
    out = subprocess.run([sys.executable, "-c", "import logloss"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "LOGLOSS_NUM_THREADS" in out.stderr and "'many'" in out.stderr


def test_a_forked_child_gets_a_working_pool():
    y = (np.arange(100_000) % 2).astype(np.int8)
    p = np.full(y.size, 0.25)
    with logloss.config_context(threads=2, engine="numpy"):
        expected = float(logloss.bce(y, p))  # the parent's pool now has threads
    read, write = os.pipe()
    with warnings.catch_warnings():
        # JAX, when an earlier test imported it, warns at every fork; this child never uses it.
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # the child: a hang here would time the test out, not pass it
        try:
            with logloss.config_context(threads=2, engine="numpy"):
                os.write(write, repr(float(logloss.bce(y, p))).encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the parent's thread pool")
    with os.fdopen(read) as pipe:
        got = pipe.read()
    os.waitpid(pid, 0)
    assert float(got) == expected


def test_the_cgroup_quota_is_read_once_per_process(monkeypatch):
    reads = []
    monkeypatch.setattr(config, "_cgroup_quota", None)
    monkeypatch.setattr(config, "_read_cgroup_cpus", lambda: reads.append(1) or 1.0)
    assert [config.available_cpus() for _ in range(3)] == [1, 1, 1]
    assert len(reads) == 1
