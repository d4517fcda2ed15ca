"""A/B of the diagnostics kernel alone: two builds' kernel modules (DIR/src/logloss/_numpy/kernels)
loaded side by side and called directly on the same 2**20 rows (beta(2, 5) float32, int8 labels,
float32 weights or logits), alternated, one thread; the totals, counts, worst-row candidates and
histograms of the two must be bit for bit the same (--no-check: timings only).
usage: bench_diag_ab.py DIR_A DIR_B avx512|avx2|baseline plain|weighted|logits ROUNDS"""
import sys, time, importlib.util, numpy as np
def load(d, path):
    import glob
    f = glob.glob(f"{d}/src/logloss/_numpy/kernels/_kernels_{path}.*.so")[0]
    spec = importlib.util.spec_from_file_location(f"_kernels_{path}", f)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m
A, B = load(sys.argv[1], sys.argv[3]), load(sys.argv[2], sys.argv[3])
mode, rounds = sys.argv[4], int(sys.argv[5])
n = 1 << 20
rng = np.random.default_rng(1)
p = rng.beta(2, 5, n).astype(np.float32)
y = (rng.random(n) < p).astype(np.int8)
w = (rng.random(n) + 0.5).astype(np.float32) if mode == "weighted" else None
x = np.log(p.astype(np.float64) / (1 - p)).astype(np.float32) if mode == "logits" else p
R = 65536
hf, lf = (A.DIAG_HIST, A.DIAG_LOSS) if w is not None else (A.DIAG_HIST_U, A.DIAG_LOSS_U)
def z64(k):
    raw = np.zeros(k + 8); s = (-raw.ctypes.data % 64) // 8; return raw[s:s + k]
def run(K, hist, lh, k=100):
    ci, cl = np.empty(max(4*k,256), np.int64), np.empty(max(4*k,256))
    t, c = np.empty(2 * K.DIAG_TOTALS), np.empty(K.DIAG_COUNTS, np.int64)
    t0 = time.perf_counter()
    st, found = K.diagnose(y, 1, x, 10, w, 10 if w is not None else 0, None, 0, None, hist, lh, None, None,
                           ci, cl, t, c, k, -1.0, R, 0, n, mode == "logits")
    dt = time.perf_counter() - t0
    return dt, (t.copy(), c.copy(), ci[:found].copy(), cl[:found].copy())
ha, la = z64((R + 2) * hf), z64(A.DIAG_LOSS_BINS * lf)
hb, lb = z64((R + 2) * hf), z64(A.DIAG_LOSS_BINS * lf)
ta, tb = [], []
for r in range(rounds):
    da, oa = run(A, ha, la); db, ob = run(B, hb, lb)
    ta.append(da); tb.append(db)
    if "--no-check" not in sys.argv: assert all(np.array_equal(u, v) for u, v in zip(oa, ob)), "outputs differ"
if "--no-check" not in sys.argv: assert np.array_equal(ha, hb) and np.array_equal(la, lb), "histograms differ"
med = lambda v: sorted(v)[len(v) // 2] / n * 1e9
print(f"{sys.argv[3]} {mode}: A {med(ta):.2f}  B {med(tb):.2f} ns/row (median of {rounds}); min A {min(ta)/n*1e9:.2f} B {min(tb)/n*1e9:.2f}"
      + ("" if "--no-check" in sys.argv else "; outputs identical"))
