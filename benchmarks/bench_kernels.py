"""Single-thread cost of the compiled C kernels, without the Python-side dispatch, on every CPU path
this machine runs; then int64 against int8 labels, grouped sums, and the first call in a fresh
process (import included).

    PYTHONPATH=src python benchmarks/bench_kernels.py              # 2e6 samples, one thread
    PYTHONPATH=src python benchmarks/bench_kernels.py --path avx2  # one path only

Calls the kernel modules' ``sums`` (behind "mean" and "sum") and ``losses`` (reduction="none")
on the whole range in the calling thread, best of --repeat runs after a warm-up call, and prints
ns per sample; then one bare ``exp`` and one bare ``log`` per sample, the floor under the float64
kernels. bench_reductions.py is the comparison with every peer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from _bytecode import compile_logloss

F32, F64, I8, I64 = 10, 11, 1, 4  # kernels.c dtype codes


def best(f, repeat: int) -> float:
    f()
    result = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        result = min(result, time.perf_counter() - t0)
    return result


FIRST_CALL = """
import time, numpy as np
y = (np.arange({n}) % 3 == 0).astype(np.int64); p = np.linspace(0.01, 0.99, {n})
t0 = time.perf_counter()
import logloss
t1 = time.perf_counter()
logloss.bce(y, p)
t2 = time.perf_counter()
print(f"{{(t1 - t0) * 1e3:.1f}} {{(t2 - t1) * 1e3:.1f}}")
"""


def first_call(n: int) -> None:
    """A fresh interpreter each time (numpy imported before the clock starts): with the bytecode
    cache that pip writes at install, and with none (an empty PYTHONPYCACHEPREFIX each run)."""
    for cached in (True, False):
        runs = []
        for i in range(6):
            env = dict(os.environ)
            if not cached:
                env["PYTHONPYCACHEPREFIX"] = f"/tmp/logloss-bench-pycache-{os.getpid()}-{i}"
            out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(n=n)], capture_output=True,
                                 text=True, check=True, env=env)
            runs.append(tuple(map(float, out.stdout.split())))
        runs = sorted(runs[1:] if cached else runs, key=sum)  # cached: the first run writes the cache
        imp, call = runs[len(runs) // 2]
        what = "bytecode cached" if cached else "no bytecode cache"
        print(f"first call in a fresh process, {n:.0e} samples, int64 labels, {what} (median of {len(runs)}):")
        print(f"  import logloss {imp:.1f} ms + first logloss.bce {call:.1f} ms = {imp + call:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=float, default=2e6)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--path", default="all", help="a CPU path, or all")
    args = parser.parse_args()
    compile_logloss()  # the timed processes read bytecode, as an installed copy does
    from logloss._numpy import kernels as paths

    available = paths.supported_paths()
    if not available:
        print("no compiled kernels were built")
        return
    chosen = available if args.path == "all" else [args.path]
    n = int(args.n)
    rng = np.random.default_rng(0)
    p = np.clip(rng.uniform(0, 1, n), 1e-12, 1 - 1e-12)
    hard = (rng.uniform(0, 1, n) < p).astype(np.float64)
    soft = rng.uniform(0, 1, n)
    z = np.log(p) - np.log1p(-p)
    print(f"N = {n:.0e}, one thread, best of {args.repeat}, ns per sample")
    for name in chosen:
        paths.set_cpu_path(name)
        K = paths.module()
        print(f"\n-- CPU path {name}")
        for dtype, code in ((np.float64, F64), (np.float32, F32)):
            label = np.dtype(dtype).name
            rows = [
                ("sum, hard labels, probabilities", False, hard, p, None),
                ("sum, hard labels, logits", True, hard, z, None),
                ("sum, soft labels, probabilities", False, soft, p, None),
                ("sum, soft labels, logits", True, soft, z, None),
                ("none, hard labels, probabilities", False, hard, p, True),
                ("none, hard labels, logits", True, hard, z, True),
            ]
            for title, logits, y, x, per_element in rows:
                y, x = y.astype(dtype), x.astype(dtype)
                if per_element:
                    out = np.empty_like(x)
                    run = lambda: K.losses(y, code, x, code, out, code, 0, n, logits)  # noqa: E731
                else:
                    # float32 predictions with a float32 result: the kernels' float32 bounds
                    run = lambda: K.sums(y, code, x, code, None, F64, 0, n, logits, code == F32, False)  # noqa: E731
                seconds = best(run, args.repeat)
                print(f"{label:8s} {title:36s} {seconds / n * 1e9:6.2f}")
        for title, y, code in (("int8 labels", hard.astype(np.int8), I8), ("int64 labels", hard.astype(np.int64), I64)):
            seconds = best(lambda: K.sums(y, code, p, F64, None, F64, 0, n, False, False, False), args.repeat)
            print(f"float64  sum, hard labels, probabilities, {title:12s} {seconds / n * 1e9:6.2f}")
        out, negative = np.empty(n), -np.abs(z)
        for title, kind, a in (("exp alone (exp_neg of -|z|)", 4, negative), ("log alone (log_plus of p, 0)", 0, p)):
            seconds = best(lambda: K.vector(kind, a, None, out), args.repeat)
            print(f"float64  {title:36s} {seconds / n * 1e9:6.2f}")
        w = rng.uniform(0, 2, n)
        y8 = hard.astype(np.int8)
        for groups in (50, 1200, 20000):
            codes = rng.integers(0, groups, n).astype(np.int32)
            stats = np.zeros(groups * K.GROUP_FIELDS)
            seconds = best(lambda: K.grouped(y8, I8, p, F64, w, F64, codes, 3, groups, stats, 0, n, False),
                           args.repeat)
            print(f"float64  grouped sums, weighted, {groups:5d} groups  {seconds / n * 1e9:6.2f}")
    paths.set_cpu_path(None)
    print()
    first_call(100_000)


if __name__ == "__main__":
    main()
