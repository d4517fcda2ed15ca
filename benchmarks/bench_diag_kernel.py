"""The diagnostics kernel per row: DiagnosticsState.update on 2**24 rows in batches of 2**20,
beta(2, 5) float32 predictions, int8 labels; plain (no weights), sorted (plain, the rows in
prediction order: neighbours fall in the same histogram cells), weighted (float32 weights) or
logits (float32). Usage: PYTHONPATH=src python benchmarks/bench_diag_kernel.py THREADS
plain|sorted|weighted|logits REPEATS (as /tmp/diagbench.py of session 5, with the two variants)."""
import sys, time, numpy as np, logloss
from logloss import DiagnosticsState
n = 1 << 24
rng = np.random.default_rng(0)
p = rng.beta(2, 5, n).astype(np.float32)
y = (rng.random(n) < p).astype(np.int8)
w = rng.random(n).astype(np.float32) + 0.5
z = np.log(p.astype(np.float64) / (1 - p)).astype(np.float32)
threads = int(sys.argv[1]); mode = sys.argv[2]; reps = int(sys.argv[3])
if mode == "sorted":
    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
B = 1 << 20
x = z if mode == "logits" else p
with logloss.config_context(threads=threads):
    ts = []
    for r in range(reps):
        s = DiagnosticsState(from_logits=(mode == "logits"))
        t = time.perf_counter()
        for a in range(0, n, B):
            if mode == "logits":
                s.update(y[a:a+B], x[a:a+B])
            elif mode == "weighted":
                s.update(y[a:a+B], x[a:a+B], sample_weight=w[a:a+B])
            else:
                s.update(y[a:a+B], x[a:a+B])
        ts.append(time.perf_counter() - t)
    print(f"threads={threads} {mode}: {min(ts)/n*1e9:.2f} ns/row (min), median {sorted(ts)[len(ts)//2]/n*1e9:.2f}")
