"""Benchmark `logloss report` against `logloss score` on the same Parquet file, and
`logloss.diagnose` on rows in memory.

One command, from the repository root:

    PYTHONPATH=src python benchmarks/bench_report.py [--rows 100000000] [--memory-rows 10000000]
                                                     [--repeat 3]

Generates benchmarks/data/report_{rows}.parquet (int8 label, float32 pred, a 100-value int32
segment column) if absent. Each CLI run is its own subprocess (so its peak RSS is its own):
`score`, `report --format json` (the streamed state and its figures), `report --by segment`
and `report` to HTML (adds the pictures). Prints seconds (best of --repeat), peak RSS and the
ratio to `score`. Then times `diagnose` (exact, in memory) on --memory-rows rows, best of
--repeat, in this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ROOT = HERE.parent

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(repr((run.returncode, seconds, rss, run.stderr[-500:])))
"""


def generate(rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(exist_ok=True)
    path = DATA / f"report_{rows}.parquet"
    if path.exists():
        return path
    print(f"generating {path} ...", file=sys.stderr, flush=True)
    rng = np.random.default_rng(0)
    schema = pa.schema([("y", pa.int8()), ("p", pa.float32()), ("segment", pa.int32())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 1 << 22):
            n = min(1 << 22, rows - start)
            p = rng.beta(2, 5, n).astype(np.float32)
            y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int8)
            segment = rng.integers(0, 100, n).astype(np.int32)
            batch = pa.record_batch([y, p, segment], schema=schema)
            writer.write_batch(batch, row_group_size=1 << 20)
    tmp.rename(path)
    return path


def measure(argv: list[str], repeat: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    best, rss = float("inf"), 0.0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True,
                             text=True, env=env, check=True).stdout
        code, seconds, peak, err = eval(out)  # noqa: S307 - our own repr
        if code != 0:
            raise SystemExit(f"{argv} failed ({code}): {err}")
        best, rss = min(best, seconds), max(rss, peak)
    return best, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = generate(args.rows)
    cli = [sys.executable, "-m", "logloss"]
    runs = {
        "score": cli + ["score", str(path), "-q", "--format", "json"],
        "report --format json": cli + ["report", str(path), "-q", "--format", "json"],
        "report --by segment --format json": cli + ["report", str(path), "-q", "--by", "segment",
                                                    "--format", "json"],
        "report (HTML)": cli + ["report", str(path), "-q", "-o", os.devnull],
    }
    print(f"{args.rows:,} rows in {path.name} ({path.stat().st_size / 1e6:.0f} MB), "
          f"best of {args.repeat}, {os.cpu_count()} CPUs")
    results = {name: measure(argv, args.repeat) for name, argv in runs.items()}
    base = results["score"][0]
    print(f"{'command':<36}{'seconds':>9}{'peak RSS MB':>13}{'x score':>9}")
    for name, (seconds, rss) in results.items():
        print(f"{name:<36}{seconds:>9.2f}{rss:>13.0f}{seconds / base:>9.2f}")

    sys.path.insert(0, str(ROOT / "src"))
    import logloss

    rng = np.random.default_rng(1)
    n = args.memory_rows
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int8)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        logloss.diagnose(y, p)
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    logloss.binary_cross_entropy(y, p)
    bce = time.perf_counter() - start
    print(f"diagnose, {n:,} float64 rows in memory (exact): {best:.2f} s "
          f"(binary_cross_entropy on them: {bce:.2f} s)")


if __name__ == "__main__":
    main()
