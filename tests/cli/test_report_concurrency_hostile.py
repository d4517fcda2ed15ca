"""Hostile tests of threads, imports racing, forks and interrupted runs around `logloss report`,
`logloss score`, `logloss.diagnose`, `DiagnosticsState`, `Accumulator` and the kernels' pool.

Each fixed bug has its test here: the kernels' first use from two threads at once, one
DiagnosticsState or Accumulator fed from several threads, states merged into each other at
once, a fork while a thread adds to a state, the report's pictures drawn in several threads,
standard output cut short (a full disk, unbuffered) or non-blocking, Ctrl-C while the command
imports and a second Ctrl-C while it ends, many small Parquet files, a bad row on standard
input still open. The cases that held are kept too (diagnose in threads, a closed pipe, a bad
file while the pictures import, Ctrl-C while reading, a fork while the kernel pool works).
Reference numbers are computed here from the rows (NumPy float64), never taken from logloss.
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

import logloss
from logloss import DiagnosticsState
from logloss._numpy import chunked
from logloss._numpy import kernels as kernel_paths

# The children here are started with a preexec_fn (a limit, a signal disposition), so Python
# forks: once JAX is imported (by earlier tests of the suite), its fork hook warns in the parent.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

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


# -- one DiagnosticsState fed from several threads ------------------------------------------


# -- one Accumulator fed from several threads ------------------------------------------------


def test_one_accumulator_updated_from_several_threads_loses_no_batch(monkeypatch):
    """Accumulator.update computes a batch's sums, then folds them into the state: reading the
    state's sums, adding, and writing them back. Two threads folding at once could both read
    the old sums, and one batch was lost (0.96208 against 0.96180 over 400 batches)."""
    from logloss._core.statistics import Statistics

    rng = np.random.default_rng(11)
    batches = [(rng.integers(0, 2, 64), rng.uniform(0.01, 0.99, 64)) for _ in range(40)]
    merge = Statistics.merge
    inside = {"now": 0, "most": 0}
    counter = threading.Lock()

    def probed(self, other):  # how many threads fold into one state at once
        with counter:
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
        try:
            time.sleep(0.002)
            return merge(self, other)
        finally:
            with counter:
                inside["now"] -= 1

    monkeypatch.setattr(Statistics, "merge", probed)
    accumulator = logloss.Accumulator()
    start = threading.Barrier(4)

    def work(items):
        start.wait(5)
        for y, p in items:
            accumulator.update(y, p)

    workers = [threading.Thread(target=work, args=(batches[i::4],)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    y = np.concatenate([b[0] for b in batches])
    p = np.concatenate([b[1] for b in batches])
    assert inside["most"] == 1
    assert accumulator.count == len(y)
    assert accumulator.result() == pytest.approx(_reference_log_loss(y, p), rel=1e-13)


def _batches(count=8, n=1 << 16, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 2, n).astype(np.int8), rng.uniform(0.01, 0.99, n))
            for _ in range(count)]


@pytest.mark.parametrize("threads", [1, 2])
def test_one_state_updated_from_several_threads_loses_no_rows(monkeypatch, threads):
    """Threads sharing one state (a web server's workers, a thread pool over files) must get
    the figures of the rows added in one thread. The compiled kernel adds chunk i of every
    batch into the state's slot i with the GIL released: two batches at once added into the
    same slots, and the histograms lost rows (the ECE moved from 0.245 to 0.206, silently)."""
    batches = _batches()
    inside = {"now": 0, "most": 0}
    counter = threading.Lock()

    def probed(function):
        def run(*args, **kwargs):  # how many threads change the state at once
            with counter:
                inside["now"] += 1
                inside["most"] = max(inside["most"], inside["now"])
            try:
                time.sleep(0.02)  # widen the window a second thread would enter in
                return function(*args, **kwargs)
            finally:
                with counter:
                    inside["now"] -= 1
        return run

    monkeypatch.setattr(chunked, "diagnostics_update", probed(chunked.diagnostics_update))
    monkeypatch.setattr(DiagnosticsState, "_add_rows", probed(DiagnosticsState._add_rows))

    alone = DiagnosticsState()
    for y, p in batches:
        alone.update(y, p)
    inside["most"] = 0
    shared = DiagnosticsState()
    start = threading.Barrier(4)
    errors = []

    def work(items):
        try:
            with logloss.config_context(threads=threads):
                start.wait(5)
                for y, p in items:
                    shared.update(y, p)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(batches[i::4],)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors
    assert inside["most"] == 1
    got, want = _only_model(shared.result()), _only_model(alone.result())
    y = np.concatenate([b[0] for b in batches])
    p = np.concatenate([b[1] for b in batches])
    assert got["count"] == len(y)
    assert got["log_loss"] == pytest.approx(_reference_log_loss(y, p), rel=1e-12)
    # the histogram figures: the same rows in another order, so equal but for rounding
    assert got["ece"] == pytest.approx(want["ece"], rel=1e-9)
    assert got["brier"] == pytest.approx(want["brier"], rel=1e-9)
    for key in ("miscalibration", "discrimination", "uncertainty"):
        assert got["decomposition"][key] == pytest.approx(want["decomposition"][key],
                                                          rel=1e-9, abs=1e-15)


class _SlowLock:
    """A reentrant lock that dawdles once held: a thread that took one state's lock is still
    without the other's when the second thread takes that one."""

    def __init__(self):
        self._lock = threading.RLock()

    def __enter__(self):
        self._lock.acquire()
        time.sleep(0.05)

    def __exit__(self, *exc):
        self._lock.release()


def test_states_merged_into_each_other_at_once_do_not_wait_forever():
    """a.merge(b) in one thread beside b.merge(a) in another: each takes both states' locks
    (both change), always in the same order, so neither waits on the other for ever."""
    (y1, p1), (y2, p2) = _batches(count=2, n=1 << 12)
    a, b = DiagnosticsState().update(y1, p1), DiagnosticsState().update(y2, p2)
    a._lock, b._lock = _SlowLock(), _SlowLock()
    start = threading.Barrier(2)

    def merge(into, other):
        start.wait(5)
        for _ in range(3):  # each merge adds the other's rows: few, or the counts explode
            into.merge(other)

    workers = [threading.Thread(target=merge, args=pair, daemon=True) for pair in ((a, b), (b, a))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert not any(worker.is_alive() for worker in workers)


@pytest.mark.parametrize("copy_with", ["pickle", "deepcopy"])
def test_a_copied_state_has_a_lock_of_its_own(copy_with):
    """The lock that serializes a state's calls must not stop it pickling, and a copy must not
    share it (a copy held by another thread would wait on the original's calls)."""
    import copy
    import pickle

    (y1, p1), (y2, p2) = _batches(count=2, n=1 << 12)
    state = DiagnosticsState().update(y1, p1)
    again = (pickle.loads(pickle.dumps(state)) if copy_with == "pickle"
             else copy.deepcopy(state))
    assert again._lock is not state._lock
    with state._lock:  # the original busy in another call: the copy still adds
        done = threading.Event()
        worker = threading.Thread(target=lambda: (again.update(y2, p2), done.set()), daemon=True)
        worker.start()
        assert done.wait(10)
    y, p = np.concatenate([y1, y2]), np.concatenate([p1, p2])
    assert _only_model(again.result())["log_loss"] == pytest.approx(_reference_log_loss(y, p),
                                                                    rel=1e-12)


# -- the report's pictures drawn from several threads ------------------------------------------


def test_pictures_drawn_from_several_threads_keep_matplotlib_settings(monkeypatch):
    """Diagnosis.to_html() in several threads at once (one report per request) draws each SVG
    inside matplotlib.rc_context, which sets the process-wide rcParams and puts back what it
    found on leaving: a thread that entered while another was inside found the report's
    settings and put them back for good (the user's matplotlib then wrote SVG text as text, with
    a fixed hash salt), and a thread that drew after another had left drew its text as paths."""
    matplotlib = pytest.importorskip("matplotlib")
    from logloss.report import plots

    keys = ("svg.fonttype", "svg.hashsalt")
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "path")
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", None)
    rc_context = matplotlib.rc_context

    class SlowContext:  # the settings held a while: the threads' draws overlap
        def __init__(self, *args, **kwargs):
            self._context = rc_context(*args, **kwargs)

        def __enter__(self):
            self._context.__enter__()
            time.sleep(0.05)

        def __exit__(self, *exc):
            return self._context.__exit__(*exc)

    monkeypatch.setattr(matplotlib, "rc_context", SlowContext)
    figures = []
    for i in range(4):
        figure = plots.new_figure(3, 2)
        figure.add_subplot().set_title(f"title{i}")
        figures.append(figure)
    start = threading.Barrier(len(figures))
    svgs: dict = {}

    def draw(i):
        start.wait(5)
        svgs[i] = plots.to_svg(figures[i])

    workers = [threading.Thread(target=draw, args=(i,)) for i in range(len(figures))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert {key: matplotlib.rcParams[key] for key in keys} == {"svg.fonttype": "path",
                                                               "svg.hashsalt": None}
    for i, svg in svgs.items():  # svg.fonttype "none": each title is text in its SVG
        assert f">title{i}</text>" in svg
    assert len(svgs) == len(figures)


# -- a fork while another thread changes a state -----------------------------------------------


def _fork():
    import warnings

    with warnings.catch_warnings():  # the hazard under test (Python 3.12+, JAX's hook warn of it)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        return os.fork()


def _wait_child(pid, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {seconds} s")
        time.sleep(0.02)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("call", ["update", "result", "to_dict"])
def test_a_state_forked_while_another_thread_adds_to_it_refuses_in_the_child(monkeypatch, call):
    """A process that forks while one of its threads is adding a batch to a state gets, in the
    child, the state half changed and that thread gone. The child must neither wait for ever on
    the state's lock (held by the thread that is gone) nor report the half-added batch as
    complete: the state refuses, as after an interrupted call."""
    (y1, p1), (y2, p2) = _batches(count=2, n=1 << 14)
    state = DiagnosticsState().update(y1, p1)
    inside, release = threading.Event(), threading.Event()
    add_rows, update = DiagnosticsState._add_rows, chunked.diagnostics_update

    def held(function):
        def run(*args, **kwargs):  # the adding thread stops half way until the fork is done
            inside.set()
            release.wait(10)
            return function(*args, **kwargs)
        return run

    monkeypatch.setattr(DiagnosticsState, "_add_rows", held(add_rows))
    monkeypatch.setattr(chunked, "diagnostics_update", held(update))
    adder = threading.Thread(target=state.update, args=(y2, p2), daemon=True)
    adder.start()
    assert inside.wait(10)
    pid = _fork()
    if pid == 0:  # the child: an exit code, never back into pytest
        code = 1
        try:
            getattr(state, call)(*((y1, p1) if call == "update" else ()))
            code = 2  # figures of a half-added batch
        except RuntimeError as error:
            code = 0 if "incomplete" in str(error) else 3
        finally:
            os._exit(code)
    release.set()
    adder.join(10)
    assert _wait_child(pid) == 0
    # the parent's state is whole: the two batches
    y, p = np.concatenate([y1, y2]), np.concatenate([p1, p2])
    assert _only_model(state.result())["log_loss"] == pytest.approx(_reference_log_loss(y, p),
                                                                    rel=1e-12)


# -- the command's ends: a disk that fills up, a closed pipe, Ctrl-C -----------------------------


def _parquet(path, rows: int = 1000, seed: int = 3):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    p = rng.uniform(0.01, 0.99, rows)
    pq.write_table(pa.table({"label": y, "pred": p}), path, row_group_size=max(rows // 20, 1))
    return y, p


def _command(args, *, unbuffered=False, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", "logloss", *args], env=env, **kwargs)


def _file_size_limit(limit: int):
    def limit_it():  # writes past `limit` bytes fail with EFBIG (a disk that is full)
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_it


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("args, limit", [
    (["report", "{file}", "--format", "json"], 20000),
    (["report", "{file}"], 20000),
    (["score", "{file}", "--format", "json"], 300),
])
def test_standard_output_cut_short_by_a_full_disk_fails(tmp_path, args, limit, unbuffered):
    """`logloss report FILE > out.html` on a disk that fills up part way must exit 3 with a
    message, never 0 with a cut-off report. Under python -u or PYTHONUNBUFFERED=1 (set in many
    container images) the text layer wrote straight to the file and dropped what a short write
    left out: the report ended with exit 0 and no word."""
    _parquet(tmp_path / "x.parquet")
    argv = [a.format(file=tmp_path / "x.parquet") for a in args] + ["--quiet"]
    with open(tmp_path / "out", "wb") as out:
        child = _command(argv, unbuffered=unbuffered, stdout=out, stderr=subprocess.PIPE,
                         preexec_fn=_file_size_limit(limit))
        _, err = child.communicate(timeout=60)
    assert child.returncode == 3, err.decode()
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "output error" in lines[0] and "incomplete" in lines[0], lines
    assert (tmp_path / "out").stat().st_size == limit


INTERRUPTED = "logloss: interrupted; no result is reported."


def _interrupt(child, ready, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not ready():
        assert child.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "the command never got ready"
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("the command hung after Ctrl-C")
    return err.decode()


def _restore_sigint():  # a child of a process that ignores SIGINT would ignore it too
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/PID/maps")
@pytest.mark.parametrize("args", [["report", "-", "-o", "{out}.html"],
                                  ["score", "-", "-o", "{out}.json"]])
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path, args):
    """Ctrl-C while the command imports its libraries (half a second, seconds on a busy
    machine) printed a 15-line traceback from inside NumPy's import: the command's own line
    and exit code 130 are printed only once `entrypoint` runs."""
    argv = [a.format(out=tmp_path / "out") for a in args]
    child = _command(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, preexec_fn=_restore_sigint)

    def numpy_loading():  # logloss is importing NumPy: past _command, within the imports
        with open(f"/proc/{child.pid}/maps") as maps:
            return "_multiarray_umath" in maps.read()

    err = _interrupt(child, numpy_loading)
    child.stdin.close()
    assert child.returncode == 130, err
    assert err.splitlines() == [INTERRUPTED]
    assert os.listdir(tmp_path) == []


def _pipe_drained(pipe):
    import fcntl
    import struct
    import termios

    def drained():
        waiting = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, struct.pack("i", 0))
        return struct.unpack("i", waiting)[0] == 0
    return drained


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")
@pytest.mark.parametrize("args", [["report", "-", "-o", "{out}.html"],
                                  ["report", "-", "--format", "json", "-o", "{out}.json"],
                                  ["score", "-", "--by", "g", "-o", "{out}.json"]])
def test_ctrl_c_while_reading_leaves_no_result(tmp_path, args):
    """Ctrl-C while the rows stream in (and the report's prefetch thread imports matplotlib):
    exit 130 with one line, promptly, and no --output file, whole or partial."""
    argv = [a.format(out=tmp_path / "out") for a in args]
    child = _command(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, preexec_fn=_restore_sigint)
    child.stdin.write(b"label,pred,g\n" + b"1,0.9,a\n0,0.2,b\n" * 2000)
    child.stdin.flush()
    err = _interrupt(child, _pipe_drained(child.stdin))  # the rows were taken: it is reading
    child.stdin.close()
    assert child.returncode == 130, err
    assert err.splitlines() == [INTERRUPTED]
    assert os.listdir(tmp_path) == []


# -- many small files ----------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
@pytest.mark.parametrize("command", ["score", "report"])
def test_a_directory_of_many_small_parquet_files_keeps_few_open(tmp_path, command):
    """A Spark output directory holds thousands of part files. The Parquet reader's threads each
    kept every file they had read open until the end: past the open-file limit (1024 by
    default on many systems) the run failed, calling a good file "truncated or corrupt"."""
    import json

    folder = tmp_path / "parts"
    folder.mkdir()
    ys, ps = [], []
    for i in range(200):
        y, p = _parquet(folder / f"part-{i:05d}.parquet", rows=5, seed=i)
        ys.append(y)
        ps.append(p)

    def few_descriptors():
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))

    out = tmp_path / "out.json"
    child = _command([command, str(folder), "--format", "json", "--quiet", "-o", str(out)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     preexec_fn=few_descriptors)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    result = json.loads(out.read_text())
    want = _reference_log_loss(np.concatenate(ys), np.concatenate(ps))
    assert result["log_loss"] == pytest.approx(want, rel=1e-12)  # one model: at the top


# -- cases that held (kept so that they keep holding) ----------------------------------------


@pytest.mark.parametrize("threads", [None, 2])
def test_diagnose_in_several_threads_at_once_gives_each_its_numbers(threads):
    """Separate calls of logloss.diagnose in threads (each its own state, all on the one kernel
    pool when `threads` asks for more than the caller's thread): each gets its own figures."""
    batches = _batches(count=4, n=1 << 15, seed=7)
    want = [logloss.diagnose(y, p) for y, p in batches]
    got: dict = {}
    start = threading.Barrier(len(batches))

    def work(i):
        with logloss.config_context(threads=threads):
            start.wait(5)
            got[i] = [logloss.diagnose(*batches[i]) for _ in range(3)]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    for i, (y, p) in enumerate(batches):
        for diagnosis in got[i]:
            assert diagnosis.log_loss == pytest.approx(_reference_log_loss(y, p), rel=1e-12)
            assert diagnosis.to_dict() == want[i].to_dict()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("args", [["report"], ["report", "--format", "json"], ["score"]])
def test_a_closed_pipe_exits_141_without_a_word(tmp_path, args):
    """`logloss report FILE | head`: the reader is gone before the write. Exit 141, as a shell
    reports a command killed by SIGPIPE, and nothing on standard error (no traceback from the
    interpreter's last flush, none from the prefetch thread)."""
    _parquet(tmp_path / "x.parquet")
    read, write = os.pipe()
    os.close(read)
    try:
        child = _command([*args, str(tmp_path / "x.parquet"), "--quiet"], stdout=write,
                         stderr=subprocess.PIPE)
    finally:
        os.close(write)
    _, err = child.communicate(timeout=60)
    assert (child.returncode, err.decode()) == (141, "")


@pytest.mark.parametrize("damage, code, words", [
    ("value", 1, ["row 1008", "not a probability"]),
    ("page", 1, ["cannot be read completely", "truncated or corrupt"]),
    ("column", 2, ["no column 'nope'"]),
])
def test_a_bad_file_while_the_pictures_import_is_one_line(tmp_path, damage, code, words):
    """A bad value, a corrupt page or a missing column met while the report's prefetch thread
    still imports matplotlib: the run's one message and exit code, no traceback from the thread
    left importing, and no --output file."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    y, p = _parquet(tmp_path / "x.parquet", rows=4000)
    path = tmp_path / "x.parquet"
    if damage == "value":  # row 1008 of 4000, in the third of 20 row groups
        p = p.copy()
        p[1007] = 1.5
        pq.write_table(pa.table({"label": y, "pred": p}), path, row_group_size=200)
    elif damage == "page":  # the prediction pages of row group 10 overwritten, the footer kept
        column = pq.ParquetFile(path).metadata.row_group(10).column(1)
        data = bytearray(path.read_bytes())
        start = column.data_page_offset + 16
        data[start:start + column.total_compressed_size - 32] = b"\xab" * (
            column.total_compressed_size - 32)
        path.write_bytes(bytes(data))
    extra = ["--pred", "nope"] if damage == "column" else []
    child = _command(["report", str(path), "--quiet", "-o", str(tmp_path / "out.html"), *extra],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=60)
    text = err.decode()
    assert child.returncode == code, text
    # one message (pyarrow's own text may hold a line break), and nothing after it
    assert text.startswith("logloss report: ") and text.count("logloss") == 1, text
    assert all(w in text for w in words) and "Traceback" not in text, text
    assert not (tmp_path / "out.html").exists() and out == b""


# -- a bad row while the reader waits for more input -------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("command", [["score"], ["report", "--format", "json"]])
def test_a_bad_row_on_standard_input_still_open_ends_the_run_at_once(command):
    """`slow_query | logloss score -`: a bad row is found while the reader thread waits for
    more of standard input. The run waited 10 s for that reader to give up (it cannot, inside
    a read), as Ctrl-C had until it was told apart; the message and exit 1 now come at once."""
    code = ("import sys; from logloss._cli import sources; sources.CSV_BLOCK_BYTES = 4096; "
            "from logloss._cli.main import main; sys.exit(main(sys.argv[1:]))")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC), LOGLOSS_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", code, *command, "-", "--quiet"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    # a bad first row in 3.5 blocks of 4 KB: the first batch is handed on (one thread reads
    # two blocks ahead) while the reader waits inside a read for the rest of the fourth; the
    # input stays open, as a producer that is still working leaves it
    child.stdin.write(b"label,pred\n1,1.5\n" + b"0,0.25\n" * 2300)
    child.stdin.flush()
    started = time.monotonic()
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
    took = time.monotonic() - started
    _, err = child.communicate()  # closes the pipes
    err = err.decode()
    assert child.returncode == 1, err
    assert "row 1, column 'pred': value 1.5 is not a probability" in err
    assert took < 5, f"the run took {took:.1f} s to end after its error"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_while_the_kernel_pool_works_uses_it_again():
    """The parent's kernel pool is busy on another thread's call when the process forks: the
    child has the pool's bookkeeping but none of its threads. Its own calls on several threads
    (log loss and a diagnostics state) must start a pool of their own, not wait for ever."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 1 << 18).astype(np.int8)
    p = rng.uniform(0.01, 0.99, 1 << 18)
    want = _reference_log_loss(y, p)
    stop = threading.Event()

    def busy():
        with logloss.config_context(threads=4):
            while not stop.is_set():
                logloss.binary_cross_entropy(y, p)

    with logloss.config_context(threads=4):
        logloss.binary_cross_entropy(y, p)  # the pool is started
        worker = threading.Thread(target=busy)
        worker.start()
        try:
            time.sleep(0.05)
            pid = _fork()
            if pid == 0:  # the child: an exit code, never back into pytest
                code = 1
                try:
                    loss = float(logloss.binary_cross_entropy(y, p))
                    state = DiagnosticsState().update(y, p)
                    figures = _only_model(state.result())
                    close = math.isclose
                    code = 0 if close(loss, want, rel_tol=1e-12) and close(
                        figures["log_loss"], want, rel_tol=1e-12) else 2
                finally:
                    os._exit(code)
        finally:
            stop.set()
            worker.join(30)
    assert _wait_child(pid, 30) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["report"], ["score", "--by", "g", "--format", "csv"]])
def test_a_non_blocking_standard_output_gets_the_whole_result(tmp_path, args, unbuffered):
    """Standard output a pipe that the parent set non-blocking (Node's child_process and some
    CI runners share theirs so): when the reader is slower than the result, a write finds the
    pipe full. The report stopped at 64 KB with a traceback (exit 120), and score with exit 3;
    the command waits for room instead, as a blocking pipe would make it."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(9)
    rows = 20000
    pq.write_table(pa.table({"label": rng.integers(0, 2, rows), "pred": rng.uniform(0.1, 0.9, rows),
                             "g": rng.integers(0, 4000, rows)}), tmp_path / "x.parquet")
    read, write = os.pipe()
    os.set_blocking(write, False)  # the open file is shared: the child's stdout is non-blocking
    try:
        child = _command([args[0], str(tmp_path / "x.parquet"), *args[1:], "--quiet"],
                         unbuffered=unbuffered, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    time.sleep(1.0)  # a slow reader: the pipe (64 KB) fills up first
    received = []
    with os.fdopen(read, "rb") as pipe:
        for chunk in iter(lambda: pipe.read(1 << 16), b""):
            received.append(chunk)
    _, err = child.communicate(timeout=60)
    text = b"".join(received).decode()
    assert (child.returncode, err.decode()) == (0, "")
    assert len(text) > 1 << 16  # more than the pipe holds
    if args[0] == "report":
        assert text.rstrip().endswith("</html>")
    else:
        groups = len(set(pq.read_table(tmp_path / "x.parquet").column("g").to_pylist()))
        lines = text.splitlines()  # a header, the groups and the total
        assert len(lines) == 2 + groups and lines[-1].startswith("total,,20000,")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("when", ["message", "last collection"])
def test_a_second_ctrl_c_while_the_run_ends_is_still_exit_130(when):
    """Ctrl-C twice (a user who is sure): the second one came while the first one's line was
    printed or the process was being wound up, escaped the handler, and ended the run with a
    traceback and exit 1 or death by SIGINT. It now ends the process at once with 130."""
    hook = {"message": ("class Err:\n"
                        "    def write(self, text):\n"
                        "        os.kill(os.getpid(), signal.SIGINT)\n"
                        "        real.write(text)\n"
                        "    def flush(self):\n"
                        "        real.flush()\n"
                        "real = sys.stderr\n"
                        "sys.stderr = Err()\n"),
            "last collection": ("import gc\n"
                                "gc.freeze = lambda: os.kill(os.getpid(), signal.SIGINT)\n")}
    code = ("import os, signal, sys\n"
            "import logloss._cli\n"
            "cli = sys.modules['logloss._cli.main']  # the module, not its main()\n"
            "def interrupted(argv=None):\n"
            "    raise KeyboardInterrupt\n"
            "cli.main = interrupted\n" + hook[when] + "cli.entrypoint()\n")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           timeout=60, preexec_fn=_restore_sigint)
    err = child.stderr.decode()
    assert child.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
