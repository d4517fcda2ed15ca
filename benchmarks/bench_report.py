"""Benchmark `logloss report` against `logloss score` on the same Parquet file, and
`logloss.diagnose` on rows in memory.

One command, from the repository root:

    PYTHONPATH=src python benchmarks/bench_report.py [--rows 100000000] [--memory-rows 10000000]
        [--segment-rows 10000000] [--repeat 5] [--data DIR]

Generates DIR/report_{rows}.parquet (int8 label, float32 pred, a 100-value int32 segment column)
and DIR/segments_{segment-rows}.parquet (the same with 100,000 segments) if absent; DIR is
benchmarks/data unless --data names another. Each CLI run is its own subprocess (so its peak RSS
is its own), and the commands take turns within each repeat, so a load that comes and goes
falls on all of them: `score`, `report --format json` (the streamed state and its figures),
`report --by segment`, `report` to HTML (adds the pictures) and, on the second file, `report --by
segment` with 10^5 segments. Prints the median seconds of --repeat runs, their range, peak RSS
and the ratio of medians to `score`'s. Then times `diagnose` (exact, in memory) on --memory-rows
rows, alone, with `by=` 100 int32 segments or 50 text segments (Python objects, as pandas gives
them, and NumPy strings), with weights and from logits, median of --repeat, in this process,
beside Polars grouping the log loss alone by the same columns. The load average is printed
before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _bytecode import compile_logloss

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


def generate(rows: int, data: Path = DATA, segments: int = 100, name: str = "report") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data.mkdir(exist_ok=True)
    path = data / f"{name}_{rows}.parquet"
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
            segment = rng.integers(0, segments, n).astype(np.int32)
            batch = pa.record_batch([y, p, segment], schema=schema)
            writer.write_batch(batch, row_group_size=1 << 20)
    tmp.rename(path)
    return path


def measure(argv: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True,
                         text=True, env=env, check=True).stdout
    code, seconds, peak, err = eval(out)  # noqa: S307 - our own repr
    if code != 0:
        raise SystemExit(f"{argv} failed ({code}): {err}")
    return seconds, peak


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--segment-rows", type=int, default=10_000_000,
                        help="rows of the 100,000-segment file (0: skip it)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-only", action="store_true", help="only the in-memory part")
    parser.add_argument("--data", type=Path, default=DATA, help="where the Parquet files are "
                        "(generated there if absent)")
    args = parser.parse_args()
    compile_logloss()  # the timed processes read bytecode, as an installed copy does
    if not args.memory_only:
        files(args)
    in_memory(args)


def files(args) -> None:
    path = generate(args.rows, args.data)
    cli = [sys.executable, "-m", "logloss"]
    runs = {
        "score": cli + ["score", str(path), "-q", "--format", "json"],
        "report --format json": cli + ["report", str(path), "-q", "--format", "json"],
        "report --by segment --format json": cli + ["report", str(path), "-q", "--by", "segment",
                                                    "--format", "json"],
        "report (HTML)": cli + ["report", str(path), "-q", "-o", os.devnull],
    }
    if args.segment_rows:
        many = generate(args.segment_rows, args.data, segments=100_000, name="segments")
        runs["10^5 segments: report --by (JSON)"] = cli + [
            "report", str(many), "-q", "--by", "segment", "--format", "json"]
        runs["10^5 segments: score --by"] = cli + [
            "score", str(many), "-q", "--by", "segment", "--format", "json"]
    print(f"{args.rows:,} rows in {path.name} ({path.stat().st_size / 1e6:.0f} MB), "
          f"median of {args.repeat}, {os.cpu_count()} CPUs; {load()}")
    times: dict = {name: [] for name in runs}
    peaks: dict = dict.fromkeys(runs, 0.0)
    for _ in range(args.repeat):  # the commands take turns: a passing load falls on all
        for name, argv in runs.items():
            seconds, peak = measure(argv)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    base = float(np.median(times["score"]))
    print(f"{'command':<36}{'median s':>9}{'range':>14}{'peak RSS MB':>13}{'x score':>9}")
    for name, values in times.items():
        median = float(np.median(values))
        spread = f"{min(values):.2f}-{max(values):.2f}"
        ratio = f"{median / base:>9.2f}" if not name.startswith("10^5") else " " * 9
        print(f"{name:<36}{median:>9.2f}{spread:>14}{peaks[name]:>13.0f}{ratio}")
    print(load())


def in_memory(args) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import logloss

    rng = np.random.default_rng(1)
    n = args.memory_rows
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int8)
    segments = rng.integers(0, 100, n).astype(np.int32)
    countries = np.array([f"country {i:02d}" for i in range(50)], dtype=object)[segments % 50]
    country_text = countries.astype(str)  # converted here, not in the timed call

    weights = rng.random(n)
    logits = np.log(p) - np.log1p(-p)

    def timed(call) -> list[float]:
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            call()
            runs.append(time.perf_counter() - start)
        return runs

    start = time.perf_counter()
    logloss.binary_cross_entropy(y, p)
    bce = time.perf_counter() - start
    print(f"in memory, {n:,} float64 rows, {logloss.get_config()}, median of {args.repeat} "
          f"(binary_cross_entropy on them: {bce:.2f} s); {load()}")
    calls = {
        "diagnose (exact)": lambda: logloss.diagnose(y, p),
        "diagnose by= 100 int32 segments": lambda: logloss.diagnose(y, p, by=segments),
        "diagnose by= 50 text segments (objects)": lambda: logloss.diagnose(y, p, by=countries),
        "diagnose by= 50 text segments (NumPy str)": lambda: logloss.diagnose(
            y, p, by=country_text),
        "diagnose, weighted": lambda: logloss.diagnose(y, p, sample_weight=weights),
        "diagnose, from logits": lambda: logloss.diagnose(y, logits, from_logits=True),
    }
    try:
        import polars as pl
    except ImportError:
        pl = None
    if pl is not None:  # a peer for the per-segment part: the log loss alone, grouped
        frame = pl.DataFrame({"y": y, "p": p, "s": segments, "c": country_text})
        loss = -(pl.when(pl.col("y") == 1).then(pl.col("p").log())
                 .otherwise((1 - pl.col("p")).log())).mean()
        calls["Polars: log loss by 100 int32 segments"] = lambda: frame.group_by("s").agg(loss)
        calls["Polars: log loss by 50 text segments"] = lambda: frame.group_by("c").agg(loss)
    for name, call in calls.items():
        runs = timed(call)
        print(f"  {name:<42} median {np.median(runs):.2f} s, range "
              f"{min(runs):.2f}-{max(runs):.2f}")
    print(load())

if __name__ == "__main__":
    main()
