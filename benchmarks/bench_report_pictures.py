"""The HTML report's fixed cost: CPU seconds to import what the pictures need, and to draw them.

One command, from the repository root:

    PYTHONPATH=src python benchmarks/bench_report_pictures.py [FILE] [--repeat 9] [--base DIR]

FILE is a Parquet file with a label and a prediction column (the first two columns; default
benchmarks/data/report_100000.parquet, made here if absent). Its DiagnosticsState is computed
once, as `logloss report` computes it. Each run is then a fresh process that imports what
`logloss report`'s prefetch thread imports (on its main thread here, so the CPU time is its
own) and calls Diagnosis.to_html(). With --base DIR (another checkout's root, e.g. an older
commit's src exported with `git archive` and the built kernels copied in), the two take turns
in each repeat, so a load that comes and goes falls on both. Prints medians and ranges of the
import's and the drawing's CPU seconds, and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"

RUN = """
import pickle, sys, time, json
figures, title = pickle.load(open(sys.argv[1], "rb"))
from logloss.report.diagnosis import Diagnosis
d = Diagnosis(figures, title=title)
c0 = time.process_time()
import jinja2, matplotlib.backends.backend_svg, matplotlib.figure
from logloss.report import html, plots
html.template()
c1 = time.process_time()
text = d.to_html()
c2 = time.process_time()
print(json.dumps({"import": c1 - c0, "draw": c2 - c1, "bytes": len(text)}))
"""


def make(path: Path, rows: int = 100_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, rows).astype(np.float32)
    y = (rng.random(rows) < p).astype(np.int8)
    path.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"y": y, "p": p}), path)


def figures_of(path: Path) -> tuple:
    import pyarrow.parquet as pq

    from logloss._diagnostics import DiagnosticsState
    from logloss.report.diagnosis import Diagnosis

    table = pq.read_table(path)
    state = DiagnosticsState()
    for batch in table.to_batches():
        state.update(batch.column(0).to_numpy(), batch.column(1).to_numpy())
    d = Diagnosis.from_state(state)
    return d.figures, d.title


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DATA / "report_100000.parquet")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--base", type=Path, help="another checkout's root to take turns with")
    args = parser.parse_args()
    if not args.file.exists():
        make(args.file)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "figures.pkl"
        state.write_bytes(pickle.dumps(figures_of(args.file)))
        roots = {"base": args.base, "this": ROOT} if args.base else {"this": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in roots}
        print(f"load average {os.getloadavg()}")
        for _ in range(args.repeat):
            for name, root in roots.items():
                env = {**os.environ, "PYTHONPATH": str(root / "src")}
                out = subprocess.run([sys.executable, "-c", RUN, str(state)], env=env,
                                     capture_output=True, text=True, check=True)
                runs[name].append(json.loads(out.stdout))
        for name, values in runs.items():
            parts = []
            for key in ("import", "draw"):
                seconds = [v[key] for v in values]
                parts.append(f"{key} {statistics.median(seconds):.3f} s "
                             f"({min(seconds):.3f}-{max(seconds):.3f})")
            print(f"{name:5s} CPU seconds, median of {len(values)}: " + ", ".join(parts)
                  + f"; {values[0]['bytes']:,} bytes of HTML")
        print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
