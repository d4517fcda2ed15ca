"""The fuzz target runs in CI: atheris for a fixed number of inputs from a fixed random seed
(coverage-guided, seeded with the hostile-file corpus and with every input that once crashed,
kept in tests/fuzz/corpus/), or, where atheris does not install, hypothesis on the same entry
point. The CI run is reproducible so that a failure there is one a developer can replay; the
search for new crashes is the longer run by hand (see tests/fuzz/fuzz_readers.py): put what
it finds in tests/fuzz/corpus/ with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

HERE = Path(__file__).resolve().parent
SRC = str(HERE.parents[1] / "src")
SECONDS = int(os.environ.get("LOGLOSS_FUZZ_SECONDS", "60"))  # a cap; the runs end it first
RUNS = int(os.environ.get("LOGLOSS_FUZZ_RUNS", "6000"))
SEED = int(os.environ.get("LOGLOSS_FUZZ_SEED", "1"))


def _diagnostics_state() -> bytes:
    """A small saved DiagnosticsState (two models, a segment column, an infinite loss)."""
    import numpy as np

    from logloss import DiagnosticsState

    state = DiagnosticsState(k=2, resolution=16).update(
        np.array([1, 0, 1, 0]), {"a": np.array([0.0, 0.2, 0.7, 0.4]), "b": np.full(4, 0.5)},
        by={"g": np.array(["x", "y", "x", "x"])})
    return json.dumps(state.to_dict(), allow_nan=False).encode()


def _seeds(folder: Path) -> None:
    """Seed inputs: the hostile corpus's text files, with a kind byte and an option byte."""
    sys.path.insert(0, str(HERE.parents[1]))
    from tests.cli.test_hostile_files import CASES

    kinds = {"x.csv": 0, "x.tsv": 1, "x.jsonl": 2}
    for i, (_, name, content, *_rest) in enumerate(CASES):
        if name in kinds:  # each file for score alone, and for score beside report
            (folder / f"seed-{i}").write_bytes(bytes([kinds[name], i % 7]) + content)
            (folder / f"seed-report-{i}").write_bytes(bytes([kinds[name], 7 + i % 7]) + content)
    state = b'{"from_logits": false, "pos_weight": null, "label_smoothing": 0.0}'
    (folder / "seed-state").write_bytes(bytes([5, 0]) + state)
    (folder / "seed-diagnostics-state").write_bytes(bytes([5, 7]) + _diagnostics_state())
    for found in (HERE / "corpus").iterdir():
        (folder / f"found-{found.name}").write_bytes(found.read_bytes())


def _rss_limit_mb() -> int:
    """4 GB for the fuzzer's own memory above this process's peak: a child starts with its
    parent's peak RSS as its own (Linux carries it across exec), and libFuzzer reads that peak,
    so after the whole suite (PyTorch, TensorFlow and JAX loaded, over 4 GB) a flat 4096 MB
    limit stopped the run as out of memory before its first input."""
    import resource

    return 4096 + resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def test_atheris_finds_no_crash_in_a_fixed_run(tmp_path):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _seeds(corpus)
    run = subprocess.run(
        [sys.executable, str(HERE / "fuzz_readers.py"), f"-max_total_time={SECONDS}",
         f"-runs={RUNS}", f"-seed={SEED}", f"-rss_limit_mb={_rss_limit_mb()}", "-timeout=20",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 120,
        env={**os.environ, "PYTHONPATH": SRC, "LOGLOSS_DISABLE_NUMBA": "1",
             "PYTHONWARNINGS": "ignore"})
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash", "timeout")))
    assert run.returncode == 0 and not crashes, run.stderr[-4000:]
    assert "Done" in run.stderr or "pulse" in run.stderr or "INITED" in run.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=2, max_size=400))
def test_hypothesis_drives_the_same_entry_point(data):
    sys.path.insert(0, str(HERE))
    from fuzz_readers import one_input

    one_input(data)


@pytest.mark.parametrize("found", sorted(p.name for p in (HERE / "corpus").iterdir()))
def test_an_input_that_once_crashed_passes(found):
    # In a child process, as the fuzzer runs it: the crashes were segmentation faults.
    run = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import fuzz_readers; "
         "fuzz_readers.one_input(open(sys.argv[2], 'rb').read())", str(HERE),
         str(HERE / "corpus" / found)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, "PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0, (run.returncode, run.stderr[-3000:])
