"""Start-up cost of `logloss score` on a tiny file, against DuckDB's `select 1`, same run.

    PYTHONPATH=src python benchmarks/bench_startup.py [--repeat 15]

Each tool runs in a fresh subprocess (bytecode cached, files in the page cache after a warm-up
run); the figure is the process's CPU time (user + system, from os.wait4) and its wall time,
median of --repeat runs, interleaved so that a noisy neighbour hits every tool alike. It also
lists what `logloss score` imports beyond `import logloss` (python -X importtime), so an import
that the run does not use shows up here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import compile_logloss

ROOT = Path(__file__).resolve().parents[1]

TOOLS = {
    "logloss score": ["-m", "logloss", "score", "{csv}", "--quiet"],  # the console script if installed
    "duckdb select 1": ["-c", "import duckdb; duckdb.sql('select 1').fetchall()"],
    "python -c pass": ["-c", "pass"],
}


def run(argv: list[str], env: dict) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed with status {status}")
    return usage.ru_utime + usage.ru_stime, wall


def slowest_imports(csv: str, env: dict, top: int = 12) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "logloss", "score", csv, "--quiet"],
                         capture_output=True, text=True, env=env, check=True)
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if name.strip() and not name.startswith("  "):  # top-level imports only
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    compile_logloss()  # the timed processes read bytecode, as an installed copy does
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as folder:
        csv = str(Path(folder) / "two.csv")
        Path(csv).write_text("label,pred\n1,0.9\n0,0.2\n")
        commands = {name: [sys.executable] + [a.format(csv=csv) for a in argv] for name, argv in TOOLS.items()}
        script = Path(sys.executable).with_name("logloss")
        if script.exists():  # what a user types: no runpy, as installed (PYTHONPATH still wins)
            commands["logloss score"] = [str(script), "score", csv, "--quiet"]
        for argv in commands.values():
            run(argv, env)  # warm-up: bytecode and page cache
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                times[name].append(run(argv, env))
        print(f"median of {args.repeat} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(f"{'command':<18} {'CPU s':>7} {'wall s':>7} {'CPU vs duckdb':>14}")
        base = statistics.median(c for c, _ in times["duckdb select 1"])
        for name, samples in times.items():
            cpu = statistics.median(c for c, _ in samples)
            wall = statistics.median(w for _, w in samples)
            print(f"{name:<18} {cpu:7.3f} {wall:7.3f} {cpu / base:13.2f}x")
        print("\nslowest top-level imports of `logloss score` (cumulative µs):")
        for micros, name in slowest_imports(csv, env):
            print(f"  {micros:>8}  {name}")


if __name__ == "__main__":
    main()
