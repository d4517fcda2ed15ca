"""Benchmark `logloss score` against DuckDB, Polars (and optionally pandas + scikit-learn).

One command, from the repository root:

    PYTHONPATH=src python benchmarks/bench_score.py [--repeat 3] [--sklearn] [--rows 100000000]
    PYTHONPATH=src python benchmarks/bench_score.py --rows 20000000 --groups 50   # --by with weights
    PYTHONPATH=src python benchmarks/bench_score.py --rows 10000000 --users 100000  # --by user (text)
    PYTHONPATH=src python benchmarks/bench_score.py --rows 20000000 --formats  # + .csv.gz, quoted, .jsonl
    ... --data DIR   # read (or generate) the data files there instead of benchmarks/data

Generates benchmarks/data/preds_{rows}.parquet (int8 label, float32 pred) and a CSV of a fifth
of the rows if absent (with --formats, the CSV's rows also gzip-compressed, with every field
quoted, and as JSON Lines), then runs each tool in its own subprocess (so its peak RSS is its own),
in the same run, interleaved, and prints the median seconds of --repeat runs, peak RSS, the
median of each repeat's ratio to the fastest peer of that repeat, and the relative error against
an exact reference: math.fsum of per-row -log terms computed in float64 with np.log /
np.log1p, chunk by chunk (independent of logloss's own code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from _bytecode import compile_logloss

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ROOT = HERE.parent

PEERS = {
    "duckdb": """
import duckdb
con = duckdb.connect()
con.execute("PRAGMA threads=2")
con.execute("SET enable_progress_bar=false")
print(con.execute("SELECT avg(-(y*ln(p)+(1-y)*ln(1-p))) FROM {reader}('{path}')").fetchone()[0])
""",
    "polars": """
import polars as pl
lf = pl.{scan}('{path}')
y, p = pl.col('y'), pl.col('p')
print(lf.select((-(y * p.log() + (1 - y) * (1 - p).log())).mean()).collect().item())
""",
    "duckdb-groups": """
import duckdb
con = duckdb.connect()
con.execute("PRAGMA threads=2")
con.execute("SET enable_progress_bar=false")
rows = con.execute("SELECT seg, sum(w * l) / sum(w) FROM (SELECT seg, w, -(y*ln(p)+(1-y)*ln(1-p)) AS l "
                   "FROM read_parquet('{path}')) GROUP BY GROUPING SETS ((seg), ())").fetchall()
print(len(rows) - 1, [v for k, v in rows if k is None][0])
""",
    "polars-groups": """
import polars as pl
lf = pl.scan_parquet('{path}')
y, p, w = pl.col('y'), pl.col('p').cast(pl.Float64), pl.col('w').cast(pl.Float64)
lf = lf.with_columns(l=-(y * p.log() + (1 - y) * (1 - p).log()) * w)
groups, overall = pl.collect_all([lf.group_by('seg').agg(pl.col('l').sum() / pl.col('w').sum()),
                                  lf.select(pl.col('l').sum() / pl.col('w').sum())])
print(groups.height, overall.item())
""",
    "duckdb-users": """
import duckdb
con = duckdb.connect()
con.execute("PRAGMA threads=2")
con.execute("SET enable_progress_bar=false")
rows = con.execute("SELECT user, avg(-(y*ln(p)+(1-y)*ln(1-p))) FROM read_parquet('{path}') "
                   "GROUP BY GROUPING SETS ((user), ())").fetchall()
print(len(rows) - 1, [v for k, v in rows if k is None][0])
""",
    "polars-users": """
import polars as pl
lf = pl.scan_parquet('{path}')
y, p = pl.col('y'), pl.col('p').cast(pl.Float64)
lf = lf.with_columns(l=-(y * p.log() + (1 - y) * (1 - p).log()))
groups, overall = pl.collect_all([lf.group_by('user').agg(pl.col('l').mean()),
                                  lf.select(pl.col('l').mean())])
