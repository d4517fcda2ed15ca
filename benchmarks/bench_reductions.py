"""logloss against every peer, in one process, on the same data.

    PYTHONPATH=src python benchmarks/bench_reductions.py            # N = 10**7
    PYTHONPATH=src python benchmarks/bench_reductions.py --n 1e5    # or 1e8 (float64 needs ~1.7 GB)

Prints, per workload, ns per sample (best of --repeat runs, after a warm-up call that also
compiles the jit peers), the ratio to the fastest peer (peers: everything except logloss and
the memory-floor rows), and each result's relative error against an exact reference: math.fsum
of per-sample losses from logloss's reference path (extended precision, each term within 1 ulp).
Data is converted to each framework's array type before timing (zero-copy for PyTorch).
Peers that are not installed are skipped with a line saying so. Where the compiled kernels were
built, logloss appears twice: with its C kernels (the CPU path is named), and NumPy only. Hard
labels from probabilities are also timed with int64 labels (what np.array([0, 1, ...]), pandas
and scikit-learn give) against int8 labels. The memory floor is the time the kernels' own
threads take to read the same bytes once and do nothing else (kernels.c ``stream``): a row close
to it is limited by the memory bandwidth of this machine, not by its arithmetic.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import logloss
from logloss._numpy import chunked as _fast
from logloss._core.inputs import prepare_binary
from logloss._numpy.reference import binary_losses as _per_element

THREADS = os.cpu_count() or 1


def memory_floor(kernels, y, x) -> int:
    """Read every byte of y and x once, split over the threads as the kernels split their work:
    the time no kernel can beat on this machine (a row near it is limited by memory bandwidth)."""
    y, x = np.ravel(y), np.ravel(x)
    parts = _fast.run_in_ranges(lambda lo, hi: kernels.stream(y, _fast._code(y), x, _fast._code(x), lo, hi),
                                y.size, kernels.CHUNK)
    return sum(parts)


# ------------------------------------------------------------------------------- peers


def peers(dtype_name: str):
    """name -> factory(kind, reduce) -> callable(y, x) on that peer's arrays, or a skip line."""
    out, skipped = {}, []

    def article(kind, reduce):
        if kind == "logits":
            return None
        def f(y, p):
            v = y * np.log(p + 1e-15) + (1 - y) * np.log(1 - p + 1e-15)
            return -np.mean(v) if reduce else -v
        return (lambda a: a), f
    out["introductory articles' NumPy (+1e-15)"] = article

    try:
        from sklearn.metrics import log_loss

        def sk(kind, reduce):
            if kind == "logits" or not reduce:
                return None
            return (lambda a: a), (lambda y, p: log_loss(y, p, labels=[0, 1]))
        out["scikit-learn log_loss"] = sk
    except ImportError:
        skipped.append("scikit-learn")

    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(THREADS)

        def tor(kind, reduce):
            red = "mean" if reduce else "none"
            if kind == "logits":
                return torch.from_numpy, lambda y, z: F.binary_cross_entropy_with_logits(z, y, reduction=red)
            return torch.from_numpy, lambda y, p: F.binary_cross_entropy(p, y, reduction=red)
        out[f"PyTorch F.binary_cross_entropy{{,_with_logits}} ({THREADS} threads)"] = tor
    except ImportError:
        skipped.append("PyTorch")

    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        def ker(kind, reduce):
            logits = kind == "logits"
            def f(y, x):
                v = tf.keras.losses.binary_crossentropy(y, x, from_logits=logits)
                return tf.reduce_mean(v) if reduce else v
            return (lambda a: tf.constant(a[:, None])), f
        out["TensorFlow/Keras binary_crossentropy"] = ker
    except ImportError:
        skipped.append("TensorFlow")

    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def jx(kind, reduce):
            if kind == "logits":
                def f(y, z):
                    v = jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))
                    return jnp.mean(v) if reduce else v
            else:
                def f(y, p):
                    v = jnp.where(y == 1, -jnp.log(p), -jnp.log1p(-p)) if hard_labels[0] else \
                        -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))
                    return jnp.mean(v) if reduce else v
            g = jax.jit(f)
            return jnp.asarray, lambda y, x: g(y, x).block_until_ready()
        out["JAX jit where(y, -log p, -log1p(-p)) / softplus"] = jx

        try:
            import optax

            def opt(kind, reduce):
                if kind != "logits":
                    return None
                g = jax.jit(lambda y, z: (jnp.mean if reduce else (lambda v: v))(
                    optax.sigmoid_binary_cross_entropy(z, y)))
                return jnp.asarray, lambda y, z: g(y, z).block_until_ready()
            out["optax sigmoid_binary_cross_entropy (jit)"] = opt
        except ImportError:
            skipped.append("optax")
    except ImportError:
        skipped.append("JAX and optax")
    return out, skipped


hard_labels = [True]  # read by the JAX factory: soft labels need the two-term formula


# ------------------------------------------------------------------------------- data


