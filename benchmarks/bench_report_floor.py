"""The floors under `logloss report`'s time: what reading the file costs alone, and what the
diagnostics kernel costs alone, so that a missed target has its floor explained.

One command, from the repository root:

    PYTHONPATH=src python benchmarks/bench_report_floor.py [--rows 100000000] [--repeat 5]
                                                           [--data DIR]

On DIR/report_{rows}.parquet (made by bench_report.py), median of --repeat runs each, in turns:
  read          the CLI's reader (logloss._cli.score.stream: a reader thread, pyarrow's decoding)
                and the batches' columns as NumPy, nothing computed;
  read+check    the same plus the kernel's one-pass check of every value (what `report` runs on
                every batch before adding it);
  kernel        DiagnosticsState.update on the same int8 / float32 arrays held in memory, in
                batches of the file's row-group size, on the threads setting (all CPUs) and on
                one thread, reported in ns per row;
  score         `logloss score` as bench_report.py runs it, for the ratio.
A report cannot take less than max(read, kernel) (the two run at once on different threads) nor,
on two cores both busy, much less than their sum.
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
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import logloss  # noqa: E402
from logloss._cli.batches import numeric_values  # noqa: E402
from logloss._cli.columns import Options, pick_columns  # noqa: E402
from logloss._cli.score import stream  # noqa: E402
from logloss._cli.sources import resolve  # noqa: E402
from logloss._numpy import chunked  # noqa: E402


def read(path: Path, check: bool) -> float:
    start = time.perf_counter()
    sources = resolve([str(path)])
    columns = pick_columns(sources[0].column_names(), Options(), sources[0].name)
    columns["by"] = []
    for columns, batch, _, _, n in stream(sources, [columns], {}):
        y = numeric_values(batch[columns["label"]], {}, "label")
        p = numeric_values(batch[columns["pred"]], {}, "pred")
        if check:
            found = chunked.diagnostics_kernels(y, [p], None, None)
            kernels, yt, (xt,), wt, _ = found
            assert chunked.diagnostics_check(kernels, (yt, xt, wt, None), y, p, None, None, 0,
                                             from_logits=False)
    return time.perf_counter() - start


def kernel(y: np.ndarray, p: np.ndarray, batch: int, threads: int | None) -> float:
    state = logloss.DiagnosticsState()
    start = time.perf_counter()
    with logloss.config_context(threads=threads):
        for i in range(0, len(y), batch):
            state.update(y[i:i + batch], p[i:i + batch])
        state.result()
    return time.perf_counter() - start


def score(path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "logloss", "score", str(path), "-q", "--format",
                    "json"], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args()
    path = args.data / f"report_{args.rows}.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/bench_report.py --rows {args.rows}")
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    batch = file.metadata.row_group(0).num_rows
    table = file.read(columns=["y", "p"])
    y = table["y"].to_numpy()
    p = table["p"].to_numpy()
    del table
    print(f"{args.rows:,} rows in {path.name}, row groups of {batch:,}, median of {args.repeat}, "
          f"{os.cpu_count()} CPUs, CPU path {chunked.compiled_kernels().PATH}; load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    runs = {"score (CLI, whole run)": lambda: score(path),
            "read": lambda: read(path, False),
            "read+check": lambda: read(path, True),
            "kernel, all threads": lambda: kernel(y, p, batch, None),
            "kernel, one thread": lambda: kernel(y, p, batch, 1)}
    times: dict = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            times[name].append(run())
    print(f"{'step':<26}{'median s':>9}{'range':>14}{'ns/row':>8}")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:<26}{median:>9.2f}{f'{min(values):.2f}-{max(values):.2f}':>14}"
              f"{median * 1e9 / args.rows:>8.2f}")
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