print(groups.height, overall.item())
""",
    "sklearn": """
import pandas as pd
from sklearn.metrics import log_loss
df = pd.{read}('{path}')
print(log_loss(df['y'], df['p']))
""",
}

# The floor of a --by run: reading the file's columns through the CLI's own reader and numbering
# the groups, nothing summed (logloss's time minus this is the scoring's).
FLOOR = """
import sys
from logloss._cli.groups import GroupEncoder
from logloss._cli.score import stream
from logloss._cli.sources import resolve
columns = {{"label": "y", "pred": "p", "weight": {weight!r}, "by": [{by!r}]}}
encoder = GroupEncoder(columns["by"])
for _, batch, _, _, _ in stream(resolve([{path!r}]), [columns], {{}}):
    codes = encoder.encode([batch[c] for c in columns["by"]])
print(encoder.count, 0.0)
"""

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(repr((run.returncode, seconds, rss, run.stdout, run.stderr)))
"""


def generate_users(rows: int, users: int) -> Path:
    """y (int8), p (float32), user (text, ``users`` distinct values in random order)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"users_{rows}_{users}.parquet"  # not bench_report's segments_ROWS.parquet
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating {path} ...", file=sys.stderr, flush=True)
    rng = np.random.default_rng(77)
    names = pa.array([f"user-{i:07d}" for i in rng.permutation(users)])
    schema = pa.schema([("y", pa.int8()), ("p", pa.float32()), ("user", pa.string())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 1 << 22):
            m = min(1 << 22, rows - start)
            p = np.clip(rng.beta(0.6, 6.0, m), 1e-7, 1 - 1e-7).astype(np.float32)
            y = (rng.random(m) < p).astype(np.int8)
            user = names.take(pa.array(rng.integers(0, users, m)))
            writer.write_batch(pa.record_batch([pa.array(y), pa.array(p), user], schema=schema),
                               row_group_size=1 << 20)
    tmp.rename(path)
    return path


def generate(rows: int) -> tuple[Path, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    parquet = DATA / f"preds_{rows}.parquet"
    csv_rows = rows // 5
    csv = DATA / f"preds_{csv_rows}.csv"
    import pyarrow as pa
    import pyarrow.parquet as pq

    def chunks(n):
        rng = np.random.default_rng(12345)
        step = 1 << 22
        for start in range(0, n, step):
            m = min(step, n - start)
            # click-through-like predictions: mostly small, in (0, 1)
            p = rng.beta(0.6, 6.0, m).astype(np.float32)
            p = np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7))
            y = (rng.random(m) < p).astype(np.int8)
            yield pa.record_batch([pa.array(y), pa.array(p)], names=["y", "p"])

    if not parquet.exists():
        print(f"generating {parquet} ...", file=sys.stderr, flush=True)
        tmp = parquet.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, pa.schema([("y", pa.int8()), ("p", pa.float32())])) as writer:
            for batch in chunks(rows):
                writer.write_batch(batch, row_group_size=1 << 20)
        tmp.rename(parquet)
    if not csv.exists():
        print(f"generating {csv} ...", file=sys.stderr, flush=True)
        import pyarrow.csv as pcsv

        tmp = csv.with_suffix(".tmp")
        with pcsv.CSVWriter(tmp, pa.schema([("y", pa.int8()), ("p", pa.float32())])) as writer:
            for batch in chunks(csv_rows):
                writer.write_batch(batch)
        tmp.rename(csv)
    return parquet, csv


def generate_formats(csv: Path) -> list[Path]:
    """The CSV's rows as .csv.gz, with every field quoted (the quoting check's worst case) and as
    JSON Lines, written from the CSV if absent."""
    import gzip

    import pyarrow.csv as pcsv

    stem = csv.with_suffix("")
    paths = [stem.with_suffix(".csv.gz"), Path(f"{stem}_quoted.csv"), stem.with_suffix(".jsonl")]
    table = None
    for path in paths:
        if path.exists():
            continue
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        table = table if table is not None else pcsv.read_csv(csv)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".gz":
            with open(csv, "rb") as source, gzip.open(tmp, "wb", compresslevel=6) as sink:
                while block := source.read(1 << 24):
                    sink.write(block)
        elif path.suffix == ".csv":
            pcsv.write_csv(table, tmp, pcsv.WriteOptions(quoting_style="all_valid"))
        else:
            with open(tmp, "w") as sink:
                for batch in table.to_batches(1 << 20):
                    y = batch.column("y").to_numpy()
                    p = batch.column("p").to_numpy().astype(np.float64)  # float32 values, exact
                    sink.writelines(f'{{"y": {a}, "p": {b!r}}}\n' for a, b in zip(y.tolist(), p.tolist()))
        tmp.rename(path)
    return paths


def generate_groups(rows: int, groups: int) -> Path:
    """y (int8), p (float32), w (float32 weights), seg (int32 group number, ``groups`` of them)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"preds_{rows}_g{groups}.parquet"
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating {path} ...", file=sys.stderr, flush=True)
    rng = np.random.default_rng(2024)
    schema = pa.schema([("y", pa.int8()), ("p", pa.float32()), ("w", pa.float32()), ("seg", pa.int32())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 1 << 22):
            m = min(1 << 22, rows - start)
            p = np.clip(rng.beta(0.6, 6.0, m), 1e-7, 1 - 1e-7).astype(np.float32)
            y = (rng.random(m) < p).astype(np.int8)
            w = rng.uniform(0.5, 2.0, m).astype(np.float32)
            seg = rng.integers(0, groups, m).astype(np.int32)
            writer.write_batch(pa.record_batch([pa.array(y), pa.array(p), pa.array(w), pa.array(seg)],
                                               schema=schema), row_group_size=1 << 20)
    tmp.rename(path)
    return path


def reference(path: Path, weighted: bool = False) -> float:
    """Exact-ish: fsum of float64 per-row terms (each within 1 ulp), over all rows."""
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        batches = pq.ParquetFile(path).iter_batches(batch_size=1 << 22)
    elif path.suffix == ".jsonl":
        batches = pjson.read_json(path).to_batches()
    else:
        batches = pcsv.open_csv(path)  # gzip from the name
    partial, n = [], []
    for batch in batches:
        y = batch.column("y").to_numpy(zero_copy_only=False)
        p = batch.column("p").to_numpy(zero_copy_only=False).astype(np.float64)
        w = batch.column("w").to_numpy().astype(np.float64) if weighted else np.ones(len(p))
        terms = np.where(y == 1, -np.log(p), -np.log1p(-p)) * w  # w * term: exact for float32 w
        partial.append(math.fsum(terms))
        n.append(math.fsum(w))
    return math.fsum(partial) / math.fsum(n)


def command(tool: str, path: Path) -> list[str]:
    if tool == "logloss":
        return [sys.executable, "-m", "logloss", "score", str(path), "--format", "json", "--quiet"]
    if tool == "logloss-groups":
        return [sys.executable, "-m", "logloss", "score", str(path), "--weight", "w", "--by", "seg",
                "--format", "json", "--quiet"]
    if tool == "logloss-users":
        return [sys.executable, "-m", "logloss", "score", str(path), "--by", "user",
                "--format", "json", "--quiet"]
    if tool == "read+encode":  # the floor of the --by runs
        by, weight = ("user", None) if path.name.startswith("users") else ("seg", "w")
        return [sys.executable, "-c", FLOOR.format(path=str(path), by=by, weight=weight)]
    kind = {".parquet": "parquet", ".jsonl": "jsonl"}.get(path.suffix, "csv")
    code = PEERS[tool].format(
        path=path,
        reader={"parquet": "read_parquet", "jsonl": "read_ndjson"}.get(kind, "read_csv"),
        scan={"parquet": "scan_parquet", "jsonl": "scan_ndjson"}.get(kind, "scan_csv"),
        read={"parquet": "read_parquet", "jsonl": "read_ndjson"}.get(kind, "read_csv"),
    )
    return [sys.executable, "-c", code]


def measure(tool: str, path: Path) -> tuple[float, float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", MEASURE, *command(tool, path)],
                         capture_output=True, text=True, env=env, check=True).stdout
    code, seconds, rss, stdout, stderr = eval(out)  # noqa: S307 - our own repr
    if code != 0:
        raise RuntimeError(f"{tool} failed: {stderr}")
    value = json.loads(stdout)["log_loss"] if tool.startswith("logloss") else float(stdout.split()[-1])
    return seconds, rss, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sklearn", action="store_true", help="also pandas + scikit-learn "
                        "(about 6 GB of memory and 20 s on the full file)")
    parser.add_argument("--only", choices=["parquet", "csv"])
    parser.add_argument("--formats", action="store_true", help="also the CSV's rows gzip-compressed, "
                        "with every field quoted and as JSON Lines (after --only's files)")
    parser.add_argument("--groups", type=int, help="score --weight w --by seg with this many groups "
                        "(Parquet), against DuckDB's and Polars' grouped queries")
    parser.add_argument("--users", type=int, help="score --by user, a text column with this many "
                        "distinct values (Parquet, users_ROWS_USERS.parquet), against the grouped queries")
    parser.add_argument("--data", type=Path, help="folder of the data files (default benchmarks/data)")
    args = parser.parse_args()
    compile_logloss()  # the timed processes read bytecode, as an installed copy does
    if args.data is not None:
        global DATA
        DATA = args.data
    print(f"machine: {os.cpu_count()} cores, {_cpu()}; python {sys.version.split()[0]}")
    if args.groups:
        paths = [generate_groups(args.rows, args.groups)]
        tools = ["logloss-groups", "duckdb-groups", "polars-groups", "read+encode"]
    elif args.users:
        paths = [generate_users(args.rows, args.users)]
        tools = ["logloss-users", "duckdb-users", "polars-users", "read+encode"]
    else:
        parquet, csv = generate(args.rows)
        paths = [p for p in (parquet, csv) if args.only in (None, p.suffix.lstrip("."))]
        if args.formats:
            paths += generate_formats(csv)
        tools = ["logloss", "duckdb", "polars"] + (["sklearn"] if args.sklearn else [])
    all_tools = tools
    for path in paths:
        tools = [t for t in all_tools if not (t == "sklearn" and path.suffix == ".jsonl")]
        exact = reference(path, weighted=bool(args.groups))
        size = path.stat().st_size / 1e6
        print(f"\n{path.name} ({size:.0f} MB), exact log loss {exact!r}")
        runs: dict = {tool: [] for tool in tools}
        ratios: dict = {tool: [] for tool in tools}
        for _ in range(args.repeat):  # interleaved, so load changes hit every tool alike
            this = {tool: measure(tool, path) for tool in tools}
            fastest_peer = min(v[0] for k, v in this.items()
                               if not k.startswith("logloss") and k != "read+encode")
            for tool, result in this.items():
                runs[tool].append(result)
                ratios[tool].append(result[0] / fastest_peer)
        print(f"{'tool':14} {'seconds':>8} {'peak RSS MB':>12} {'vs fastest peer':>16} "
              f"{'relative error':>15}   (medians of {args.repeat}; ratios per repeat)")
        for tool in tools:
            seconds = statistics.median(r[0] for r in runs[tool])
            rss = max(r[1] for r in runs[tool])
            error = abs(runs[tool][0][2] - exact) / exact if tool != "read+encode" else math.nan
            print(f"{tool:14} {seconds:8.2f} {rss:12.0f} {statistics.median(ratios[tool]):15.2f}x "
                  f"{error:15.1e}   " + " ".join(f"{r:.2f}" for r in ratios[tool]))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