def make_data(n: int, dtype, labels: str, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    p = np.clip(p, 1e-12, 1 - 1e-12)  # no infinite losses: every peer returns a number
    if labels == "hard":
        y = (rng.uniform(0, 1, n) < p).astype(dtype)  # a calibrated classifier
    else:
        y = rng.uniform(0, 1, n).astype(dtype)
    x = np.log(p) - np.log1p(-p) if kind == "logits" else p
    return y, x.astype(dtype)


def exact_mean(y, x, kind: str) -> float:
    total = 0.0
    terms = []
    for lo in range(0, len(y), 1 << 20):
        inputs = prepare_binary(y[lo : lo + (1 << 20)], x[lo : lo + (1 << 20)],
                                from_logits=kind == "logits")
        terms.extend(_per_element(inputs).astype(np.float64).tolist())
        total = math.fsum(terms)
        terms = [total]
    return total / len(y)


def best_time(f, repeat: int) -> tuple[float, object]:
    result = f()  # warm-up (and jit compilation)
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - t0)
    return best, result


def as_mean(result, n: int) -> float:
    a = np.asarray(result, dtype=np.float64)
    return float(a) if a.ndim == 0 else math.fsum(a.ravel().tolist()) / n


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="substring filter on workload names")
    args = parser.parse_args()
    n = int(args.n)
    factories, skipped = peers("")
    for name in skipped:
        print(f"skipped: {name} is not installed")
    print(f"N = {n:.0e}, best of {args.repeat}, {THREADS} CPU threads, numpy {np.__version__}\n")

    workloads = [
        (labels, kind, dtype, reduction)
        for reduction in ("mean", "none")
        for labels in ("hard", "soft")
        for kind in ("probabilities", "logits")
        for dtype in (np.float64, np.float32)
        if reduction == "mean" or labels == "hard"
    ]
    for labels, kind, dtype, reduction in workloads:
        title = f"{labels} labels, {kind}, {np.dtype(dtype).name}, reduction={reduction}"
        if args.only not in title:
            continue
        hard_labels[0] = labels == "hard"
        y, x = make_data(n, dtype, labels, kind)
        exact = exact_mean(y, x, kind)
        reduce = reduction == "mean"
        rows = []
        run = lambda: logloss.bce(y, x, from_logits=kind == "logits", reduction=reduction)  # noqa: E731
        kernels = _fast.compiled_kernels()
        if kernels is not None:
            t, r = best_time(run, args.repeat)
            rows.append((f"logloss (C kernels, {kernels.PATH})", t, as_mean(r, n), False))
            if labels == "hard" and kind == "probabilities" and reduction == "mean":
                for label_dtype in (np.int8, np.int64):
                    yi = y.astype(label_dtype)
                    t, r = best_time(lambda: logloss.bce(yi, x), args.repeat)
                    rows.append((f"logloss (C kernels, {kernels.PATH}), {np.dtype(label_dtype).name} labels",
                                 t, as_mean(r, n), False))
                    t, _ = best_time(lambda: memory_floor(kernels, yi, x), args.repeat)
                    rows.append((f"memory floor, {np.dtype(label_dtype).name} labels", t, math.nan, False))
                    del yi
        with logloss.config_context(engine="numpy"):
            t, r = best_time(run, args.repeat)
        rows.append(("logloss (NumPy only)", t, as_mean(r, n), False))
        for name, factory in factories.items():
            made = factory(kind, reduce)
            if made is None:
                continue
            convert, f = made
            try:
                yy, xx = convert(y), convert(x)
                t, r = best_time(lambda: f(yy, xx), args.repeat)
                rows.append((name, t, as_mean(r, n), True))
            except Exception as error:  # a peer that refuses this workload (e.g. soft labels)
                print(f"  {name}: {type(error).__name__}: {str(error).splitlines()[0][:80]}")
            del yy, xx
        if kernels is not None:
            t, _ = best_time(lambda: memory_floor(kernels, y, x), args.repeat)
            rows.append((f"memory floor: read y and x once (C, {THREADS} threads)", t, math.nan, False))
        else:
            t, _ = best_time(lambda: x.sum() + y.sum(), args.repeat)
            rows.append(("x.sum() + y.sum() (NumPy, one thread)", t, math.nan, False))
        fastest = min((t for _, t, _, peer in rows if peer), default=math.nan)
        print(f"## {title}   (exact mean {exact:.17g})")
        print(f"| {'':62s} | ns/sample | vs fastest peer | rel. error |")
        print(f"|{'-' * 64}|----------:|----------------:|-----------:|")
        for name, t, value, _ in rows:
            err = abs(value - exact) / exact if math.isfinite(value) else math.nan
            err_text = "" if math.isnan(value) else f"{err:.1e}"
            print(f"| {name:62s} | {t / n * 1e9:9.2f} | {t / fastest:15.2f} | {err_text:>10s} |")
        print()


if __name__ == "__main__":
    main()
